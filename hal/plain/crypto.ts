// The plain-js crypto backend: AES-128 and CCM both in JavaScript (hal/plain/aes128.ts, hal/ccm.ts), for boards with no AES builtin.
import { composeCcm } from '../ccm.js';
import type { Ccm } from '../types.js';
import { plainBlockModes } from './aes128.js';

/** plain-js backend: CCM and AES both in JS, for boards with no AES builtin. */
export function plainCcm(key: Uint8Array, maxMsgLen: number): Ccm {
  return composeCcm(plainBlockModes(key), maxMsgLen);
}
