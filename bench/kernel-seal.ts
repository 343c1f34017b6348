// Cost of a seal with the native-kernel backend on a 64 MHz nRF52, in two parts measured apart:
// 1. the compiled aes-ccm kernel (kernel/aes-ccm/aes-ccm.bin): Thumb instructions the committed image
//    executes under qemu-arm (kernel/harness.ts profileAesCcm: per translation block, kernel/profile.ts)
//    at a stated cycles-per-instruction range and at the Cortex-M4 TRM cycle bound of kernel/profile.ts;
// 2. the interpreter's glue around the call (hal/espruino/kernel.ts kernelEngine: addresses, copies,
//    the call, its checks), counted with callgrind on Espruino's x86-64 Linux build with the kernel
//    replaced by stand-ins of the same signature (backend native-kernel-glue of
//    firmware/targets/bench-seal.ts), by the machinery and calibration of bench/seal-espruino.ts,
//    next to plain-js and native-aes measured the same way.
// Then, per board profile (boards/): its chip and frame size, its crypto backend, the estimate with
// the kernel and, on Puck.js, the only nRF52 board with AES ECB/CBC builtins (../shared/espruino.md,
// "Crypto builtins per board"), with native-aes: the glue is the backend's code for a 20-byte frame,
// the same on every board with that frame size, and every nRF52 runs its Cortex-M4 at 64 MHz.
// Run: npx tsx bench/kernel-seal.ts [--espruino BIN] [--frames N]   (BIN defaults to $ESPRUINO_BIN;
// without one only part 1 is printed). Build first: npm run build.
import { buildHarness, missingEmulation, profileAesCcm } from '../kernel/harness.js';
import type { Profile } from '../kernel/profile.js';
import { IMAGE } from '../kernel/aes-ccm/image.js';
import { BOARDS } from '../boards/index.js';
import { parseArgs } from 'node:util';
import { calibration, instructionsPerSeal, nrf52Ms } from './seal-espruino.js';

const MHZ = 64;
/** The nRF52 boards whose Espruino build has AES.encrypt and AES.decrypt (ECB, CBC) but no CCM: where native-aes can run. */
const AES_BUILTIN = new Set(['puckjs']);
/** Cycles per instruction: 1 for ALU work, 2 for a load or store, 2-4 for a taken branch on a Cortex-M4 without flash wait states; 2 and 3 bracket this load-heavy code. */
const CPI = [2, 3];
const REPS = 20;
const KEY = '000102030405060708090a0b0c0d0e0f';
const SALT = '0011223344556677';

const missing = missingEmulation();
if (missing) {
  console.error(`bench/kernel-seal.ts needs qemu-arm and arm-linux-gnueabihf-gcc: ${missing}`);
  process.exit(1);
}
const harness = buildHarness();
const perCall = (command: (reps: number) => string): Profile => {
  const once = profileAesCcm(harness, [command(0)]);
  const many = profileAesCcm(harness, [command(REPS)]);
  return { instructions: (many.instructions - once.instructions) / REPS, cycles: (many.cycles - once.cycles) / REPS };
};

console.log(`aes-ccm kernel ${IMAGE.size} bytes (sha256 ${IMAGE.sha256.slice(0, 16)}...), Thumb instructions executed under qemu-arm,`);
console.log(`estimated ms on a ${MHZ} MHz Cortex-M4 at ${CPI.join(' and ')} cycles per instruction and at the TRM cycle bound (kernel/profile.ts; zero`);
console.log('wait states; kernel only, no interpreter glue)');
console.log('operation                      instructions   ' + CPI.map((c) => `ms@CPI${c}`).join('   ') + '   cycle bound   ms@bound');
const row = (name: string, p: Profile) =>
  console.log(
    `${name.padEnd(30)} ${String(Math.round(p.instructions)).padStart(12)}   ${CPI.map((c) => ((p.instructions * c) / (MHZ * 1000)).toFixed(3).padStart(8)).join('   ')}   ${String(Math.round(p.cycles)).padStart(11)}   ${(p.cycles / (MHZ * 1000)).toFixed(3).padStart(8)}`,
  );
let kernel20 = 0;
const { values } = parseArgs({ options: { espruino: { type: 'string' }, frames: { type: 'string' } } });
row('aes_ccm_init (once per boot)', profileAesCcm(harness, [`T ${KEY} ${SALT} 1 ${'00'.repeat(8)} 0`]));
for (const frameSize of [20, 50, 244]) {
  const pt = '5a'.repeat(frameSize - 12);
  const p = perCall((reps) => `T ${KEY} ${SALT} 7 ${pt} ${reps}`);
  if (frameSize === 20) kernel20 = p.instructions;
  row(`aes_ccm_seal, ${frameSize}-byte frame`, p);
}
row('aes_ccm_ack_check (per ack)', perCall((reps) => `Q ${KEY} ${SALT} 7 ${reps}`));

const espruino = values.espruino ?? process.env.ESPRUINO_BIN;
if (!espruino) {
  console.log('\n(no --espruino BIN or ESPRUINO_BIN: the interpreter glue and the other backends are not measured)');
} else {
  const frames = Number(values.frames ?? 10);
  const loop = calibration(espruino);
  console.log(`\nseal of a 20-byte frame on a 64 MHz nRF52, nonce and frame assembly included; interpreter work counted with callgrind on`);
  console.log(`${espruino.split('/').pop()} (${frames} seals per backend), scaled by for (i=0;i<1000;i=i+1); = ${(loop / 1e6).toFixed(2)} M instructions = 0.28 s`);
  console.log('backend                          x86 M instr   interpreter ms   + kernel ms (CPI ' + CPI.join('-') + ')   = est. ms per seal');
  const glue = instructionsPerSeal(espruino, 'native-kernel-glue', frames);
  const k = CPI.map((c) => (kernel20 * c) / (MHZ * 1000));
  const g = nrf52Ms(glue, loop);
  console.log(`${'native-kernel (glue + kernel)'.padEnd(32)} ${(glue / 1e6).toFixed(3).padStart(12)}   ${g.toFixed(2).padStart(14)}   ${k.map((x) => x.toFixed(2)).join('-').padStart(22)}   ${k.map((x) => (g + x).toFixed(2)).join('-').padStart(18)}`);
  const ms: Record<string, number> = {};
  for (const backend of ['native-aes', 'plain-js']) {
    const per = instructionsPerSeal(espruino, backend, frames);
    ms[backend] = nrf52Ms(per, loop);
    console.log(`${backend.padEnd(32)} ${(per / 1e6).toFixed(3).padStart(12)}   ${nrf52Ms(per, loop).toFixed(2).padStart(14)}   ${'-'.padStart(22)}   ${nrf52Ms(per, loop).toFixed(2).padStart(18)}`);
  }
  const kernelMs = k.map((x) => g + x);
  console.log(`\nper board (nRF52 boards without native CCM; the figures above, which hold for a 20-byte frame on a 64 MHz Cortex-M4):`);
  console.log('board        chip        frame   profile backend   native-kernel ms   native-aes ms         kernel vs native-aes');
  for (const b of BOARDS.filter((x) => x.chip.startsWith('nRF52') && x.crypto !== 'native-ccm')) {
    const measured = b.frameSize === 20;
    const kern = measured ? kernelMs.map((x) => x.toFixed(2)).join('-') : `not measured (${b.frameSize}-byte frame)`;
    const aes = !AES_BUILTIN.has(b.id) ? 'no AES builtin' : measured ? ms['native-aes']!.toFixed(2) : 'not measured';
    const ratio = AES_BUILTIN.has(b.id) && measured ? `${kernelMs.map((x) => (ms['native-aes']! / x).toFixed(2)).reverse().join('-')}x faster` : '-';
    console.log(`${b.id.padEnd(12)} ${b.chip.padEnd(11)} ${String(b.frameSize).padStart(5)}   ${b.crypto.padEnd(15)}   ${kern.padStart(16)}   ${aes.padStart(14)}         ${ratio}`);
  }
  console.log('(native-aes runs only where the build has AES.encrypt: Puck.js, and the Linux build here; the glue counts a JS stand-in call, a little more than E.nativeCall costs)');
}
