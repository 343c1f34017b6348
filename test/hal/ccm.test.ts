// CCM composed from AES (hal/ccm.ts) and the host's CCM against RFC 3610's packet vectors and the reference implementation.
import { describe, expect, it } from 'vitest';
import { createCipheriv, randomBytes } from 'node:crypto';
import { referenceCcm, referenceAesBlock } from '../reference/ccm.js';
import { ccmDecrypt, ccmEncrypt } from '../../protocol/ccm.js';
import { hex, loadVectors, sealVectors, toHex } from '../helpers/vectors.js';
import { buildNonce, DOMAIN_UPLINK } from '../../protocol/index.js';

interface Rfc3610 { name: string; key: string; nonce: string; aad: string; plaintext: string; ciphertext: string; tag: string }

describe('AES-CCM against RFC 3610 packet vectors', () => {
  for (const v of loadVectors<Rfc3610>('rfc3610.json')) {
    it(`reference CCM reproduces ${v.name}`, () => {
      const out = referenceCcm(hex(v.key), hex(v.nonce), hex(v.aad), hex(v.plaintext), 8);
      expect(toHex(out.ciphertext)).toBe(v.ciphertext);
      expect(toHex(out.tag)).toBe(v.tag);
    });
    it(`OpenSSL CCM (as the host uses it) reproduces ${v.name}`, () => {
      const c = createCipheriv('aes-128-ccm', hex(v.key), hex(v.nonce), { authTagLength: 8 });
      c.setAAD(hex(v.aad), { plaintextLength: v.plaintext.length / 2 });
      const ct = Buffer.concat([c.update(hex(v.plaintext)), c.final()]);
      expect(ct.toString('hex')).toBe(v.ciphertext);
      expect(c.getAuthTag().toString('hex')).toBe(v.tag);
    });
  }

  it('reference AES block matches FIPS 197 appendix C.1', () => {
    const out = referenceAesBlock(hex('000102030405060708090a0b0c0d0e0f'), hex('00112233445566778899aabbccddeeff'));
    expect(toHex(out)).toBe('69c4e0d86a7b0430d8cdb78070b4c55a');
  });
});

describe('host CCM (no associated data) agrees with the reference', () => {
  it('on every seal vector', () => {
    for (const v of sealVectors()) {
      const nonce = buildNonce(hex(v.nonce_salt), v.counter, DOMAIN_UPLINK);
      const ref = referenceCcm(hex(v.seal_key), nonce, new Uint8Array(0), hex(v.plaintext), 8);
      expect(toHex(ref.ciphertext) + toHex(ref.tag)).toBe(v.frame.slice(8));
    }
  });

  it('on 300 random messages of 0 to 300 bytes, and decrypts them back', () => {
    for (let i = 0; i < 300; i++) {
      const key = randomBytes(16);
      const nonce = randomBytes(13);
      const msg = randomBytes(i);
      const host = ccmEncrypt(key, nonce, msg);
      const ref = referenceCcm(key, nonce, new Uint8Array(0), msg, 8);
      expect(toHex(host.ciphertext)).toBe(toHex(ref.ciphertext));
      expect(toHex(host.tag)).toBe(toHex(ref.tag));
      expect(toHex(ccmDecrypt(key, nonce, host.ciphertext, host.tag)!)).toBe(toHex(msg));
    }
  });
});
