// Runs a committed kernel image under qemu-arm (user mode) through kernel/harness.c, built here
// for 32-bit ARM Linux with arm-linux-gnueabihf-gcc -static: one command per line in, one answer out.
// Used by test/kernel/ (correctness) and bench/kernel-seal.ts (executed instructions); also the
// shared runner of the other kernels' harnesses (kernel/<name>/run.ts).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE } from './aes-ccm/image.js';
import { kernelFiles } from './build.js';
import { profileHarness, type Profile } from './profile.js';

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

/**
 * Compiles a kernel's qemu harness (default kernel/harness.c, the aes-ccm one; the others include
 * kernel/harness.h as it does) into a fresh temporary folder and returns the executable's path.
 */
export function buildHarness(source: URL = new URL('harness.c', import.meta.url)): string {
  const out = join(mkdtempSync(join(tmpdir(), 'kernel-harness-')), 'harness');
  execFileSync(HARNESS_CC, ['-static', '-O1', '-Wall', '-Wextra', '-Werror', '-o', out, fileURLToPath(source)], { stdio: 'pipe' });
  return out;
}

/** The lines a harness printed, one per command, or an error saying how it failed. */
export function harnessAnswers(status: number | null, signal: string | null, stdout: string, stderr: string, commands: number): string[] {
  if (status !== 0) throw new Error(`harness exited ${String(status ?? signal)}: ${stderr}${stdout.slice(-200)}`);
  const lines = stdout.split('\n');
  lines.pop();
  if (lines.length !== commands) throw new Error(`harness answered ${lines.length} of ${commands} commands`);
  return lines;
}

/**
 * Runs `harness` under qemu-arm (qemuArgs before the program) on the committed image of kernel `name`
 * with the entry offsets it takes, feeding `commands` one per line; one answer per command.
 */
export function runHarness(harness: string, name: string, entries: number[], commands: string[], qemuArgs: string[] = []): string[] {
  const res = spawnSync(QEMU, [...qemuArgs, harness, kernelFiles(name).bin, ...entries.map(String)], {
    input: commands.join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  return harnessAnswers(res.status, res.signal, res.stdout, res.stderr, commands.length);
}

const aesEntries = (): number[] => {
  const e = IMAGE.entries;
  return [e.aes_ccm_init, e.aes_ccm_seal, e.aes_ccm_ack, e.aes_ccm_ack_check, e.aes_block];
};

/** Feeds `commands` to the harness running the committed aes-ccm.bin (qemuArgs before the program); returns one answer per command. */
export function runAesCcm(harness: string, commands: string[], qemuArgs: string[] = []): string[] {
  return runHarness(harness, 'aes-ccm', aesEntries(), commands, qemuArgs);
}

/** Thumb instructions executed inside the aes-ccm image while the harness runs `commands`, and their cycle bound (kernel/profile.ts). */
export function profileAesCcm(harness: string, commands: string[], singlestep = false): Profile {
  return profileHarness((c, q) => runAesCcm(harness, c, q), commands, singlestep);
}

/** Thumb instructions executed inside the aes-ccm image while the harness runs `commands` (profileAesCcm). */
export function countInstructions(harness: string, commands: string[]): number {
  return profileAesCcm(harness, commands).instructions;
}
