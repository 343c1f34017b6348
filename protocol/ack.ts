// Acknowledgements (design brief, "Delivery"):
//   ack = N (4, BE) || tag (8), tag = AES-128-CCM over the empty message
//   with nonce = nonce_salt || N (4, BE) || 0x02.
// The ack domain byte keeps an ack tag from ever equalling a frame tag.
import { ACK_LEN, COUNTER_LEN, DOMAIN_ACK } from './wire/constants.js';
import { equalBytes, expectBytes, expectCounter } from './bytes.js';
import { readU32BE, writeU32BE } from './wire/be.js';
import { ccmEncrypt } from './ccm.js';
import { AuthenticationError } from './errors.js';
import { buildNonce, checkDeviceKeys, type DeviceKeys } from './frame.js';

const EMPTY = new Uint8Array(0);

export function ackTag(keys: DeviceKeys, counter: number): Uint8Array {
  checkDeviceKeys(keys);
  return ccmEncrypt(keys.sealKey, buildNonce(keys.nonceSalt, counter, DOMAIN_ACK), EMPTY).tag;
}

/** The 12-byte ack the server sends: every frame 1..counter is stored. */
export function makeAck(keys: DeviceKeys, counter: number): Uint8Array {
  expectCounter('counter', counter);
  const ack = new Uint8Array(ACK_LEN);
  writeU32BE(ack, 0, counter);
  ack.set(ackTag(keys, counter), COUNTER_LEN);
  return ack;
}

/** Returns N when the ack's tag is valid; throws AuthenticationError otherwise. */
export function verifyAck(keys: DeviceKeys, ack: Uint8Array): number {
  checkDeviceKeys(keys);
  expectBytes('ack', ack, ACK_LEN);
  const counter = readU32BE(ack, 0);
  if (counter === 0) throw new AuthenticationError('ack');
  if (!equalBytes(ackTag(keys, counter), ack.subarray(COUNTER_LEN))) throw new AuthenticationError('ack');
  return counter;
}
