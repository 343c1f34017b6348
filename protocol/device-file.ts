// The device secret file: the exact bytes the factory writes into the
// device's Storage as DEVICE_FILE_NAME (protocol/wire/names.ts) and the
// firmware reads at boot (docs/protocol.md section 8). Host side: encode and
// decode with checks; the firmware's ES5 reader is firmware/identity.ts.
//
// Format 1: magic(4) 1 F(1) n(1) serial(n) seal_key(16) nonce_salt(8) crc(4)
// Format 2 (design brief, "Key renewal"; docs/protocol.md section 8): format 1
// with fleet_id(4) renewal_public_key(32) chain_0(32) before the CRC. A
// format-1 device simply cannot renew.
import { expectBytes, expectInteger } from './bytes.js';
import { readU32BE, writeU32BE } from './wire/be.js';
import { KEY_LEN, MAX_FRAME_SIZE, NONCE_SALT_LEN } from './wire/constants.js';
import { crc32 } from './wire/crc32.js';
import { ArgumentError } from './errors.js';
import { checkSerial } from './provision.js';
import { MIN_CODEC_PLAINTEXT } from './wire/codec.js';
import { FLEET_ID_LEN } from './keys.js';

/** Length of a chain secret (design brief: chain_0 = ctx.Export("sealpost/v1 chain", 32)). */
export const CHAIN_LEN = 32;

export const DEVICE_FILE_MAGIC = [0x53, 0x50, 0x64, 0x01]; // "SPd" 1
/** The format `encodeDeviceFile` writes when given renewal fields; 1 without them. */
export const DEVICE_FILE_VERSION = 2;
const RENEWAL_LEN = FLEET_ID_LEN + 32 + CHAIN_LEN;
/** Smallest F whose plaintext fits every frame type (codec). */
export const MIN_DEVICE_FRAME_SIZE = MIN_CODEC_PLAINTEXT + 12;

export interface DeviceSecrets {
  serial: string;
  frameSize: number;
  sealKey: Uint8Array;
  nonceSalt: Uint8Array;
  /** Format 2 only: what the device needs to renew. Absent: format 1, the device cannot renew. */
  renewal?: DeviceRenewal;
}

export interface DeviceRenewal {
  fleetId: Uint8Array;
  /** The fleet's renewal public key (Ed25519): ANNOUNCE must verify under it. */
  renewalPublicKey: Uint8Array;
  /** chain_0: the PSK of the first renewal. */
  chain: Uint8Array;
}

export function deviceFileLength(serial: string, format: 1 | 2 = 2): number {
  return 4 + 1 + 1 + 1 + serial.length + KEY_LEN + NONCE_SALT_LEN + (format === 2 ? RENEWAL_LEN : 0) + 4;
}

export function encodeDeviceFile(s: DeviceSecrets): Uint8Array {
  const serial = checkSerial(s.serial);
  expectInteger('frameSize', s.frameSize, MIN_DEVICE_FRAME_SIZE, MAX_FRAME_SIZE);
  expectBytes('sealKey', s.sealKey, KEY_LEN);
  expectBytes('nonceSalt', s.nonceSalt, NONCE_SALT_LEN);
  const r = s.renewal;
  if (r !== undefined) {
    expectBytes('renewal.fleetId', r.fleetId, FLEET_ID_LEN);
    expectBytes('renewal.renewalPublicKey', r.renewalPublicKey, 32);
    expectBytes('renewal.chain', r.chain, CHAIN_LEN);
  }
  const out = new Uint8Array(deviceFileLength(serial, r ? 2 : 1));
  out.set(DEVICE_FILE_MAGIC, 0);
  out[4] = r ? 2 : 1;
  out[5] = s.frameSize;
  out[6] = serial.length;
  for (let i = 0; i < serial.length; i++) out[7 + i] = serial.charCodeAt(i);
  let at = 7 + serial.length;
  out.set(s.sealKey, at);
  at += KEY_LEN;
  out.set(s.nonceSalt, at);
  at += NONCE_SALT_LEN;
  if (r) {
    for (const part of [r.fleetId, r.renewalPublicKey, r.chain]) {
      out.set(part, at);
      at += part.length;
    }
  }
  writeU32BE(out, at, crc32(out.subarray(0, at)));
  return out;
}

export function decodeDeviceFile(bytes: Uint8Array): DeviceSecrets {
  expectBytes('device file', bytes);
  const bad = (why: string) => new ArgumentError('device file', why);
  if (bytes.length < 8) throw bad(`is ${bytes.length} bytes, too short to be a sealpost device file`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== DEVICE_FILE_MAGIC[i]) throw bad('does not start with the sealpost magic "SPd\\x01"');
  const format = bytes[4];
  if (format !== 1 && format !== 2) throw bad(`has format version ${format}, this software reads versions 1 and 2: use a newer sealpost`);
  const n = bytes[6]!;
  const want = 7 + n + KEY_LEN + NONCE_SALT_LEN + (format === 2 ? RENEWAL_LEN : 0) + 4;
  if (bytes.length !== want) throw bad(`is ${bytes.length} bytes, expected ${want} for a format-${format} file with a ${n}-character serial`);
  const end = bytes.length - 4;
  if (crc32(bytes.subarray(0, end)) !== readU32BE(bytes, end)) throw bad('fails its CRC-32 check: the file is corrupted; provision the device again');
  const serial = String.fromCharCode(...bytes.subarray(7, 7 + n));
  checkSerial(serial);
  const frameSize = expectInteger('device file frame size', bytes[5], MIN_DEVICE_FRAME_SIZE, MAX_FRAME_SIZE);
  const keyAt = 7 + n;
  const saltAt = keyAt + KEY_LEN;
  const secrets: DeviceSecrets = {
    serial,
    frameSize,
    sealKey: bytes.slice(keyAt, saltAt),
    nonceSalt: bytes.slice(saltAt, saltAt + NONCE_SALT_LEN),
  };
  if (format === 2) {
    const fleetAt = saltAt + NONCE_SALT_LEN;
    const pkAt = fleetAt + FLEET_ID_LEN;
    secrets.renewal = { fleetId: bytes.slice(fleetAt, pkAt), renewalPublicKey: bytes.slice(pkAt, pkAt + 32), chain: bytes.slice(pkAt + 32, end) };
  }
  return secrets;
}
