// The committed vectors are what test/vectors/generate.ts renders today, and have the documented shapes.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { renderVectors } from '../vectors/generate.js';

describe('committed vectors', () => {
  const rendered = renderVectors();
  for (const name of Object.keys(rendered)) {
    it(`${name} is exactly what test/vectors/generate.ts produces (run npm run vectors after a deliberate change)`, () => {
      expect(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')).toBe(rendered[name]);
    });
  }

  it('follow the documented schemas', () => {
    const hexPattern = (n: number) => new RegExp(`^[0-9a-f]{${n}}$`);
    for (const v of JSON.parse(rendered['seal.json']!)) {
      expect(Object.keys(v).sort()).toEqual(['counter', 'frame', 'frame_size', 'nonce_salt', 'plaintext', 'seal_key']);
      expect(v.seal_key).toMatch(hexPattern(32));
      expect(v.nonce_salt).toMatch(hexPattern(16));
      expect(v.plaintext).toMatch(hexPattern(2 * (v.frame_size - 12)));
      expect(v.frame).toMatch(hexPattern(2 * v.frame_size));
    }
    for (const v of JSON.parse(rendered['ack.json']!)) {
      expect(Object.keys(v).sort()).toEqual(['ack', 'counter', 'nonce_salt', 'seal_key']);
      expect(v.ack).toMatch(hexPattern(24));
    }
    for (const v of JSON.parse(rendered['provision.json']!)) {
      expect(Object.keys(v).sort()).toEqual(['enc', 'ephemeral_private_key', 'ingest_private_key', 'ingest_public_key', 'kcv', 'nonce_salt', 'seal_key', 'serial']);
      expect(typeof v.serial).toBe('string');
      for (const k of ['ingest_private_key', 'ingest_public_key', 'ephemeral_private_key', 'enc']) expect(v[k]).toMatch(hexPattern(64));
      expect(v.seal_key).toMatch(hexPattern(32));
      expect(v.nonce_salt).toMatch(hexPattern(16));
      expect(v.kcv).toMatch(hexPattern(6));
    }
  });
});
