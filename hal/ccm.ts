// CCM (RFC 3610 section 2) composed from CBC-MAC and CTR keystream blocks, for
// boards without a native CCM. Constants: tag M = 8, length field L = 2
// (messages < 65536 bytes), nonce 15 - L = 13 bytes, no associated data.
//   B0 flags = 8 * ((M - 2) / 2) + (L - 1) = 0x19
//   A_i flags = L - 1 = 0x01
// A framer lays out B0 and the counter blocks A_0..A_b once, salt, domain
// and length included; a frame then writes the counter into them and runs
// the two block modes, allocating nothing.
import type { BlockModes, Ccm, Framer } from './types.js';

const B0_FLAGS = 0x19;
const A_FLAGS = 0x01;
const TAG = 8;

export function composeCcm(modes: BlockModes, maxMsgLen: number): Ccm {
  return {
    framer: function (nonceSalt: Uint8Array, n: number, ring: Uint8Array, domain: number): Framer {
      if (n > maxMsgLen) throw new Error('CCM message longer than the engine was sized for');
      const blocks = (n + 15) >> 4;
      const used = 16 + blocks * 16;
      const mac = new Uint8Array(used);
      const ctr = new Uint8Array(used);
      const stream = new Uint8Array(used);
      mac[0] = B0_FLAGS;
      mac.set(nonceSalt, 1);
      mac[13] = domain;
      mac[14] = n >> 8;
      mac[15] = n & 255;
      for (let i = 0; i <= blocks; i++) {
        ctr[i * 16] = A_FLAGS;
        ctr.set(nonceSalt, i * 16 + 1);
        ctr[i * 16 + 13] = domain;
        ctr[i * 16 + 15] = i;
      }
      const macView = new DataView(mac.buffer);
      const ctrView = new DataView(ctr.buffer);
      const ringView = new DataView(ring.buffer, ring.byteOffset, ring.length);
      // Every frame checks its counter (a counter outside 1..2^32-1 would wrap in the nonce and
      // reuse one) and its message length here, in the function the sealer hands out as sealInto.
      return function (counter: number, msg: Uint8Array, at: number): void {
        if (!(counter >= 1 && counter <= 0xffffffff)) throw new Error('counter expected 1..4294967295, got ' + counter);
        if (msg.length !== n) throw new Error('plaintext expected ' + n + ' bytes, got ' + msg.length);
        ringView.setUint32(at, counter);
        macView.setUint32(9, counter);
        for (let i = 0; i <= blocks; i++) ctrView.setUint32(i * 16 + 9, counter);
        mac.set(msg, 16);
        const t = modes.cbcMac(mac);
        modes.ecb(ctr, stream);
        at += 4;
        for (let i = 0; i < n; i++) ring[at + i] = msg[i]! ^ stream[16 + i]!;
        for (let i = 0; i < TAG; i++) ring[at + n + i] = t[i]! ^ stream[i]!;
      };
    },
  };
}
