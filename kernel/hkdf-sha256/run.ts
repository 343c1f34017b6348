// Runs the committed hkdf-sha256 kernel image (kernel/hkdf-sha256/hkdf-sha256.bin) under qemu-arm
// through kernel/hkdf-sha256/harness.c (commands: see its header), and counts the Thumb instructions
// it executes. Used by test/kernel/hkdf-sha256.test.ts; `npx tsx kernel/hkdf-sha256/run.ts` prints
// the instruction counts and stack depth of the renewal's key-schedule part (docs/firmware.md).
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { kernelFiles } from '../build.js';
import { HARNESS_CC, QEMU } from '../harness.js';
import { runAsScript } from '../../tools/run-as-script.js';
import { IMAGE } from './image.js';

/** Compiles harness.c for 32-bit ARM Linux into a fresh temporary folder; returns the executable. */
export function buildHkdfHarness(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'kernel-hkdf-harness-')), 'harness');
  execFileSync(HARNESS_CC, ['-static', '-O1', '-Wall', '-Wextra', '-Werror', '-o', out, fileURLToPath(new URL('harness.c', import.meta.url))], { stdio: 'pipe' });
  return out;
}

function harnessArgs(harness: string): string[] {
  const e = IMAGE.entries;
  return [harness, kernelFiles('hkdf-sha256').bin, ...[e.sha256, e.hmac_sha256, e.hkdf_expand, e.hpke_extract_and_expand, e.hpke_key_schedule, e.hpke_export].map(String)];
}

/** Feeds `commands` (one per line) to the harness running the committed image; one answer per command. */
export function runHkdf(harness: string, commands: string[], qemuArgs: string[] = []): string[] {
  const res = spawnSync(QEMU, [...qemuArgs, ...harnessArgs(harness)], { input: commands.join('\n') + '\n', encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  if (res.status !== 0) throw new Error(`harness exited ${String(res.status ?? res.signal)}: ${res.stderr}${res.stdout.slice(-200)}`);
  const lines = res.stdout.split('\n');
  lines.pop();
  if (lines.length !== commands.length) throw new Error(`harness answered ${lines.length} of ${commands.length} commands`);
  return lines;
}

/**
 * Upper bound, in Cortex-M4 cycles at zero wait states, of one Thumb instruction as qemu's
 * disassembler prints it, from the Cortex-M4 Technical Reference Manual (ARM DDI 0439, section 3.3.1,
 * table 3-1, "cycle counts ... based on a system with zero wait states"): data processing 1; LDR/STR
 * (any single load or store) 2, though the TRM lets neighbouring ones pipeline to 1; LDRD/STRD 1 + 2;
 * LDM/STM/PUSH/POP 1 + N (N registers), + P when the list holds pc; every branch 1 + P with the
 * refill P at its maximum 3, whether taken or not (TBB/TBH 2 + P); any multiply 2 (the table gives
 * 1 for MUL and UMULL); an instruction writing pc 1 + P. An instruction skipped by its IT condition
 * is charged as if it executed.
 */
export function cyclesBound(mnemonic: string, operands: string): number {
  const m = mnemonic.replace(/\.(w|n)$/, '');
  const refill = 3;
  const registers = (): number => {
    const list = /\{([^}]*)\}/.exec(operands)?.[1] ?? '';
    return list.split(',').filter((r) => r.trim() !== '').length;
  };
  if (/^(push|pop|ldm|stm)/.test(m)) return 1 + registers() + (/\bpc\b/.test(operands) ? refill : 0);
  if (/^(tbb|tbh)/.test(m)) return 2 + refill;
  if (/^(b|bl|blx|bx|cbz|cbnz)(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?$/.test(m)) return 1 + refill;
  if (/^(ldrd|strd)/.test(m)) return 3;
  if (/^(ldr|str)/.test(m)) return 2 + (/^pc\b/.test(operands) ? refill : 0);
  if (/^(mul|mla|mls|smull|umull|smlal|umlal|smla|smul)/.test(m)) return 2;
  if (/^(sdiv|udiv)/.test(m)) return 12;
  return 1 + (/^pc\s*,/.test(operands) ? refill : 0);
}

export interface Execution {
  /** Thumb instructions executed inside the image. */
  instructions: number;
  /** Their cost bound in Cortex-M4 cycles at zero wait states (cyclesBound). */
  cycles: number;
}

/**
 * Thumb instructions executed inside the image while the harness runs `commands`, counted per
 * translation block: qemu-arm logs each block's guest instructions when it translates it (-d in_asm)
 * and every block it enters (-d exec; nochain so that no block runs without a log line); the count is
 * the sum, over entered blocks whose start lies in the image, of that block's instruction count (and
 * of their cyclesBound). A block ends at the first branch, so every instruction of an entered block
 * executes (one skipped by its IT condition counts, as it costs a cycle on a Cortex-M4 too). The log
 * is streamed, not read whole. Each entry runs twice per call (the harness measures the stack with
 * two paints): the returned figures are halved. step: one instruction per block (-singlestep), the
 * method of kernel/harness.ts countInstructions, to check this one against.
 */
export async function countInstructionsPerBlock(harness: string, commands: string[], step = false): Promise<Execution> {
  const dir = mkdtempSync(join(tmpdir(), 'kernel-hkdf-count-'));
  const log = join(dir, 'exec.log');
  try {
    const [where] = runHkdf(harness, ['P', ...commands], [...(step ? ['-singlestep'] : []), '-d', 'in_asm,exec,nochain', '-D', log]);
    const [base, size] = where!.split(' ');
    const lo = parseInt(base!, 16);
    const hi = lo + Number(size);
    const blocks = new Map<number, Execution>();
    let block: Execution | undefined;
    let expectStart = false;
    const total: Execution = { instructions: 0, cycles: 0 };
    for await (const line of createInterface({ input: createReadStream(log), crlfDelay: Infinity })) {
      if (line.startsWith('IN:')) {
        expectStart = true;
        continue;
      }
      const m = /^0x([0-9a-f]+):\s+(?:[0-9a-f]{4}\s){1,2}\s*(\S+)\s*(.*)$/.exec(line);
      if (m && (expectStart || block)) {
        if (expectStart) {
          block = { instructions: 0, cycles: 0 };
          blocks.set(parseInt(m[1]!, 16), block);
          expectStart = false;
        }
        block!.instructions++;
        block!.cycles += cyclesBound(m[2]!, m[3]!);
        continue;
      }
      block = undefined;
      const t = /^Trace \d+: \S+ \[[0-9a-f]+\/([0-9a-f]+)\//.exec(line);
      if (t) {
        const pc = parseInt(t[1]!, 16);
        if (pc >= lo && pc < hi) {
          const b = blocks.get(pc);
          if (b === undefined) throw new Error(`block at ${pc.toString(16)} entered before its translation was logged`);
          total.instructions += b.instructions;
          total.cycles += b.cycles;
        }
      }
    }
    if (total.instructions % 2 !== 0) throw new Error(`odd instruction count ${total.instructions}: every entry should have run twice`);
    return { instructions: total.instructions / 2, cycles: total.cycles / 2 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The renewal's key-schedule part with this protocol's inputs (docs/protocol.md section 12), as hex fields of an R command. */
export function renewalCommand(parts: { dh: string; enc: string; pkR: string; info: string; psk: string; pskId: string }): string {
  return `R ffff ${parts.dh} ${parts.enc} ${parts.pkR} ${parts.info} ${parts.psk} ${parts.pskId} ${Buffer.from('sealpost/v1 seal key').toString('hex')} 16 ${Buffer.from('sealpost/v1 nonce salt').toString('hex')} 8 ${Buffer.from('sealpost/v1 chain').toString('hex')} 32`;
}

if (runAsScript(import.meta.url)) {
  const harness = buildHkdfHarness();
  const hex = (n: number, b: number): string => b.toString(16).padStart(2, '0').repeat(n);
  const info = Buffer.concat([Buffer.from('sealpost/v1 renew '), Buffer.from('SP-000001'), Buffer.from([0, 0, 0, 1])]).toString('hex');
  const pskId = Buffer.concat([Buffer.from('sealpost/v1 chain'), Buffer.from([0, 0, 0, 0])]).toString('hex');
  const parts = { dh: hex(32, 0x11), enc: hex(32, 0x22), pkR: hex(32, 0x33), info, psk: hex(32, 0x44), pskId };
  const ss = hex(32, 0x55);
  const cases: [string, string][] = [
    ['hpke_extract_and_expand', `X ${parts.dh} ${parts.enc} ${parts.pkR}`],
    ['hpke_key_schedule (PSK mode, info 31 bytes, psk_id 21)', `K ffff ${ss} ${info} ${parts.psk} ${pskId}`],
    ['hpke_export (seal key, 16)', `O ffff ${ss} ${Buffer.from('sealpost/v1 seal key').toString('hex')} 16`],
    ['hpke_export (nonce salt, 8)', `O ffff ${ss} ${Buffer.from('sealpost/v1 nonce salt').toString('hex')} 8`],
    ['hpke_export (chain, 32)', `O ffff ${ss} ${Buffer.from('sealpost/v1 chain').toString('hex')} 32`],
    ['whole key-schedule part of a renewal (1 + 1 + 3 calls)', renewalCommand(parts)],
    ['sha256 (64 bytes)', `H ${hex(64, 0x61)}`],
  ];
  for (const [what, command] of cases) {
    const { instructions, cycles } = await countInstructionsPerBlock(harness, [command]);
    console.log(`${what}: ${instructions} Thumb instructions, at most ${cycles} cycles (${(cycles / instructions).toFixed(2)} per instruction, ${(cycles / 64e3).toFixed(2)} ms at 64 MHz, zero wait states)`);
  }
  const [, depth] = runHkdf(harness, [renewalCommand(parts), 'S']);
  console.log(`deepest stack of those calls: ${depth} bytes`);
  rmSync(join(harness, '..'), { recursive: true, force: true });
}
