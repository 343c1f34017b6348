// The one instruction counter and cycle bound of the kernels (aes-ccm, hkdf-sha256, curve25519): Thumb
// instructions a committed image executes under qemu-arm, counted per translation block from qemu's
// own log, and their cost bound in Cortex-M4 cycles. Used by kernel/harness.ts countInstructions,
// kernel/hkdf-sha256/run.ts, kernel/curve25519/run.ts and the benches; the rules are tested on
// hand-written instruction lines in test/kernel/profile.test.ts.
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The pipeline refill P of the Cortex-M4 TRM's table, at its maximum ("1 to 3 depending on the alignment and width of the target instruction"). */
export const REFILL = 3;
/** SDIV/UDIV take "2 to 12" cycles; the bound charges 12. */
export const DIVIDE = 12;

const CONDITIONS = 'eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al';
const CONDITIONAL_BRANCH = new RegExp(`^(b(${CONDITIONS})|cbz|cbnz)$`);
const BRANCH = new RegExp(`^(b|bl|blx|bx)(${CONDITIONS})?$`);

/** The mnemonic as the TRM names it: lower case, without the .n/.w width qualifier qemu's disassembler may print. */
const base = (mnemonic: string): string => mnemonic.toLowerCase().replace(/\.(n|w)$/, '');

/** True for a branch that may fall through: B<cond> (outside an IT block's syntax), CBZ and CBNZ. */
export function isConditionalBranch(mnemonic: string): boolean {
  return CONDITIONAL_BRANCH.test(base(mnemonic));
}

/**
 * The registers a {list} names, ranges expanded: "{r4-r7, lr}" is 5, "{r4, r5, r6, pc}" 4. Anything
 * other than r0-r15, sb, sl, fp, ip, sp, lr and pc is an error rather than a silent miscount.
 */
export function registerCount(operands: string): number {
  const list = /\{([^}]*)\}/.exec(operands)?.[1];
  if (list === undefined) throw new Error(`no register list in "${operands}"`);
  const number = (r: string): number => {
    const named: Record<string, number> = { sb: 9, sl: 10, fp: 11, ip: 12, sp: 13, lr: 14, pc: 15 };
    const m = /^r(\d+)$/.exec(r);
    const n = m ? Number(m[1]) : named[r];
    if (n === undefined || n > 15) throw new Error(`unknown register "${r}" in "${operands}"`);
    return n;
  };
  let n = 0;
  for (const item of list.split(',').map((x) => x.trim().toLowerCase())) {
    if (item === '') continue;
    const range = /^(\w+)\s*-\s*(\w+)$/.exec(item);
    if (range) {
      const span = number(range[2]!) - number(range[1]!) + 1;
      if (span < 1) throw new Error(`empty register range "${item}" in "${operands}"`);
      n += span;
    } else {
      number(item);
      n++;
    }
  }
  return n;
}

/**
 * Upper bound, in Cortex-M4 cycles at zero wait states, of one Thumb instruction as qemu-arm 7.2's
 * disassembler prints it (mnemonic, operands). The rules, from the Cortex-M4 Technical Reference
 * Manual (ARM DDI 0439 / 100166_0001_00, section 3.3.1, table 3-1 "Processor instruction set summary";
 * P is the pipeline refill, 1 to 3, charged at 3; N the registers of the list, pc and lr included):
 * - B, BL, BX, BLX: 1 + P. B<cond>, CBZ, CBNZ: 1 + P when taken, 1 when not (`taken`, default true:
 *   where the caller cannot tell, the bound assumes the branch was taken). TBB, TBH: 2 + P.
 * - LDM, STM, PUSH, POP: 1 + N, + P when pc is loaded (POP {.., pc}, LDM {.., pc}).
 * - LDRD, STRD: 1 + N = 3. Any other single load or store (LDR, LDRB, LDRH, LDRSB, LDRSH, LDREX, STR,
 *   ...): 2, + P when it loads pc. The table lets neighbouring loads and stores pipeline to 1; the
 *   bound does not credit it.
 * - SDIV, UDIV: 2 to 12, charged 12.
 * - Every multiply, multiply-accumulate and long multiply (MUL, MLA, MLS, SMULL, UMULL, SMLAL, UMLAL,
 *   the DSP forms): 1. The Cortex-M4 table says 1 for all of them (the Cortex-M3's says 2 for MLA and
 *   3 to 7 for the long ones, which is not this core).
 * - An instruction writing pc otherwise (MOV pc, ADD pc): 1 + P.
 * - Everything else (data processing, shifts, compare, IT, bit fields, extends, NOP): 1.
 * - Floating-point and SIMD instructions (V...): refused; the kernels are built without an FPU.
 * An instruction skipped by its IT condition is charged as if it executed (the M4 spends at least a
 * cycle on it too; the bound takes the executed cost).
 */
export function cycleBound(mnemonic: string, operands: string, taken = true): number {
  const m = base(mnemonic);
  const ops = operands.trim().toLowerCase();
  const writesPc = /^pc\b/.test(ops);
  if (m.startsWith('v')) throw new Error(`${mnemonic} is a floating-point or SIMD instruction, outside the Cortex-M4 integer table this bound uses (the kernels are built without an FPU)`);
  if (CONDITIONAL_BRANCH.test(m)) return taken ? 1 + REFILL : 1;
  if (BRANCH.test(m)) return 1 + REFILL;
  if (/^(tbb|tbh)/.test(m)) return 2 + REFILL;
  if (/^(push|pop|ldm|stm)/.test(m)) return 1 + registerCount(ops) + (/^(pop|ldm)/.test(m) && /\{[^}]*\bpc\b/.test(ops) ? REFILL : 0);
  if (/^(ldrd|strd)/.test(m)) return 3;
  if (/^(ldr|str)/.test(m)) return 2 + (m.startsWith('ldr') && writesPc ? REFILL : 0);
  if (/^(sdiv|udiv)/.test(m)) return DIVIDE;
  return 1 + (writesPc && !/^(cmp|cmn|tst|teq)/.test(m) ? REFILL : 0);
}

export interface Profile {
  /** Thumb instructions executed inside the image (those skipped by an IT condition included). */
  instructions: number;
  /** Their cycles at the bound of cycleBound, conditional branches charged as taken or not as they went. */
  cycles: number;
}

/** One translated block: its first address, its instructions and their cycles (a final conditional branch charged as not taken). */
interface Block {
  pc: number;
  instructions: number;
  cycles: number;
  /** When the block ends in a conditional branch: the address after it, and its target when qemu printed one. */
  fallthrough?: number;
  target?: number;
  /** ARM-state code (the harness's C library has some): never expected inside a Thumb image. */
  arm?: boolean;
}

/**
 * Reads a qemu-arm `-d in_asm,exec,nochain` log line by line. qemu logs each block when it translates
 * it ("IN:" then one line per guest instruction: address, encoding, mnemonic, operands) and then a
 * "Trace" line for every execution of a block (host code pointer, guest pc; nochain sends every
 * execution through the logger). A block is executed right after it is translated, so the first Trace
 * line after a listing names that listing's host pointer (and must name its first address); each
 * Trace line whose pc lies in [lo, hi) adds its block's instructions and cycles. A block ends at its
 * first branch, so all of an executed block executes. When a block in the image ends in a conditional
 * branch, the next Trace line's pc says whether it was taken (not taken: the pc after the branch).
 */
export class BlockProfiler {
  readonly total: Profile = { instructions: 0, cycles: 0 };
  private readonly blocks = new Map<string, Block>();
  private listing: Block | undefined;
  private last: { address: number; size: number; mnemonic: string; operands: string } | undefined;
  private pending: Block | undefined;

  constructor(
    private readonly lo: number,
    private readonly hi: number,
  ) {}

  line(text: string): void {
    if (text.startsWith('Trace ')) return this.trace(text);
    if (text.startsWith('IN:')) {
      this.close();
      this.listing = { pc: -1, instructions: 0, cycles: 0 };
      return;
    }
    if (!this.listing) return;
    // Thumb: one or two 4-digit halfwords; ARM state (the C library's PLT stubs): one 8-digit word.
    const m = /^0x([0-9a-f]+):\s+(?:([0-9a-f]{8})|[0-9a-f]{4}( [0-9a-f]{4})?)\s{2,}(\S+)\s*(.*)$/.exec(text);
    if (!m) return;
    const address = parseInt(m[1]!, 16);
    if (this.listing.pc < 0) this.listing.pc = address;
    if (m[2]) this.listing.arm = true;
    if (this.last) this.add(this.listing, this.last, false);
    this.last = { address, size: m[2] || m[3] ? 4 : 2, mnemonic: m[4]!, operands: m[5]! };
  }

  /** Charges an instruction to a block; a conditional branch that ends it is charged as not taken, and remembered. */
  private add(block: Block, i: NonNullable<BlockProfiler['last']>, final: boolean): void {
    block.instructions++;
    if (block.pc < this.lo || block.pc >= this.hi || block.arm) return; // never charged: only the image's blocks are
    const conditional = final && isConditionalBranch(i.mnemonic);
    block.cycles += cycleBound(i.mnemonic, i.operands, !conditional);
    if (conditional) {
      block.fallthrough = i.address + i.size;
      const target = /#0x([0-9a-f]+)\s*$/.exec(i.operands);
      if (target) block.target = parseInt(target[1]!, 16);
    }
  }

  /** Ends the listing in progress: its last instruction is the one that ended the block. */
  private close(): void {
    if (this.listing && this.last) this.add(this.listing, this.last, true);
    this.last = undefined;
  }

  private trace(text: string): void {
    const m = /^Trace \d+: (\S+) \[[0-9a-f]+\/([0-9a-f]+)\//.exec(text);
    if (!m) throw new Error(`unexpected qemu trace line: ${text}`);
    const pc = parseInt(m[2]!, 16);
    if (this.pending) {
      const b = this.pending;
      if (pc !== b.fallthrough || b.target === b.fallthrough) this.total.cycles += REFILL;
      this.pending = undefined;
    }
    if (this.listing) {
      this.close();
      if (this.listing.pc !== pc) throw new Error(`qemu executed ${m[2]} after listing a block at ${this.listing.pc.toString(16)}: the log is not in translate-then-execute order`);
      this.blocks.set(m[1]!, this.listing);
      this.listing = undefined;
    }
    if (pc < this.lo || pc >= this.hi) return;
    const block = this.blocks.get(m[1]!);
    if (block === undefined || block.pc !== pc) throw new Error(`qemu executed block ${m[1]} at ${m[2]} before listing it`);
    if (block.arm) throw new Error(`ARM-state code executed inside the image at ${m[2]}: the kernels are Thumb`);
    this.total.instructions += block.instructions;
    this.total.cycles += block.cycles;
    if (block.fallthrough !== undefined) this.pending = block;
  }

  /** Feeds a whole log file, read in 4 MB chunks (a renewal's log is a few hundred MB). */
  feedFile(path: string): Profile {
    const fd = openSync(path, 'r');
    try {
      const chunk = Buffer.alloc(4 << 20);
      let rest = '';
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, null);
        if (n === 0) break;
        const lines = (rest + chunk.toString('latin1', 0, n)).split('\n');
        rest = lines.pop()!;
        for (const l of lines) this.line(l);
      }
      if (rest) this.line(rest);
    } finally {
      closeSync(fd);
    }
    if (this.pending) throw new Error('the log ends right after a conditional branch in the image');
    return this.total;
  }
}

/**
 * Runs a kernel harness (one answer per command; its "P" command answers the image's address in hex
 * and its size) with `commands` under qemu's execution log and returns the Thumb instructions executed
 * inside the image and their cycle bound (BlockProfiler). `run(commands, qemuArgs)` runs the harness.
 * singlestep: one instruction per block (-singlestep), the slow method, to check the per-block count
 * against.
 */
export function profileHarness(run: (commands: string[], qemuArgs: string[]) => string[], commands: string[], singlestep = false): Profile {
  const dir = mkdtempSync(join(tmpdir(), 'kernel-profile-'));
  const log = join(dir, 'exec.log');
  try {
    const [where] = run(['P', ...commands], [...(singlestep ? ['-singlestep'] : []), '-d', 'in_asm,exec,nochain', '-D', log]);
    const m = /^([0-9a-f]+) (\d+)$/.exec(where ?? '');
    if (!m) throw new Error(`the harness answered "${where}" to P, not "<hex address> <size>"`);
    const lo = parseInt(m[1]!, 16);
    return new BlockProfiler(lo, lo + Number(m[2])).feedFile(log);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
