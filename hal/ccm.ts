// CCM (RFC 3610 section 2) composed from CBC-MAC and CTR keystream blocks, for
// boards without a native CCM. Constants: tag M = 8, length field L = 2
// (messages < 65536 bytes), nonce 15 - L = 13 bytes, no associated data.
//   B0 flags = 8 * ((M - 2) / 2) + (L - 1) = 0x19
//   A_i flags = L - 1 = 0x01
// Every buffer is allocated once, sized for the longest message the device
// seals (its frame plaintext), so sealing allocates nothing but the result.
import type { BlockModes, Ccm } from './types.js';

const B0_FLAGS = 0x19;
const A_FLAGS = 0x01;
const TAG = 8;

export function composeCcm(modes: BlockModes, maxMsgLen: number): Ccm {
  const maxBlocks = (maxMsgLen + 15) >> 4;
  const mac = new Uint8Array(16 + maxBlocks * 16);
  const ctr = new Uint8Array(16 + maxBlocks * 16);
  const stream = new Uint8Array(ctr.length);
  for (let i = 0; i <= maxBlocks; i++) {
    ctr[i * 16] = A_FLAGS;
    ctr[i * 16 + 15] = i;
  }
  mac[0] = B0_FLAGS;
  return {
    seal: function (nonce: Uint8Array, msg: Uint8Array, out: Uint8Array, at: number): void {
      const n = msg.length;
      if (n > maxMsgLen) throw new Error('CCM message longer than the engine was sized for');
      const blocks = (n + 15) >> 4;
      const used = 16 + blocks * 16;
      mac.set(nonce, 1);
      mac[14] = n >> 8;
      mac[15] = n & 255;
      mac.set(msg, 16);
      mac.fill(0, 16 + n, used);
      const t = modes.cbcMac(mac.subarray(0, used));
      for (let i = 0; i <= blocks; i++) ctr.set(nonce, i * 16 + 1);
      modes.ecb(ctr.subarray(0, used), stream);
      for (let i = 0; i < n; i++) out[at + i] = msg[i]! ^ stream[16 + i]!;
      for (let i = 0; i < TAG; i++) out[at + n + i] = t[i]! ^ stream[i]!;
    },
  };
}
