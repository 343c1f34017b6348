// kernel/profile.ts, the one instruction counter and cycle bound of the three kernels: the Cortex-M4
// TRM rules (table 3-1) on hand-written instructions, the per-block reading of a hand-written qemu
// log (taken and untaken branches), and, under qemu-arm, per-block counting equal to one instruction
// per block on every kernel.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCurveHarness, profileCurve25519 } from '../../kernel/curve25519/run.js';
import { buildHarness, missingEmulation, profileAesCcm } from '../../kernel/harness.js';
import { buildHkdfHarness, profileHkdf } from '../../kernel/hkdf-sha256/run.js';
import { BlockProfiler, cycleBound, isConditionalBranch, registerCount } from '../../kernel/profile.js';

/** cycleBound of one disassembly line "mnemonic operands". */
const cost = (line: string, taken?: boolean): number => {
  const [mnemonic, ...rest] = line.trim().split(/\s+/);
  return cycleBound(mnemonic!, rest.join(' '), taken);
};
const sum = (lines: string[]): number => lines.reduce((n, l) => n + cost(l), 0);

describe('cycle bound per instruction (Cortex-M4 TRM, table 3-1, P = 3)', () => {
  it('charges PUSH/POP/LDM/STM 1 + N with register ranges expanded, + P when pc is popped', () => {
    expect(cost('push {r4-r7, lr}')).toBe(1 + 5);
    expect(cost('push {r4, r5, r6, r7, lr}')).toBe(1 + 5);
    expect(cost('push.w {r4, r5, r6, r7, r8, sb, sl, fp, lr}')).toBe(1 + 9);
    expect(cost('stmdb sp!, {r4-r11, lr}')).toBe(1 + 9);
    expect(cost('pop {r4-r7, pc}')).toBe(1 + 5 + 3);
    expect(cost('pop.w {r4, r5, r6, r7, r8, pc}')).toBe(1 + 6 + 3);
    expect(cost('ldmia r0!, {r1-r3}')).toBe(1 + 3);
    expect(cost('ldmia.w ip, {r0, r1, r2, r3, r4, r5, r6, r7, r8, sb}')).toBe(1 + 10);
    expect(cost('ldm r0, {r0-r2, pc}')).toBe(1 + 4 + 3);
    expect(cost('stmia r0!, {r1, r2}')).toBe(1 + 2);
    expect(cost('push {lr}')).toBe(2);
  });

  it('charges every multiply, long multiply and multiply-accumulate 1, a divide 12', () => {
    for (const m of ['mul r0, r1, r2', 'muls r0, r1, r0', 'mul.w r3, r4, r5', 'mla r0, r1, r2, r3', 'mls r0, r1, r2, r3', 'umull r0, r1, r2, r3', 'smull r0, r1, r2, r3', 'umlal r0, r1, r2, r3', 'smlal r0, r1, r2, r3']) {
      expect(cost(m), m).toBe(1);
    }
    expect(cost('udiv r0, r1, r2')).toBe(12);
    expect(cost('sdiv r0, r1, r2')).toBe(12);
  });

  it('charges loads and stores 2 (LDRD/STRD 3), a load into pc 2 + P', () => {
    for (const m of ['ldr r0, [r1]', 'ldr.w sl, [pc, #0x18]', 'ldrb r0, [r1, #3]', 'ldrb.w r2, [r3], #1', 'ldrh r0, [r1]', 'ldrsh r0, [r1, r2]', 'str r1, [r3]', 'strb.w r3, [r0, #-1]', 'strh r0, [r1]', 'ldrne r3, [r0, #4]']) {
      expect(cost(m), m).toBe(2);
    }
    expect(cost('ldrd r2, r3, [r0, #8]')).toBe(3);
    expect(cost('strd r2, r3, [sp, #16]')).toBe(3);
    expect(cost('ldr.w pc, [sp], #4')).toBe(2 + 3);
  });

  it('charges unconditional branches 1 + P and conditional ones 1 + P taken, 1 not taken', () => {
    for (const m of ['b #0x1000', 'b.n #0x1000', 'b.w #0x1000', 'bl #0x1000', 'blx r3', 'bx lr']) expect(cost(m), m).toBe(4);
    for (const m of ['bne #0x2f422', 'beq.w #0x1000', 'bls #0x1000', 'cbz r3, #0x2f45a', 'cbnz r0, #0x1000']) {
      expect(isConditionalBranch(m.split(' ')[0]!), m).toBe(true);
      expect(cost(m, true), m).toBe(4);
      expect(cost(m, false), m).toBe(1);
      expect(cost(m), `${m} (unknown: taken)`).toBe(4);
    }
    expect(cost('tbb [pc, r3]')).toBe(2 + 3);
    expect(cost('tbh [pc, r3, lsl #1]')).toBe(2 + 3);
    for (const m of ['b', 'bl', 'bx', 'blx', 'bic', 'bics', 'bfi', 'bkpt']) expect(isConditionalBranch(m), m).toBe(false);
  });

  it('charges data processing 1 (bic, bfi and friends are not branches), and 1 + P when it writes pc', () => {
    for (const m of ['movs r3, #0', 'add.w r2, r2, r3, lsl #2', 'eor.w r0, r0, r1, ror #7', 'bic.w r0, r0, #7', 'bfi r0, r1, #0, #8', 'cmp r3, #0x33', 'it ls', 'itt ls', 'uxtb r0, r0', 'rev r0, r0', 'clz r0, r1', 'adr r3, #0x14', 'nop', 'add r3, pc', 'cmp pc, r0']) {
      expect(cost(m), m).toBe(1);
    }
    expect(cost('mov pc, lr')).toBe(1 + 3);
    expect(cost('add pc, r3')).toBe(1 + 3);
    expect(() => cost('vpush {d8, d9}')).toThrow(/floating-point or SIMD/);
  });

  it('adds up a hand-written function: prologue, loop body, epilogue', () => {
    // push 1 + 5, movs 1, ldr 2, umlal 1, subs 1, bne taken 4, pop 1 + 5 + 3
    expect(sum(['push {r4-r7, lr}', 'movs r3, #4', 'ldr r4, [r0], #4', 'umlal r5, r6, r4, r4', 'subs r3, #1', 'bne #0x1004', 'pop {r4-r7, pc}'])).toBe(6 + 1 + 2 + 1 + 1 + 4 + 9);
  });

  it('refuses register lists it cannot count instead of miscounting them', () => {
    expect(() => registerCount('{r4, q0}')).toThrow(/unknown register "q0"/);
    expect(() => registerCount('{r7-r4}')).toThrow(/empty register range/);
    expect(() => registerCount('r0, r1')).toThrow(/no register list/);
    expect(registerCount('{r0, sb, sl, fp, ip, sp, lr, pc}')).toBe(8);
  });
});

describe('per-block reading of a qemu-arm -d in_asm,exec,nochain log', () => {
  // A function at 0x1000: prologue block A, a loop block B run three times (taken, taken, then
  // falling through to C), epilogue C returning to code outside the image (0x20000, then an ARM-state
  // stub at 0x20010).
  const log = `----------------
IN: 
0x00001000:  b5f0       push     {r4, r5, r6, r7, lr}
0x00001002:  2303       movs     r3, #3

Trace 0: 0x7f0000000100 [00800480/00001000/00000000/00000200] 
----------------
IN: 
0x00001004:  3b01       subs     r3, #1
0x00001006:  d1fd       bne      #0x1004

Trace 0: 0x7f0000000200 [00800480/00001004/00000000/00000200] 
Trace 0: 0x7f0000000200 [00800480/00001004/00000000/00000200] 
Trace 0: 0x7f0000000200 [00800480/00001004/00000000/00000200] 
----------------
IN: 
0x00001008:  f85d fb04  ldr.w    pc, [sp], #4

Trace 0: 0x7f0000000300 [00800480/00001008/00000000/00000200] 
----------------
IN: main
0x00020000:  2000       movs     r0, #0
0x00020002:  4770       bx       lr

Trace 0: 0x7f0000000400 [00800480/00020000/00000000/00000200] main
----------------
IN: 
0x00020010:  e28fc600  add      ip, pc, #0, #12

Trace 0: 0x7f0000000500 [00000480/00020010/00000000/00000200] 
`;
  const profile = (text: string, lo = 0x1000, hi = 0x1100) => {
    const p = new BlockProfiler(lo, hi);
    for (const line of text.split('\n')) p.line(line);
    return p.total;
  };

  it('counts the image\'s instructions and charges the loop branch as taken twice and untaken once', () => {
    // A: 6 + 1; B: 3 x (1 + 1) + 2 x 3 taken; C: ldr pc 2 + 3. The block at 0x20000 is outside.
    expect(profile(log)).toEqual({ instructions: 2 + 3 * 2 + 1, cycles: 7 + 6 + 6 + 5 });
    expect(profile(log, 0x20000, 0x20004)).toEqual({ instructions: 2, cycles: 1 + 4 });
  });

  it('passes over ARM-state code (the C library\'s PLT stubs) outside the image, and refuses it inside', () => {
    expect(() => profile(log, 0x20000, 0x20020)).toThrow(/ARM-state code executed inside the image at 00020010/);
  });

  it('refuses a log whose block runs before its listing, or whose listing and execution disagree', () => {
    expect(() => profile('Trace 0: 0x7f0000000100 [00800480/00001000/00000000/00000200] ')).toThrow(/before listing it/);
    expect(() => profile(log.replace('00800480/00001004', '00800480/00001006'))).toThrow(/after listing a block at 1004/);
  });
});

const missing = missingEmulation();

describe.skipIf(missing !== undefined)(`per-block counting under qemu-arm equals one instruction per block${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let aes = '';
  let hkdf = '';
  let curve = '';
  beforeAll(() => {
    aes = buildHarness();
    hkdf = buildHkdfHarness();
    curve = buildCurveHarness();
  });

  it('on every kernel: an aes-ccm seal, an HMAC, SHA-512("abc"), in instructions and cycles', () => {
    const seal = profileAesCcm(aes, ['T 000102030405060708090a0b0c0d0e0f 0011223344556677 7 5a5a5a5a5a5a5a5a 1']);
    expect(seal.instructions).toBeGreaterThan(4000);
    expect(profileAesCcm(aes, ['T 000102030405060708090a0b0c0d0e0f 0011223344556677 7 5a5a5a5a5a5a5a5a 1'], true)).toEqual(seal);
    const hmac = profileHkdf(hkdf, [`M ${'11'.repeat(32)} ${'22'.repeat(32)}`]);
    expect(profileHkdf(hkdf, [`M ${'11'.repeat(32)} ${'22'.repeat(32)}`], true)).toEqual(hmac);
    const sha = profileCurve25519(curve, ['H 616263']);
    expect(profileCurve25519(curve, ['H 616263'], true)).toEqual(sha);
    for (const p of [seal, hmac, sha]) {
      expect(p.cycles / p.instructions).toBeGreaterThan(1);
      expect(p.cycles / p.instructions).toBeLessThan(3);
    }
  }, 120_000);
});
