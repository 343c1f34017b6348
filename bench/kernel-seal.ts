// Cost of the compiled aes-ccm kernel (kernel/aes-ccm/aes-ccm.bin) per seal on a 64 MHz Cortex-M4,
// estimated from the Thumb instructions the committed image executes under qemu-arm
// (kernel/harness.ts countInstructions: -singlestep -d exec,nochain, PCs inside the image) at a stated
// cycles-per-instruction bound. The kernel only: the interpreter's E.nativeCall glue around it is not
// counted here (issue #12 part 5, once the native-kernel backend exists). Run: npx tsx bench/kernel-seal.ts
import { buildHarness, countInstructions, missingEmulation } from '../kernel/harness.js';
import { IMAGE } from '../kernel/aes-ccm/image.js';

const MHZ = 64;
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
const perCall = (command: (reps: number) => string): number => {
  const once = countInstructions(harness, [command(0)]);
  return (countInstructions(harness, [command(REPS)]) - once) / REPS;
};

console.log(`aes-ccm kernel ${IMAGE.size} bytes (sha256 ${IMAGE.sha256.slice(0, 16)}...), Thumb instructions executed under qemu-arm,`);
console.log(`estimated ms on a ${MHZ} MHz Cortex-M4 at ${CPI.join(' and ')} cycles per instruction (kernel only, no interpreter glue)`);
console.log('operation                      instructions   ' + CPI.map((c) => `ms@CPI${c}`).join('   '));
const row = (name: string, n: number) => console.log(`${name.padEnd(30)} ${String(Math.round(n)).padStart(12)}   ${CPI.map((c) => ((n * c) / (MHZ * 1000)).toFixed(3).padStart(8)).join('   ')}`);
row('aes_ccm_init (once per boot)', countInstructions(harness, [`T ${KEY} ${SALT} 1 ${'00'.repeat(8)} 0`]));
for (const frameSize of [20, 50, 244]) {
  const pt = '5a'.repeat(frameSize - 12);
  row(`aes_ccm_seal, ${frameSize}-byte frame`, perCall((reps) => `T ${KEY} ${SALT} 7 ${pt} ${reps}`));
}
row('aes_ccm_ack_check (per ack)', perCall((reps) => `Q ${KEY} ${SALT} 7 ${reps}`));
