// Runs the committed curve25519 kernel image (kernel/curve25519/curve25519.bin) under qemu-arm through
// kernel/curve25519/harness.c, built here for 32-bit ARM Linux with arm-linux-gnueabihf-gcc -static:
// one command per line in, one answer per line out (the commands are listed at the top of harness.c).
// Used by test/kernel/curve25519.test.ts (correctness, stack) and bench/kernel-curve25519.ts (instructions, cycle bound).
import { spawn } from 'node:child_process';
import { kernelFiles } from '../build.js';
import { buildHarness, harnessAnswers, QEMU, runHarness } from '../harness.js';
import { profileHarness, type Profile } from '../profile.js';
import { IMAGE } from './image.js';

/** Compiles kernel/curve25519/harness.c into a fresh temporary folder and returns the executable's path. */
export function buildCurveHarness(): string {
  return buildHarness(new URL('harness.c', import.meta.url));
}

const entries = (): number[] => {
  const e = IMAGE.entries;
  return [e.x25519, e.x25519_base, e.ed25519_verify, e.sha512];
};

/** Feeds `commands` to the harness running the committed curve25519.bin (qemuArgs before the program); one answer per command. */
export function runCurve25519(harness: string, commands: string[], qemuArgs: string[] = []): string[] {
  return runHarness(harness, 'curve25519', entries(), commands, qemuArgs);
}

/** runCurve25519 in a child process that runs while the caller computes (e.g. the reference results). */
export function startCurve25519(harness: string, commands: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(QEMU, [harness, kernelFiles('curve25519').bin, ...entries().map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      try {
        resolve(harnessAnswers(status, signal, Buffer.concat(out).toString('utf8'), Buffer.concat(err).toString('utf8'), commands.length));
      } catch (e) {
        reject(e as Error);
      }
    });
    child.stdin.end(commands.join('\n') + '\n');
  });
}

export type { Profile };

/** Thumb instructions executed inside the image while the harness runs `commands`, and their cycle bound (kernel/profile.ts profileHarness). */
export function profileCurve25519(harness: string, commands: string[], singlestep = false): Profile {
  return profileHarness((c, q) => runCurve25519(harness, c, q), commands, singlestep);
}

/** Thumb instructions executed inside the image while the harness runs `commands` (profileCurve25519). */
export function countCurveInstructions(harness: string, commands: string[]): number {
  return profileCurve25519(harness, commands).instructions;
}
