// The device crypto backends built on Espruino's AES builtins. The AES object
// is passed in (require("crypto").AES on a board, a stand-in under Node), so
// nothing here reaches for a global.
//   native-ccm: one AES.ccmEncrypt per message (Bangle.js 2, Linux build).
//   native-aes: CCM from AES.encrypt (CBC, ECB) and AES.decrypt (CBC) (Puck.js).
import type { Ccm, EspruinoAes, Framer } from '../types.js';

const TAG = 8;

function failed(what: string): Error {
  return new Error(what + ' failed (the builtin printed the reason)');
}

// One native call per counter write: on the interpreter a DataView store
// costs about half of four byte stores with shifts (measured, Linux build).
export function nativeCcm(aes: EspruinoAes, key: Uint8Array): Ccm {
  const ccmEncrypt = aes.ccmEncrypt;
  if (!ccmEncrypt) throw new Error('AES.ccmEncrypt is missing on this build: use crypto backend native-aes or plain-js');
  return {
    framer: function (nonceSalt: Uint8Array, n: number, ring: Uint8Array, domain: number): Framer {
      const nonce = new Uint8Array(13);
      nonce.set(nonceSalt);
      nonce[12] = domain;
      const nonceView = new DataView(nonce.buffer);
      const ringView = new DataView(ring.buffer, ring.byteOffset, ring.length);
      // Counter and length checked here, per frame: this function is the sealer's sealInto (hal/ccm.ts).
      return function (counter: number, msg: Uint8Array, at: number): void {
        if (!(counter >= 1 && counter <= 0xffffffff)) throw new Error('counter expected 1..4294967295, got ' + counter);
        if (msg.length !== n) throw new Error('plaintext expected ' + n + ' bytes, got ' + msg.length);
        ringView.setUint32(at, counter);
        nonceView.setUint32(8, counter);
        const r = ccmEncrypt(msg, key, nonce, TAG);
        if (!r) throw failed('AES.ccmEncrypt');
        ring.set(new Uint8Array(r.data), at + 4);
        ring.set(new Uint8Array(r.tag), at + 4 + n);
      };
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
 * Needs AES.decrypt too (Puck.js has both; a build with AES.encrypt alone
 * would use plain-js).
 */
export function nativeAesCcm(aes: EspruinoAes, key: Uint8Array, maxMsgLen: number): Ccm {
  if (!aes.encrypt || !aes.decrypt) throw new Error('AES.encrypt or AES.decrypt is missing on this build: use crypto backend plain-js');
  const encrypt = aes.encrypt;
  const decrypt = aes.decrypt;
  const CBC = { mode: 'CBC' };
  const ECB = { mode: 'ECB' };

  // Everything but the counter, the message and T is fixed per device and
  // use: salt, domain, length and block indices are written once here, and a
  // frame costs four counter stores, five copies and the three AES calls.
  function framer(nonceSalt: Uint8Array, n: number, ring: Uint8Array, domain: number): Framer {
    if (n > maxMsgLen) throw new Error('CCM message longer than the engine was sized for');
    const b = (n + 15) >> 4;
    const fmac = new Uint8Array(16 + 16 * b);
    fmac[0] = 0x19;
    fmac.set(nonceSalt, 1);
    fmac[13] = domain;
    fmac[14] = n >> 8;
    fmac[15] = n & 255;
    const fecb = new Uint8Array(32 * (b + 1));
    for (let j = 0; j <= b; j++) {
      fecb[32 * j] = 0x01;
      fecb.set(nonceSalt, 32 * j + 1);
      fecb[32 * j + 13] = domain;
      fecb[32 * j + 15] = j === b ? 0 : j + 1;
    }
    const macView = new DataView(fmac.buffer);
    const ecbView = new DataView(fecb.buffer);
    const ringView = new DataView(ring.buffer, ring.byteOffset, ring.length);
    const tailLen = n - 16 * (b - 1);
    // Counter and length checked here, per frame: this function is the sealer's sealInto (hal/ccm.ts).
    return function (counter: number, msg: Uint8Array, at: number): void {
      if (!(counter >= 1 && counter <= 0xffffffff)) throw new Error('counter expected 1..4294967295, got ' + counter);
      if (msg.length !== n) throw new Error('plaintext expected ' + n + ' bytes, got ' + msg.length);
      ringView.setUint32(at, counter);
      macView.setUint32(9, counter);
      for (let j = 0; j <= b; j++) ecbView.setUint32(32 * j + 9, counter);
      fmac.set(msg, 16);
      const t = encrypt(fmac, key, CBC);
      if (!t) throw failed('AES.encrypt CBC');
      if (b === 1) fecb.set(msg, 16);
      else for (let j = 0; j < b; j++) fecb.set(msg.subarray(16 * j, j === b - 1 ? n : 16 * j + 16), 32 * j + 16);
      fecb.set(new Uint8Array(t, 16 * b, 16), 32 * b + 16);
      const e = encrypt(fecb, key, ECB);
      if (!e) throw failed('AES.encrypt ECB');
      const d = decrypt(e, key, CBC);
      if (!d) throw failed('AES.decrypt CBC');
      if (b === 1) ring.set(new Uint8Array(d, 16, n), at + 4);
      else for (let j = 0; j < b; j++) ring.set(new Uint8Array(d, 32 * j + 16, j === b - 1 ? tailLen : 16), at + 4 + 16 * j);
      ring.set(new Uint8Array(d, 32 * b + 16, TAG), at + 4 + n);
    };
  }

  return { framer: framer };
}
