// Runs a committed kernel image under qemu-arm (user mode) through test/kernel/harness.c, built here
// for 32-bit ARM Linux with arm-linux-gnueabihf-gcc -static: one command per line in, one answer out.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import { kernelFiles } from '../../kernel/build.js';

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

/** Feeds `commands` to the harness running the committed aes-ccm.bin; returns one answer per command. */
export function runAesCcm(harness: string, commands: string[]): string[] {
  const e = IMAGE.entries;
  const offsets = [e.aes_ccm_init, e.aes_ccm_seal, e.aes_ccm_ack, e.aes_ccm_ack_check, e.aes_block].map(String);
  const res = spawnSync(QEMU, [harness, kernelFiles('aes-ccm').bin, ...offsets], {
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
