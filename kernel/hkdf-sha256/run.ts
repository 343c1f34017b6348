// Runs the committed hkdf-sha256 kernel image (kernel/hkdf-sha256/hkdf-sha256.bin) under qemu-arm
// through kernel/hkdf-sha256/harness.c (commands: see its header), and counts the Thumb instructions
// it executes (kernel/profile.ts). Used by test/kernel/hkdf-sha256.test.ts; `npx tsx
// kernel/hkdf-sha256/run.ts` prints the instruction counts, cycle bounds and stack depth of the
// renewal's key-schedule part (docs/firmware.md).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildHarness, runHarness } from '../harness.js';
import { profileHarness, type Profile } from '../profile.js';
import { runAsScript } from '../../tools/run-as-script.js';
import { IMAGE } from './image.js';

/** Compiles harness.c for 32-bit ARM Linux into a fresh temporary folder; returns the executable. */
export function buildHkdfHarness(): string {
  return buildHarness(new URL('harness.c', import.meta.url));
}

/** Feeds `commands` (one per line) to the harness running the committed image; one answer per command. */
export function runHkdf(harness: string, commands: string[], qemuArgs: string[] = []): string[] {
  const e = IMAGE.entries;
  return runHarness(harness, 'hkdf-sha256', [e.sha256, e.hmac_sha256, e.hkdf_expand, e.hpke_extract_and_expand, e.hpke_key_schedule, e.hpke_export], commands, qemuArgs);
}

/**
 * Thumb instructions executed inside the image while the harness runs `commands`, and their cycle
 * bound (kernel/profile.ts profileHarness: per translation block, Cortex-M4 TRM rules). The harness
 * runs every measured entry twice (two stack paints), so the figures are halved. singlestep: one
 * instruction per block, to check the per-block count against.
 */
export function profileHkdf(harness: string, commands: string[], singlestep = false): Profile {
  const p = profileHarness((c, q) => runHkdf(harness, c, q), commands, singlestep);
  if (p.instructions % 2 !== 0 || p.cycles % 2 !== 0) throw new Error(`odd count ${p.instructions} / ${p.cycles}: every entry should have run twice`);
  return { instructions: p.instructions / 2, cycles: p.cycles / 2 };
}

/** The renewal's key-schedule part with this protocol's inputs (docs/protocol.md section 12), as hex fields of an R command. */
export function renewalCommand(parts: { dh: string; enc: string; pkR: string; info: string; psk: string; pskId: string }): string {
  return `R ffff ${parts.dh} ${parts.enc} ${parts.pkR} ${parts.info} ${parts.psk} ${parts.pskId} ${Buffer.from('sealpost/v1 seal key').toString('hex')} 16 ${Buffer.from('sealpost/v1 nonce salt').toString('hex')} 8 ${Buffer.from('sealpost/v1 chain').toString('hex')} 32`;
}

/**
 * The measured renewal's inputs: device SP-000001, epoch 0 -> 1 (info "sealpost/v1 renew " || serial ||
 * epoch, 31 bytes; psk_id "sealpost/v1 chain" || epoch 0, 21 bytes), and fixed 32-byte values for dh,
 * enc, pkR and psk (the instruction count depends on lengths only).
 */
export function benchRenewalParts(): { dh: string; enc: string; pkR: string; info: string; psk: string; pskId: string } {
  const hex = (n: number, b: number): string => b.toString(16).padStart(2, '0').repeat(n);
  const info = Buffer.concat([Buffer.from('sealpost/v1 renew '), Buffer.from('SP-000001'), Buffer.from([0, 0, 0, 1])]).toString('hex');
  const pskId = Buffer.concat([Buffer.from('sealpost/v1 chain'), Buffer.from([0, 0, 0, 0])]).toString('hex');
  return { dh: hex(32, 0x11), enc: hex(32, 0x22), pkR: hex(32, 0x33), info, psk: hex(32, 0x44), pskId };
}

if (runAsScript(import.meta.url)) {
  const harness = buildHkdfHarness();
  const hex = (n: number, b: number): string => b.toString(16).padStart(2, '0').repeat(n);
  const parts = benchRenewalParts();
  const { info, pskId } = parts;
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
    const { instructions, cycles } = profileHkdf(harness, [command]);
    console.log(`${what}: ${instructions} Thumb instructions, at most ${cycles} cycles (${(cycles / instructions).toFixed(2)} per instruction, ${(cycles / 64e3).toFixed(2)} ms at 64 MHz, zero wait states)`);
  }
  const [, depth] = runHkdf(harness, [renewalCommand(parts), 'S']);
  console.log(`deepest stack of those calls: ${depth} bytes`);
  rmSync(join(harness, '..'), { recursive: true, force: true });
}
