// Runs a committed kernel image under qemu-arm (user mode) through kernel/harness.c, built here
// for 32-bit ARM Linux with arm-linux-gnueabihf-gcc -static: one command per line in, one answer out.
// Used by test/kernel/ (correctness) and bench/kernel-seal.ts (executed instructions).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE } from './aes-ccm/image.js';
import { kernelFiles } from './build.js';

export const QEMU = 'qemu-arm';
export const HARNESS_CC = 'arm-linux-gnueabihf-gcc';

export function onPath(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why the emulated kernel tests cannot run here, or undefined when they can. */
export function missingEmulation(): string | undefined {
  const missing = [QEMU, HARNESS_CC].filter((cmd) => !onPath(cmd));
  return missing.length === 0 ? undefined : `${missing.join(' and ')} not on PATH (Debian: apt-get install qemu-user gcc-arm-linux-gnueabihf; .ci/run does)`;
}

/** Compiles the harness into a fresh temporary folder and returns the executable's path. */
export function buildHarness(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'kernel-harness-')), 'harness');
  execFileSync(HARNESS_CC, ['-static', '-O1', '-Wall', '-Wextra', '-Werror', '-o', out, fileURLToPath(new URL('harness.c', import.meta.url))], { stdio: 'pipe' });
  return out;
}

/** Feeds `commands` to the harness running the committed aes-ccm.bin (qemuArgs before the program); returns one answer per command. */
export function runAesCcm(harness: string, commands: string[], qemuArgs: string[] = []): string[] {
  const e = IMAGE.entries;
  const offsets = [e.aes_ccm_init, e.aes_ccm_seal, e.aes_ccm_ack, e.aes_ccm_ack_check, e.aes_block].map(String);
  const res = spawnSync(QEMU, [...qemuArgs, harness, kernelFiles('aes-ccm').bin, ...offsets], {
    input: commands.join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`harness exited ${String(res.status ?? res.signal)}: ${res.stderr}${res.stdout.slice(-200)}`);
  const lines = res.stdout.split('\n');
  lines.pop();
  if (lines.length !== commands.length) throw new Error(`harness answered ${lines.length} of ${commands.length} commands`);
  return lines;
}

/**
 * Thumb instructions executed inside the aes-ccm image while the harness runs `commands`: qemu-arm
 * translates one instruction per block (-singlestep) and logs every block it executes without chaining
 * (-d exec,nochain); the lines whose guest PC lies in the image are counted. Conditional instructions
 * skipped inside an IT block count too (a Cortex-M4 spends a cycle on them as well).
 */
export function countInstructions(harness: string, commands: string[]): number {
  const dir = mkdtempSync(join(tmpdir(), 'kernel-count-'));
  const log = join(dir, 'exec.log');
  try {
    const [where] = runAesCcm(harness, ['P', ...commands], ['-singlestep', '-d', 'exec,nochain', '-D', log]);
    const [base, size] = where!.split(' ');
    const lo = parseInt(base!, 16);
    const hi = lo + Number(size);
    let count = 0;
    for (const m of readFileSync(log, 'utf8').matchAll(/^Trace \d+: \S+ \[[0-9a-f]+\/([0-9a-f]+)\//gm)) {
      const pc = parseInt(m[1]!, 16);
      if (pc >= lo && pc < hi) count++;
    }
    return count;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
