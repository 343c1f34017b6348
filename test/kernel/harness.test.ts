// kernel/harness.ts countInstructions, the method bench/kernel-seal.ts reports: it counts only the
// image's own instructions, identically on every run, and in proportion to the AES work done.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildHarness, countInstructions, missingEmulation } from '../../kernel/harness.js';

const missing = missingEmulation();

describe.skipIf(missing !== undefined)(`instruction count under qemu-arm${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let harness = '';
  beforeAll(() => {
    harness = buildHarness();
  });
  const seal = (frameSize: number, reps: number) => `T 000102030405060708090a0b0c0d0e0f 0011223344556677 7 ${'5a'.repeat(frameSize - 12)} ${reps}`;

  it('is zero when no entry runs, the same on every run, and linear in the seals', () => {
    expect(countInstructions(harness, ['I 0'])).toBeLessThan(20);
    const init = countInstructions(harness, [seal(20, 0)]);
    const one = countInstructions(harness, [seal(20, 1)]) - init;
    const three = countInstructions(harness, [seal(20, 3)]) - init;
    expect(countInstructions(harness, [seal(20, 1)]) - init).toBe(one);
    expect(three).toBe(3 * one);
    // A 20-byte frame is 4 AES blocks (B0, one CBC-MAC block, A1, A0), a 36-byte frame 6.
    const six = countInstructions(harness, [seal(36, 1)]) - init;
    expect(six / one).toBeGreaterThan(1.4);
    expect(six / one).toBeLessThan(1.6);
    expect(one).toBeGreaterThan(4 * 1000);
    expect(one).toBeLessThan(4 * 8000);
  });
});
