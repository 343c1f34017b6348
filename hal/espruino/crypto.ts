// The device crypto backends built on Espruino's AES builtins. The AES object
// is passed in (require("crypto").AES on a board, a stand-in under Node), so
// nothing here reaches for a global.
//   native-ccm: one AES.ccmEncrypt per message (Bangle.js 2, Linux build).
//   native-aes: CCM composed from one CBC and one ECB call (Puck.js).
import { composeCcm } from '../ccm.js';
import type { BlockModes, Ccm, EspruinoAes } from '../types.js';

const TAG = 8;

function failed(what: string): Error {
  return new Error(what + ' failed (the builtin printed the reason)');
}

export function nativeCcm(aes: EspruinoAes, key: Uint8Array): Ccm {
  const ccmEncrypt = aes.ccmEncrypt;
  if (!ccmEncrypt) throw new Error('AES.ccmEncrypt is missing on this build: use crypto backend native-aes or plain-js');
  return {
    seal: function (nonce: Uint8Array, msg: Uint8Array, out: Uint8Array, at: number): void {
      const r = ccmEncrypt(msg, key, nonce, TAG);
      if (!r) throw failed('AES.ccmEncrypt');
      out.set(new Uint8Array(r.data), at);
      out.set(new Uint8Array(r.tag), at + msg.length);
    },
  };
}

export function nativeBlockModes(aes: EspruinoAes, key: Uint8Array): BlockModes {
  const encrypt = aes.encrypt;
  if (!encrypt) throw new Error('AES.encrypt is missing on this build: use crypto backend plain-js');
  const CBC = { mode: 'CBC' };
  const ECB = { mode: 'ECB' };
  return {
    cbcMac: function (data: Uint8Array): Uint8Array {
      const r = encrypt(data, key, CBC);
      if (!r) throw failed('AES.encrypt CBC');
      return new Uint8Array(r, data.length - 16, 16);
    },
    ecb: function (data: Uint8Array, out: Uint8Array): void {
      const r = encrypt(data, key, ECB);
      if (!r) throw failed('AES.encrypt ECB');
      out.set(new Uint8Array(r));
    },
  };
}

/**
 * native-aes: CCM from three AES builtin calls and no JS loop over bytes.
 * A JS XOR loop costs tens of thousands of instructions per byte on the
 * interpreter, so the XORs are left to AES-CBC decryption, which computes
 * P_i = D(C_i) XOR C_(i-1) natively:
 *   1. T = last block of AES-CBC(B0 || msg)                     (CBC-MAC)
 *   2. ECB over [A1, m1, A2, m2, ..., A0, T] gives
 *      [S1, E(m1), S2, E(m2), ..., S0, E(T)]
 *   3. CBC-decrypting that gives, at every second block,
 *      D(E(m_j)) XOR S_j = m_j XOR S_j (ciphertext) and D(E(T)) XOR S0 (tag).
 * Needs AES.decrypt too (Puck.js has both); without it, the JS-XOR
 * composition is used.
 */
export function nativeAesCcm(aes: EspruinoAes, key: Uint8Array, maxMsgLen: number): Ccm {
  const encrypt = aes.encrypt;
  const decrypt = aes.decrypt;
  if (!encrypt) throw new Error('AES.encrypt is missing on this build: use crypto backend plain-js');
  if (!decrypt) return composeCcm(nativeBlockModes(aes, key), maxMsgLen);
  const CBC = { mode: 'CBC' };
  const ECB = { mode: 'ECB' };
  const maxBlocks = (maxMsgLen + 15) >> 4;
  const mac = new Uint8Array(16 + maxBlocks * 16);
  mac[0] = 0x19;
  const layouts: Uint8Array[] = [];

  function layout(blocks: number): Uint8Array {
    let b = layouts[blocks];
    if (!b) {
      b = new Uint8Array(32 * (blocks + 1));
      for (let j = 0; j <= blocks; j++) {
        b[32 * j] = 0x01;
        b[32 * j + 15] = j === blocks ? 0 : j + 1;
      }
      layouts[blocks] = b;
    }
    return b;
  }

  return {
    seal: function (nonce: Uint8Array, msg: Uint8Array, out: Uint8Array, at: number): void {
      const n = msg.length;
      if (n > maxMsgLen) throw new Error('CCM message longer than the engine was sized for');
      const blocks = (n + 15) >> 4;
      mac.set(nonce, 1);
      mac[14] = n >> 8;
      mac[15] = n & 255;
      mac.set(msg, 16);
      mac.fill(0, 16 + n, 16 + blocks * 16);
      const t = encrypt(mac.subarray(0, 16 + blocks * 16), key, CBC);
      if (!t) throw failed('AES.encrypt CBC');
      const ecbIn = layout(blocks);
      for (let j = 0; j < blocks; j++) {
        ecbIn.set(nonce, 32 * j + 1);
        ecbIn.set(j === blocks - 1 ? msg.subarray(16 * j) : msg.subarray(16 * j, 16 * j + 16), 32 * j + 16);
        if (j === blocks - 1) ecbIn.fill(0, 32 * j + 16 + n - 16 * j, 32 * j + 32);
      }
      ecbIn.set(nonce, 32 * blocks + 1);
      ecbIn.set(new Uint8Array(t, blocks * 16, 16), 32 * blocks + 16);
      const e = encrypt(ecbIn, key, ECB);
      if (!e) throw failed('AES.encrypt ECB');
      const d = decrypt(e, key, CBC);
      if (!d) throw failed('AES.decrypt CBC');
      for (let j = 0; j < blocks; j++) {
        const len = j === blocks - 1 ? n - 16 * j : 16;
        out.set(new Uint8Array(d, 32 * j + 16, len), at + 16 * j);
      }
      out.set(new Uint8Array(d, 32 * blocks + 16, TAG), at + n);
    },
  };
}
