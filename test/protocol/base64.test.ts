// protocol/base64.ts, the one base64 decoder of the server (frames in
// POST /v1/uplink) and the relay (acks in answers, its stored queue): one
// table of what it accepts and refuses, RFC 4648's vectors, and a cross-check
// against Node's Buffer, whose canonical output is the rule.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../hal/sim/random.js';
import { fromBase64, toBase64 } from '../../protocol/base64.js';

const bytes = (...b: number[]) => new Uint8Array(b);

/** RFC 4648 section 10, "Test Vectors". */
const RFC4648: [string, string][] = [
  ['', ''],
  ['f', 'Zg=='],
  ['fo', 'Zm8='],
  ['foo', 'Zm9v'],
  ['foob', 'Zm9vYg=='],
  ['fooba', 'Zm9vYmE='],
  ['foobar', 'Zm9vYmFy'],
];

/** Text the rule accepts, and its bytes. */
const ACCEPTED: [string, Uint8Array][] = [
  ['AAECAw==', bytes(0, 1, 2, 3)],
  ['AA==', bytes(0)],
  ['AAA=', bytes(0, 0)],
  ['//8=', bytes(255, 255)],
  ['+/+/', bytes(251, 255, 191)],
];

/** Text the rule refuses, and why. */
const REFUSED: [string, string][] = [
  ['A', 'length not a multiple of 4'],
  ['AB=', 'length not a multiple of 4'],
  ['AAECAw', 'missing padding'],
  ['AAECAw===', 'too much padding'],
  ['A===', 'three pad characters'],
  ['====', 'padding only'],
  ['AB==CD==', 'padding inside'],
  ['AB=C', 'padding inside a quantum'],
  ['AF==', 'non-canonical: pad bits set under "=="'],
  ['AB==', 'non-canonical: pad bits set under "=="'],
  ['AAB=', 'non-canonical: pad bits set under "="'],
  ['AAD=', 'non-canonical: pad bits set under "="'],
  ['ab-_', 'base64url alphabet'],
  ['AAE-Aw==', 'base64url alphabet'],
  ['AB C', 'space'],
  ['AAEC Aw==', 'space'],
  ['AAAA\n', 'line break'],
  ['AA\r\nAA', 'line break'],
  ['é000', 'non-ASCII'],
  ['\u0141AAA', 'non-ASCII whose low byte is an alphabet character'],
  ['!!!!', 'outside the alphabet'],
];

describe('base64 (RFC 4648 section 4, canonical, padded)', () => {
  it('decodes and encodes the RFC 4648 vectors', () => {
    for (const [plain, text] of RFC4648) {
      const b = new TextEncoder().encode(plain);
      expect(toBase64(b), plain).toBe(text);
      expect(fromBase64(text), text).toEqual(b);
    }
  });

  it('accepts canonical padded text', () => {
    for (const [text, b] of ACCEPTED) {
      expect(fromBase64(text), text).toEqual(b);
      expect(toBase64(b), text).toBe(text);
    }
    expect(fromBase64('')).toEqual(new Uint8Array(0));
  });

  it('refuses everything else', () => {
    for (const [text, why] of REFUSED) expect(fromBase64(text), `${JSON.stringify(text)}: ${why}`).toBeUndefined();
    expect(fromBase64(12 as unknown as string)).toBeUndefined();
  });

  it('base64 matches Buffer and refuses anything not canonical', () => {
    const random = seededRandom(3);
    for (let n = 0; n < 60; n++) {
      const b = Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
      const text = Buffer.from(b).toString('base64');
      expect(toBase64(b)).toBe(text);
      expect(fromBase64(text)).toEqual(b);
    }
    for (const bad of ['A', 'AB=', 'A===', 'AB==CD==', 'AF==', 'ab-_', 'AB C', '====', 'AAAA\n', 'é000']) expect(fromBase64(bad)).toBeUndefined();
    expect(fromBase64('')).toEqual(new Uint8Array(0));
  });

  it('decodes strict base64 only', () => {
    expect(fromBase64('AAECAw==')).toEqual(new Uint8Array([0, 1, 2, 3]));
    expect(fromBase64('')).toEqual(new Uint8Array(0));
    for (const bad of ['AAECAw', 'AAEC Aw==', 'AAE-Aw==', 'AAECAw===', '====']) expect(fromBase64(bad), bad).toBeUndefined();
  });

  it('accepts exactly the text Buffer writes: random alphabet text of frame sizes, including every pad-bit variant', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const random = seededRandom(11);
    const pick = () => alphabet[Math.floor(random() * 64)]!;
    let accepted = 0;
    const wrong: string[] = [];
    for (let n = 0; n < 3000; n++) {
      const quanta = 1 + Math.floor(random() * 82); // up to 328 characters, a 244-byte frame
      let text = '';
      for (let q = 0; q < quanta; q++) text += pick() + pick() + pick() + pick();
      const pad = n % 3;
      if (pad > 0) text = text.slice(0, -pad) + '='.repeat(pad);
      const node = Buffer.from(text, 'base64');
      const canonical = node.toString('base64') === text;
      const got = fromBase64(text);
      if ((got !== undefined) !== canonical || (got && !node.equals(got))) wrong.push(text);
      if (got) accepted++;
    }
    expect(wrong).toEqual([]);
    // Pad bits are random here, so about a third of the padded texts (and all unpadded ones) pass.
    expect(accepted).toBeGreaterThan(1000);
    expect(accepted).toBeLessThan(3000);
    for (let n = 0; n < 200; n++) {
      const b = new Uint8Array(randomBytes(n));
      expect(fromBase64(toBase64(b))).toEqual(b);
    }
  });
});
