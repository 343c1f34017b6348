// AES-128 encryption (FIPS 197) in plain JS for boards without AES builtins
// (MDBT42Q, Pixl.js). Only the forward cipher: CCM never decrypts a block.
// The S-box is computed on first use (FIPS 197 section 5.1.1: the inverse
// in GF(2^8), then the affine map) rather than carried as a table: about 130
// bytes of bundle instead of 400 for the table as base64 and its decoder,
// for a one-time cost measured in docs/firmware.md. Round keys are expanded
// once per key. Cross-checked against @noble/ciphers in
// test/firmware/device-crypto.test.ts.
import type { BlockModes } from '../types.js';

let SBOX: Uint8Array;

/**
 * Walks p over every nonzero element as powers of the generator 3 while q
 * walks the inverses (q = 3^-k), so q = p^-1 at every step; the affine map
 * XORs q with four rotations of itself and 0x63.
 */
export function sbox(): Uint8Array {
  if (!SBOX) {
    SBOX = new Uint8Array(256);
    SBOX[0] = 0x63;
    let p = 1;
    let q = 1;
    do {
      p = (p ^ (p << 1) ^ (p & 128 ? 0x1b : 0)) & 255;
      q ^= q << 1;
      q ^= q << 2;
      q ^= q << 4;
      q &= 255;
      if (q & 128) q ^= 0x09;
      SBOX[p] = q ^ (q << 1) ^ (q << 2) ^ (q << 3) ^ (q << 4) ^ (q >> 4) ^ (q >> 5) ^ (q >> 6) ^ (q >> 7) ^ 0x63;
    } while (p !== 1);
  }
  return SBOX;
}

const RCON = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];

function xtime(a: number): number {
  return ((a << 1) ^ ((a >> 7) * 0x1b)) & 255;
}

export function expandKey(key: Uint8Array): Uint8Array {
  if (key.length !== 16) throw new Error('AES-128 key expected 16 bytes, got ' + key.length);
  const SBOX = sbox();
  const w = new Uint8Array(176);
  w.set(key);
  for (let i = 16, r = 0; i < 176; i += 4) {
    let t0 = w[i - 4]!;
    let t1 = w[i - 3]!;
    let t2 = w[i - 2]!;
    let t3 = w[i - 1]!;
    if ((i & 15) === 0) {
      const t = t0;
      t0 = SBOX[t1]! ^ RCON[r++]!;
      t1 = SBOX[t2]!;
      t2 = SBOX[t3]!;
      t3 = SBOX[t]!;
    }
    w[i] = w[i - 16]! ^ t0;
    w[i + 1] = w[i - 15]! ^ t1;
    w[i + 2] = w[i - 14]! ^ t2;
    w[i + 3] = w[i - 13]! ^ t3;
  }
  return w;
}

/** Encrypts the 16-byte block at src[so..] into dst[do..] (they may overlap exactly). */
export type BlockCipher = (src: Uint8Array, so: number, dst: Uint8Array, dof: number) => void;

export function aes128(key: Uint8Array): BlockCipher {
  const w = expandKey(key);
  const SBOX = sbox();
  const s = new Uint8Array(16);
  const t = new Uint8Array(16);
  return function (src: Uint8Array, so: number, dst: Uint8Array, dof: number): void {
    let i;
    for (i = 0; i < 16; i++) s[i] = src[so + i]! ^ w[i]!;
    for (let round = 1; round < 10; round++) {
      const k = round * 16;
      for (let c = 0; c < 16; c += 4) {
        // SubBytes and ShiftRows: row r of column c comes from column c + r.
        const a0 = SBOX[s[c]!]!;
        const a1 = SBOX[s[(c + 5) & 15]!]!;
        const a2 = SBOX[s[(c + 10) & 15]!]!;
        const a3 = SBOX[s[(c + 15) & 15]!]!;
        const x = a0 ^ a1 ^ a2 ^ a3;
        t[c] = a0 ^ x ^ xtime(a0 ^ a1) ^ w[k + c]!;
        t[c + 1] = a1 ^ x ^ xtime(a1 ^ a2) ^ w[k + c + 1]!;
        t[c + 2] = a2 ^ x ^ xtime(a2 ^ a3) ^ w[k + c + 2]!;
        t[c + 3] = a3 ^ x ^ xtime(a3 ^ a0) ^ w[k + c + 3]!;
      }
      s.set(t);
    }
    for (let c = 0; c < 16; c += 4) {
      dst[dof + c] = SBOX[s[c]!]! ^ w[160 + c]!;
      dst[dof + c + 1] = SBOX[s[(c + 5) & 15]!]! ^ w[161 + c]!;
      dst[dof + c + 2] = SBOX[s[(c + 10) & 15]!]! ^ w[162 + c]!;
      dst[dof + c + 3] = SBOX[s[(c + 15) & 15]!]! ^ w[163 + c]!;
    }
  };
}

/** CBC-MAC and ECB from the JS block cipher, the same shape as the native pair. */
export function plainBlockModes(key: Uint8Array): BlockModes {
  const encrypt = aes128(key);
  const block = new Uint8Array(16);
  return {
    cbcMac: function (data: Uint8Array): Uint8Array {
      block.fill(0);
      for (let off = 0; off < data.length; off += 16) {
        for (let i = 0; i < 16; i++) block[i] = block[i]! ^ data[off + i]!;
        encrypt(block, 0, block, 0);
      }
      return block;
    },
    ecb: function (data: Uint8Array, out: Uint8Array): void {
      for (let off = 0; off < data.length; off += 16) encrypt(data, off, out, off);
    },
  };
}
