// Cost of the renewal kernels on a 64 MHz Cortex-M4, for the device's part of a key renewal: two
// X25519 (enc = X25519(sk_e, 9) through x25519_base, dh = X25519(sk_e, pk_new)) and one Ed25519
// verification of an ANNOUNCE (64-byte signed message) in kernel/curve25519/curve25519.bin, then the
// key-schedule part in kernel/hkdf-sha256/hkdf-sha256.bin (ExtractAndExpand, the PSK key schedule, three
// exports; kernel/hkdf-sha256/run.ts prints it call by call), and the whole renewal. Counted as Thumb
// instructions executed inside the committed images under qemu-arm, per translation block, with two
// cycle figures: the per-instruction upper bound of kernel/profile.ts cycleBound (Cortex-M4 TRM table
// 3-1 at zero wait states: a taken branch with a 3-cycle refill, an untaken conditional branch 1, no
// pipelining of loads credited, no flash wait states) and the flat 2-3 cycles per instruction that
// bench/kernel-seal.ts uses for aes-ccm.
// X25519 runs the same instructions for every input (test/kernel/curve25519.test.ts checks it);
// verification is variable time, so it is measured over several random signatures (20 unless told) and
// the maximum kept (30 random ones spread over 2.33-2.51 M instructions, 2026-12-08).
// Run: npx tsx bench/kernel-curve25519.ts [--signatures N]
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { IMAGE } from '../kernel/curve25519/image.js';
import { IMAGE as HKDF_IMAGE } from '../kernel/hkdf-sha256/image.js';
import { buildCurveHarness, profileCurve25519, type Profile } from '../kernel/curve25519/run.js';
import { missingEmulation } from '../kernel/harness.js';
import { benchRenewalParts, buildHkdfHarness, profileHkdf, renewalCommand } from '../kernel/hkdf-sha256/run.js';
import { ANNOUNCE_CONTEXT, ANNOUNCE_SIGNED_LEN } from '../protocol/announce.js';

const MHZ = 64;
const FLAT_CPI = [2, 3];
const { values } = parseArgs({ options: { signatures: { type: 'string', default: '20' } } });
const signatures = Number(values.signatures);

const missing = missingEmulation();
if (missing) {
  console.error(`bench/kernel-curve25519.ts needs qemu-arm and arm-linux-gnueabihf-gcc: ${missing}`);
  process.exit(1);
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const harness = buildCurveHarness();
const empty = profileCurve25519(harness, []);
const measure = (command: string): Profile => {
  const p = profileCurve25519(harness, [command]);
  return { instructions: p.instructions - empty.instructions, cycles: p.cycles - empty.cycles };
};

const sk = randomBytes(32);
const enc = measure(`B ${hex(sk)}`);
const dh = measure(`X ${hex(sk)} ${hex(x25519.getPublicKey(randomBytes(32)))}`);
let verify: Profile = { instructions: 0, cycles: 0 };
for (let i = 0; i < signatures; i++) {
  const key = randomBytes(32);
  const msg = Buffer.concat([Buffer.from(ANNOUNCE_CONTEXT), randomBytes(ANNOUNCE_SIGNED_LEN)]);
  const p = measure(`V ${hex(ed25519.sign(msg, key))} ${hex(msg)} ${hex(ed25519.getPublicKey(key))}`);
  if (p.cycles > verify.cycles) verify = p;
}
const sha = measure(`H ${hex(randomBytes(64))}`);
const add = (...ps: Profile[]): Profile => ({ instructions: ps.reduce((n, p) => n + p.instructions, 0), cycles: ps.reduce((n, p) => n + p.cycles, 0) });
const curve = add(enc, dh, verify);
const hkdfHarness = buildHkdfHarness();
const keySchedule = profileHkdf(hkdfHarness, [renewalCommand(benchRenewalParts())]);

const ms = (cycles: number): string => (cycles / (MHZ * 1000)).toFixed(1);
console.log(`curve25519.bin: ${IMAGE.size} bytes, hkdf-sha256.bin: ${HKDF_IMAGE.size} bytes; ${MHZ} MHz Cortex-M4; load ${(await import('node:os')).loadavg()[0]!.toFixed(2)}`);
console.log(['entry', 'instructions', 'cycle bound', 'ms (bound)', ...FLAT_CPI.map((c) => `ms (CPI ${c})`)].join('\t'));
for (const [name, p] of [
  ['x25519_base (enc)', enc],
  ['x25519 (dh)', dh],
  [`ed25519_verify (ANNOUNCE, max of ${signatures})`, verify],
  ['sha512 (64 bytes)', sha],
  ['renewal\'s curve part: enc + dh + verify', curve],
  ['renewal\'s key-schedule part (hkdf-sha256: 1 + 1 + 3 calls)', keySchedule],
  ['whole renewal (both kernels)', add(curve, keySchedule)],
] as const) {
  console.log([name, p.instructions, p.cycles, ms(p.cycles), ...FLAT_CPI.map((c) => ms(p.instructions * c))].join('\t'));
}
