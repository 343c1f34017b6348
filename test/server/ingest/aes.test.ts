// AES-128 under many keys (server/ingest/aes.ts): the addon (native/aes.c,
// built by `npm run build`) and the node:crypto route give FIPS 197's
// answer, agree with each other and with one node:crypto cipher per key on
// random keys and block counts (zero included, in place or not), and refuse
// arguments of the wrong type or length by name instead of reading past them.
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deviceAes, nativeAes, nodeCryptoAes, type ManyKeyAes } from '../../../server/ingest/aes.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

/** One node:crypto AES-128-ECB object per key: what each route must equal. */
function reference(keys: Uint8Array, counts: Uint32Array, input: Uint8Array): Uint8Array {
  const out = new Uint8Array(input.length);
  let at = 0;
  counts.forEach((c, i) => {
    const ecb = createCipheriv('aes-128-ecb', keys.subarray(16 * i, 16 * i + 16), null).setAutoPadding(false);
    out.set(ecb.update(input.subarray(at, at + 16 * c)), at);
    at += 16 * c;
  });
  return out;
}

const routes: [string, () => ManyKeyAes][] = [
  ['native', nativeAes],
  ['node:crypto', nodeCryptoAes],
];

describe.each(routes)('AES-128 under many keys, %s route', (_, make) => {
  const aes = make();

  it('gives the FIPS 197 appendix C.1 ciphertext, under each of several keys', () => {
    const key = hex('000102030405060708090a0b0c0d0e0f');
    const plain = hex('00112233445566778899aabbccddeeff');
    const keys = new Uint8Array(48);
    keys.set(key, 0);
    keys.set(new Uint8Array(16).fill(7), 16);
    keys.set(key, 32);
    const input = new Uint8Array(48);
    input.set(plain, 0);
    input.set(plain, 16);
    input.set(plain, 32);
    const out = new Uint8Array(48);
    aes.encrypt(keys, new Uint32Array([1, 1, 1]), input, out);
    expect(Buffer.from(out.subarray(0, 16)).toString('hex')).toBe('69c4e0d86a7b0430d8cdb78070b4c55a');
    expect(Buffer.from(out.subarray(32)).toString('hex')).toBe('69c4e0d86a7b0430d8cdb78070b4c55a');
    expect(out.subarray(16, 32)).toEqual(reference(keys.subarray(16, 32), new Uint32Array([1]), plain));
  });

  it('agrees with one cipher per key on random keys and block counts, in place or not', () => {
    for (let round = 0; round < 30; round++) {
      const n = 1 + Math.floor(Math.random() * 120);
      const counts = new Uint32Array(n).map(() => (Math.random() < 0.2 ? 0 : 1 + Math.floor(Math.random() * 6)));
      const blocks = counts.reduce((a, b) => a + b, 0);
      const keys = new Uint8Array(randomBytes(16 * n));
      const input = new Uint8Array(randomBytes(16 * blocks));
      const expected = reference(keys, counts, input);
      const out = new Uint8Array(input.length);
      aes.encrypt(keys, counts, input, out);
      expect(out).toEqual(expected);
      const inPlace = input.slice();
      aes.encrypt(keys, counts, inPlace, inPlace);
      expect(inPlace).toEqual(expected);
    }
    // Nothing to do is not an error.
    aes.encrypt(new Uint8Array(32), new Uint32Array(2), new Uint8Array(0), new Uint8Array(0));
  });

  it('refuses arguments of the wrong length, naming them', () => {
    const keys = new Uint8Array(32);
    const counts = new Uint32Array([1, 2]);
    expect(() => aes.encrypt(new Uint8Array(31), counts, new Uint8Array(48), new Uint8Array(48))).toThrow(/keys/);
    expect(() => aes.encrypt(keys, counts, new Uint8Array(32), new Uint8Array(32))).toThrow(/input/);
    expect(() => aes.encrypt(keys, counts, new Uint8Array(48), new Uint8Array(64))).toThrow(/output/);
  });
});

describe('the native route', () => {
  const aes = nativeAes();

  it('refuses arguments of the wrong type, and an output that overlaps its input without being it', () => {
    const keys = new Uint8Array(16);
    const counts = new Uint32Array([2]);
    const bad = (...args: unknown[]) => () => (aes.encrypt as (...a: unknown[]) => void)(...args);
    expect(bad(keys, counts, new Uint8Array(32))).toThrow(/4 arguments/);
    expect(bad([0], counts, new Uint8Array(32), new Uint8Array(32))).toThrow(/keys: expected a Uint8Array/);
    expect(bad(keys, [2], new Uint8Array(32), new Uint8Array(32))).toThrow(/counts: expected a Uint32Array/);
    expect(bad(keys, new Uint16Array([2]), new Uint8Array(32), new Uint8Array(32))).toThrow(/counts: expected a Uint32Array/);
    expect(bad(keys, counts, new Uint16Array(16), new Uint8Array(32))).toThrow(/input: expected a Uint8Array/);
    expect(bad(keys, counts, new Uint8Array(32), 'x')).toThrow(/output: expected a Uint8Array/);
    const buffer = new Uint8Array(48);
    expect(bad(keys, counts, buffer.subarray(0, 32), buffer.subarray(16, 48))).toThrow(/overlaps/);
  });

  it('is the route the server picks when the addon is built', () => {
    expect(deviceAes()).toEqual({ aes: expect.objectContaining({ route: 'native' }), fallback: undefined });
  });
});
