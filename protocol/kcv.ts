// Key check value: the first 3 bytes of AES-128-ECB(seal_key, 16 zero bytes)
// (design brief, "Provisioning"). The factory compares it with what a flashed
// device reports, so the key itself is never read back.
import { KCV_LEN, KEY_LEN } from './wire/constants.js';
import { expectBytes } from './bytes.js';
import { aesEncryptBlock } from './ccm.js';

const ZERO_BLOCK = new Uint8Array(16);

export function keyCheckValue(sealKey: Uint8Array): Uint8Array {
  expectBytes('sealKey', sealKey, KEY_LEN);
  return aesEncryptBlock(sealKey, ZERO_BLOCK).subarray(0, KCV_LEN);
}
