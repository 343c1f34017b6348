// Reads the device secret file the factory wrote (docs/protocol.md section 8).
// ES5 twin of protocol/device-file.ts's decoder; returns undefined with a
// reason instead of throwing, since a device without a valid file simply
// does not seal.
import { KEY_LEN, NONCE_SALT_LEN } from '../protocol/wire/constants.js';
import { readU32BE } from '../protocol/wire/be.js';
import { PROVISION_HINT } from '../protocol/wire/names.js';
import { RENEWAL } from '../hal/features.js';

export interface Identity {
  serial: string;
  frameSize: number;
  sealKey: Uint8Array;
  nonceSalt: Uint8Array;
  /** Format 2: fleet_id(4) || renewal public key(32) || chain_0(32); absent on format 1 (the device cannot renew). */
  renewal?: Uint8Array;
}

export interface IdentityResult {
  identity?: Identity;
  problem?: string;
}

export function readIdentity(file: Uint8Array | undefined, crc32: (d: Uint8Array) => number): IdentityResult {
  if (!file) return { problem: 'no device file: ' + PROVISION_HINT };
  if (file.length < 8 || file[0] !== 0x53 || file[1] !== 0x50 || file[2] !== 0x64 || file[3] !== 0x01) {
    return { problem: 'device file is not a sealpost device file' };
  }
  const v = file[4]!;
  if (v !== 1 && v !== 2) return { problem: 'device file has format version ' + v + ', this firmware reads 1 and 2' };
  const n = file[6]!;
  const end = 7 + n + KEY_LEN + NONCE_SALT_LEN + (v - 1) * 68;
  if (file.length !== end + 4) return { problem: 'device file has the wrong length' };
  if (crc32(file.subarray(0, end)) !== readU32BE(file, end)) return { problem: 'device file fails its CRC check: provision this device again' };
  const frameSize = file[5]!;
  if (frameSize < 20 || frameSize > 244) return { problem: 'device file frame size ' + frameSize + ' is outside 20..244' };
  let serial = '';
  for (let i = 0; i < n; i++) serial += String.fromCharCode(file[7 + i]!);
  const sealKey = new Uint8Array(KEY_LEN);
  sealKey.set(file.subarray(7 + n, 7 + n + KEY_LEN));
  const nonceSalt = new Uint8Array(NONCE_SALT_LEN);
  nonceSalt.set(file.subarray(7 + n + KEY_LEN, 7 + n + KEY_LEN + NONCE_SALT_LEN));
  const id: Identity = { serial: serial, frameSize: frameSize, sealKey: sealKey, nonceSalt: nonceSalt };
  if (RENEWAL && v === 2) {
    // A copy made with set(): Uint8Array.prototype.slice returns a plain Array on Espruino 2v29
    // (measured on the ARM build: no subarray, not a Uint8Array), which renewal's subarray calls reject.
    id.renewal = new Uint8Array(68);
    id.renewal.set(file.subarray(end - 68, end));
  }
  return { identity: id };
}
