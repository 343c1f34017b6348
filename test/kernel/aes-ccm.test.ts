// The committed aes-ccm kernel image (kernel/aes-ccm/aes-ccm.bin) executed by qemu-arm through
// kernel/harness.c: every seal and ack vector, FIPS-197 C.1, the entries' refusals, and 10,000
// random frames and 2,000 random acks against protocol/ (OpenSSL). RFC 3610's packet vectors 1-3 all
// carry 8 bytes of associated data, which this CCM (docs/protocol.md: no AAD) never takes; the host
// CCM is checked against them in test/hal/ccm.test.ts.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import { kernelFiles } from '../../kernel/build.js';
import { makeAck } from '../../protocol/ack.js';
import { sealFrame } from '../../protocol/frame.js';
import { MAX_FRAME_SIZE, MIN_FRAME_SIZE } from '../../protocol/wire/constants.js';
import { ackVectors, sealVectors, toHex } from '../helpers/vectors.js';
import { buildHarness, missingEmulation, runAesCcm } from '../../kernel/harness.js';

const RANDOM_FRAMES = 10_000;
const RANDOM_ACKS = 2_000;

describe('aes-ccm kernel image', () => {
  it('is the file image.ts describes (size, SHA-256)', () => {
    const bin = readFileSync(kernelFiles('aes-ccm').bin);
    expect(bin.length).toBe(IMAGE.size);
    expect(createHash('sha256').update(bin).digest('hex')).toBe(IMAGE.sha256);
    for (const offset of Object.values(IMAGE.entries)) expect(offset % 2 === 0 && offset < IMAGE.size).toBe(true);
  });
});

const missing = missingEmulation();
if (missing) console.warn(`test/kernel/aes-ccm.test.ts: emulated kernel tests skipped: ${missing}`);

describe.skipIf(missing !== undefined)(`aes-ccm kernel under qemu-arm${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let harness = '';
  beforeAll(() => {
    harness = buildHarness();
  });

  it('encrypts FIPS-197 appendix C.1', () => {
    expect(runAesCcm(harness, ['B 000102030405060708090a0b0c0d0e0f 00112233445566778899aabbccddeeff'])).toEqual(['69c4e0d86a7b0430d8cdb78070b4c55a']);
  });

  it('reproduces every frame of test/vectors/seal.json, sealed apart and in place', () => {
    const vectors = sealVectors();
    const out = runAesCcm(harness, vectors.map((v) => `S ${v.seal_key} ${v.nonce_salt} ${v.counter} ${v.plaintext}`));
    expect(out).toEqual(vectors.map((v) => v.frame));
  });

  it('reproduces every ack of test/vectors/ack.json and accepts exactly those', () => {
    const vectors = ackVectors();
    const made = runAesCcm(harness, vectors.map((v) => `A ${v.seal_key} ${v.nonce_salt} ${v.counter}`));
    expect(made).toEqual(vectors.map((v) => `${v.ack} 1 0`));
    const checks: string[] = [];
    for (const v of vectors) {
      checks.push(`C ${v.seal_key} ${v.nonce_salt} ${v.ack}`);
      for (let i = 0; i < 12; i++) {
        const forged = Buffer.from(v.ack, 'hex');
        forged[i]! ^= 0x80;
        checks.push(`C ${v.seal_key} ${v.nonce_salt} ${forged.toString('hex')}`);
      }
    }
    expect(runAesCcm(harness, checks)).toEqual(vectors.flatMap(() => ['1', ...Array<string>(12).fill('0')]));
  });

  it('refuses counter 0 and plaintext lengths outside 1..232', () => {
    const key = '00'.repeat(16);
    const salt = '00'.repeat(8);
    const max = IMAGE.constants.MAX_MSG;
    expect(max).toBe(MAX_FRAME_SIZE - 12);
    expect(runAesCcm(harness, ['I 0', 'I 1', `I ${max}`, `I ${max + 1}`, `Z ${key} ${salt} 8 0`, `Z ${key} ${salt} 8 1`, `C ${key} ${salt} ${'00'.repeat(12)}`])).toEqual([
      '-1', '0', '0', '-1', '-1', '20', '0',
    ]);
  });

  it(`agrees with protocol/ on ${RANDOM_FRAMES} random frames and ${RANDOM_ACKS} random acks`, () => {
    const commands: string[] = [];
    const expected: string[] = [];
    for (let i = 0; i < RANDOM_FRAMES; i++) {
      const keys = { sealKey: randomBytes(16), nonceSalt: randomBytes(8) };
      // Counters spread over the whole range, with the byte boundaries of the vectors over-represented.
      const counter = i % 4 === 0 ? [1, 255, 256, 65535, 65536, 0xffffffff][i % 6]! : randomInt(1, 2 ** 32 - 1);
      const frameSize = i % 3 === 0 ? [MIN_FRAME_SIZE, 20, 28, 29, MAX_FRAME_SIZE][i % 5]! : randomInt(MIN_FRAME_SIZE, MAX_FRAME_SIZE + 1);
      const plaintext = randomBytes(frameSize - 12);
      commands.push(`S ${toHex(keys.sealKey)} ${toHex(keys.nonceSalt)} ${counter} ${toHex(plaintext)}`);
      expected.push(toHex(sealFrame(keys, counter, plaintext, frameSize)));
    }
    for (let i = 0; i < RANDOM_ACKS; i++) {
      const keys = { sealKey: randomBytes(16), nonceSalt: randomBytes(8) };
      const counter = randomInt(1, 2 ** 32 - 1);
      commands.push(`A ${toHex(keys.sealKey)} ${toHex(keys.nonceSalt)} ${counter}`);
      expected.push(`${toHex(makeAck(keys, counter))} 1 0`);
    }
    const out = runAesCcm(harness, commands);
    const wrong = out.map((line, i) => (line === expected[i] ? -1 : i)).filter((i) => i >= 0);
    expect(wrong.slice(0, 5).map((i) => ({ command: commands[i], got: out[i], want: expected[i] }))).toEqual([]);
  });
});
