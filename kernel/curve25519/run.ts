// Runs the committed curve25519 kernel image (kernel/curve25519/curve25519.bin) under qemu-arm through
// kernel/curve25519/harness.c, built here for 32-bit ARM Linux with arm-linux-gnueabihf-gcc -static:
// one command per line in, one answer per line out (the commands are listed at the top of harness.c).
// Used by test/kernel/curve25519.test.ts (correctness, stack) and bench/kernel-renewal.ts (instructions).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelFiles } from '../build.js';
import { HARNESS_CC, QEMU } from '../harness.js';
import { IMAGE } from './image.js';

/** Compiles kernel/curve25519/harness.c into a fresh temporary folder and returns the executable's path. */
export function buildCurveHarness(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'curve25519-harness-')), 'harness');
  execFileSync(HARNESS_CC, ['-static', '-O1', '-Wall', '-Wextra', '-Werror', '-o', out, fileURLToPath(new URL('harness.c', import.meta.url))], { stdio: 'pipe' });
  return out;
}

const harnessArgs = (harness: string): string[] => {
  const e = IMAGE.entries;
  return [harness, kernelFiles('curve25519').bin, ...[e.x25519, e.x25519_base, e.ed25519_verify, e.sha512].map(String)];
};

function answers(status: number | null, signal: string | null, stdout: string, stderr: string, commands: number): string[] {
  if (status !== 0) throw new Error(`curve25519 harness exited ${String(status ?? signal)}: ${stderr}${stdout.slice(-200)}`);
  const lines = stdout.split('\n');
  lines.pop();
  if (lines.length !== commands) throw new Error(`curve25519 harness answered ${lines.length} of ${commands} commands`);
  return lines;
}

/** Feeds `commands` to the harness running the committed curve25519.bin (qemuArgs before the program); one answer per command. */
export function runCurve25519(harness: string, commands: string[], qemuArgs: string[] = []): string[] {
  const res = spawnSync(QEMU, [...qemuArgs, ...harnessArgs(harness)], { input: commands.join('\n') + '\n', encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return answers(res.status, res.signal, res.stdout, res.stderr, commands.length);
}

/** runCurve25519 in a child process that runs while the caller computes (e.g. the reference results). */
export function startCurve25519(harness: string, commands: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(QEMU, harnessArgs(harness), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      try {
        resolve(answers(status, signal, Buffer.concat(out).toString('utf8'), Buffer.concat(err).toString('utf8'), commands.length));
      } catch (e) {
        reject(e as Error);
      }
    });
    child.stdin.end(commands.join('\n') + '\n');
  });
}

/**
 * Upper bound of the Cortex-M4 cycles of one Thumb instruction, from the Cortex-M4 Technical Reference
 * Manual r0p1 (ARM 100166_0001_00), 3.3.1, table 3-1 "Processor instruction set summary" (zero wait
 * states), with every branch taken and the pipeline refill at its maximum of 3, every load and store
 * paying its full 2 cycles (no pipelining of neighbouring loads), and no flash wait states: branches
 * (B, BL, BX, BLX, CBZ, CBNZ) 1 + 3; LDR/STR (all sizes) 2; LDRD/STRD 3; LDM/STM/PUSH/POP 1 + N
 * registers, + 3 when PC is loaded; MLA/MLS 2 (the table says 1); UDIV/SDIV 12; everything else 1,
 * including MUL, UMULL and UMLAL (single-cycle on the M4).
 * Instructions skipped inside an IT block are charged in full too.
 */
export function cycleBound(mnemonic: string, operands: string): number {
  const m = mnemonic.replace(/\.[wn]$/, '');
  if (/^(b(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?|bl|blx|bx|cbn?z)$/.test(m)) return 4;
  if (/^(push|pop|ldm|stm)/.test(m)) {
    const list = /\{([^}]*)\}/.exec(operands)?.[1] ?? '';
    let n = 0;
    for (const r of list.split(',').map((x) => x.trim())) {
      const range = /^r(\d+)-r(\d+)$/.exec(r);
      n += range ? Number(range[2]) - Number(range[1]) + 1 : r ? 1 : 0;
    }
    return 1 + n + (/\bpc\b/.test(list) ? 3 : 0);
  }
  if (/^(ldrd|strd)/.test(m)) return 3;
  if (/^(ldr|str)/.test(m)) return 2;
  if (/^(mla|mls)/.test(m)) return 2;
  if (/^(udiv|sdiv)/.test(m)) return 12;
  return 1;
}

export interface Profile {
  /** Thumb instructions executed inside the image. */
  instructions: number;
  /** Their cycles on a Cortex-M4 at the bound of cycleBound (an upper bound, flash wait states aside). */
  cycles: number;
}

/**
 * Thumb instructions executed inside the image while the harness runs `commands`, and their cycle
 * bound, counted per translation block rather than per instruction: qemu-arm -d in_asm,exec,nochain logs
 * each block when it is translated (its guest instructions, one line each) and then every execution of
 * a block (one "Trace" line naming the block's host code pointer and guest PC; nochain makes every
 * execution go through the logger). A block is executed right after it is translated, so the first
 * Trace line after an "IN:" listing names the host pointer of that listing; each later Trace line adds
 * its block's instructions and cycles when its PC lies inside the image. The log is read in 4 MB chunks
 * (a renewal's is a few hundred MB). As with kernel/harness.ts countInstructions, instructions skipped
 * inside an IT block count.
 */
export function profileCurve25519(harness: string, commands: string[]): Profile {
  const dir = mkdtempSync(join(tmpdir(), 'curve25519-count-'));
  const log = join(dir, 'exec.log');
  try {
    const [where] = runCurve25519(harness, ['P', ...commands], ['-d', 'in_asm,exec,nochain', '-D', log]);
    const [base, size] = where!.split(' ');
    const lo = parseInt(base!, 16);
    const hi = lo + Number(size);
    const blocks = new Map<string, Profile>();
    let listing: Profile | undefined; // the block listed last, until its first Trace line
    const total: Profile = { instructions: 0, cycles: 0 };
    const line = (text: string): void => {
      if (text.startsWith('Trace ')) {
        const m = /^Trace \d+: (\S+) \[[0-9a-f]+\/([0-9a-f]+)\//.exec(text);
        if (!m) throw new Error(`unexpected qemu trace line: ${text}`);
        if (listing) {
          blocks.set(m[1]!, listing);
          listing = undefined;
        }
        const pc = parseInt(m[2]!, 16);
        if (pc >= lo && pc < hi) {
          const block = blocks.get(m[1]!);
          if (block === undefined) throw new Error(`qemu executed block ${m[1]} at ${m[2]} before listing it`);
          total.instructions += block.instructions;
          total.cycles += block.cycles;
        }
      } else if (text.startsWith('IN:')) {
        listing = { instructions: 0, cycles: 0 };
      } else if (listing) {
        const m = /^0x[0-9a-f]+:\s+[0-9a-f]{4}(?: [0-9a-f]{4})?\s{2,}(\S+)\s*(.*)$/.exec(text);
        if (m) {
          listing.instructions++;
          listing.cycles += cycleBound(m[1]!, m[2]!);
        }
      }
    };
    const fd = openSync(log, 'r');
    try {
      const chunk = Buffer.alloc(4 << 20);
      let rest = '';
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, null);
        if (n === 0) break;
        const lines = (rest + chunk.toString('latin1', 0, n)).split('\n');
        rest = lines.pop()!;
        for (const l of lines) line(l);
      }
      if (rest) line(rest);
    } finally {
      closeSync(fd);
    }
    return total;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Thumb instructions executed inside the image while the harness runs `commands` (profileCurve25519). */
export function countCurveInstructions(harness: string, commands: string[]): number {
  return profileCurve25519(harness, commands).instructions;
}
