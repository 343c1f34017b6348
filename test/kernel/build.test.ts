// kernel/build.ts: with the compiler that made the committed images on PATH (image.ts names it),
// every committed kernel image and its image.ts are exactly what a fresh build of the committed C gives
// (the binary is not a stale or hand-made file). Another gcc version may emit other bytes: then skipped.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import { buildKernel, CC, compilerVersion, kernelFiles, kernelNames } from '../../kernel/build.js';

const found = compilerVersion();
const skip =
  found === undefined
    ? `${CC} not on PATH (Debian: apt-get install gcc-arm-none-eabi)`
    : found !== IMAGE.compiler
      ? `the committed images were built with "${IMAGE.compiler}", this machine has "${found}"`
      : undefined;
if (skip) console.warn(`test/kernel/build.test.ts: rebuild comparison skipped: ${skip}`);

describe('kernel build', () => {
  it('finds the kernels', () => {
    expect(kernelNames()).toContain('aes-ccm');
  });

  describe.skipIf(skip !== undefined)(`rebuilt with ${CC}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    for (const name of kernelNames()) {
      it(`${name}: same bytes and image.ts as committed`, () => {
        const image = buildKernel(name);
        const files = kernelFiles(name);
        expect(image.bin.equals(readFileSync(files.bin))).toBe(true);
        expect(image.module).toBe(readFileSync(files.module, 'utf8'));
      });
    }
  });
});
