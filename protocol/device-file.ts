// The device secret file: the exact bytes the factory writes into the
// device's Storage as DEVICE_FILE_NAME (protocol/wire/names.ts) and the
// firmware reads at boot (docs/protocol.md section 8). Host side: encode and
// decode with checks; the firmware's ES5 reader is firmware/identity.ts.
import { expectBytes, expectInteger } from './bytes.js';
import { readU32BE, writeU32BE } from './wire/be.js';
import { KEY_LEN, MAX_FRAME_SIZE, NONCE_SALT_LEN } from './wire/constants.js';
import { crc32 } from './wire/crc32.js';
import { ArgumentError } from './errors.js';
import { checkSerial } from './provision.js';
import { MIN_CODEC_PLAINTEXT } from './wire/codec.js';

export const DEVICE_FILE_MAGIC = [0x53, 0x50, 0x64, 0x01]; // "SPd" 1
export const DEVICE_FILE_VERSION = 1;
/** Smallest F whose plaintext fits every frame type (codec). */
export const MIN_DEVICE_FRAME_SIZE = MIN_CODEC_PLAINTEXT + 12;

export interface DeviceSecrets {
  serial: string;
  frameSize: number;
  sealKey: Uint8Array;
  nonceSalt: Uint8Array;
}

export function deviceFileLength(serial: string): number {
  return 4 + 1 + 1 + 1 + serial.length + KEY_LEN + NONCE_SALT_LEN + 4;
}

export function encodeDeviceFile(s: DeviceSecrets): Uint8Array {
  const serial = checkSerial(s.serial);
  expectInteger('frameSize', s.frameSize, MIN_DEVICE_FRAME_SIZE, MAX_FRAME_SIZE);
  expectBytes('sealKey', s.sealKey, KEY_LEN);
  expectBytes('nonceSalt', s.nonceSalt, NONCE_SALT_LEN);
  const out = new Uint8Array(deviceFileLength(serial));
  out.set(DEVICE_FILE_MAGIC, 0);
  out[4] = DEVICE_FILE_VERSION;
  out[5] = s.frameSize;
  out[6] = serial.length;
  for (let i = 0; i < serial.length; i++) out[7 + i] = serial.charCodeAt(i);
  let at = 7 + serial.length;
  out.set(s.sealKey, at);
  at += KEY_LEN;
  out.set(s.nonceSalt, at);
  at += NONCE_SALT_LEN;
  writeU32BE(out, at, crc32(out.subarray(0, at)));
  return out;
}

export function decodeDeviceFile(bytes: Uint8Array): DeviceSecrets {
  expectBytes('device file', bytes);
  const bad = (why: string) => new ArgumentError('device file', why);
  if (bytes.length < 8) throw bad(`is ${bytes.length} bytes, too short to be a sealpost device file`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== DEVICE_FILE_MAGIC[i]) throw bad('does not start with the sealpost magic "SPd\\x01"');
  if (bytes[4] !== DEVICE_FILE_VERSION) throw bad(`has format version ${bytes[4]}, this software reads version ${DEVICE_FILE_VERSION}`);
  const n = bytes[6]!;
  if (bytes.length !== 7 + n + KEY_LEN + NONCE_SALT_LEN + 4) throw bad(`is ${bytes.length} bytes, expected ${7 + n + KEY_LEN + NONCE_SALT_LEN + 4} for a ${n}-character serial`);
  const end = bytes.length - 4;
  if (crc32(bytes.subarray(0, end)) !== readU32BE(bytes, end)) throw bad('fails its CRC-32 check: the file is corrupted; provision the device again');
  const serial = String.fromCharCode(...bytes.subarray(7, 7 + n));
  checkSerial(serial);
  const frameSize = expectInteger('device file frame size', bytes[5], MIN_DEVICE_FRAME_SIZE, MAX_FRAME_SIZE);
  return {
    serial,
    frameSize,
    sealKey: bytes.slice(7 + n, 7 + n + KEY_LEN),
    nonceSalt: bytes.slice(7 + n + KEY_LEN, end),
  };
}
