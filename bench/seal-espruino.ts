// Seal benchmark on the Espruino interpreter, for each crypto backend.
//
//   npx tsx bench/seal-espruino.ts --espruino /path/to/espruino
//     Espruino's Linux build (built by hand, README): counts x86 instructions
//     with valgrind --tool=callgrind for a run that seals N frames and one
//     that does the same timer events without sealing; the difference / N is
//     the cost of one seal. Converted to an nRF52 estimate with the loop
//     calibration of ../shared/espruino.md (for (i=0;i<1000;i=i+1); = 0.28 s
//     on a 64 MHz nRF52), measured on the same binary.
//
//   npx tsx bench/seal-espruino.ts --port PORT
//     A real board through the espruino CLI: uploads dist/bench-seal.js and
//     prints the milliseconds per seal it measures with getTime().
//
// Build first: npm run build. bench/kernel-seal.ts reuses onLinux's measurement
// (instructionsPerSeal) for the native-kernel backend's interpreter glue.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runAsScript } from '../tools/run-as-script.js';

const BACKENDS = ['native-ccm', 'native-aes', 'plain-js', 'native-kernel-glue'];
const BUNDLE = new URL('../dist/bench-seal.js', import.meta.url).pathname;
const NRF52_LOOP_SECONDS = 0.28;

function instructions(espruino: string, dir: string, script: string): number {
  const file = join(dir, 'bench.js');
  writeFileSync(file, script);
  const out = join(dir, 'callgrind.out');
  const r = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, espruino, file], { cwd: dir, input: '', encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run valgrind (${r.error.message}): install it (apt-get install valgrind)`);
  const m = /Collected : (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`valgrind printed no instruction count:\n${r.stderr.slice(-2000)}`);
  return Number(m[1]);
}

/** x86 instructions of the calibration loop of ../shared/espruino.md on this build (= NRF52_LOOP_SECONDS on a board). */
export function calibration(espruino: string): number {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-'));
  return instructions(espruino, dir, 'for (i=0;i<1000;i=i+1);') - instructions(espruino, dir, '');
}

/** x86 instructions per 20-byte seal with `backend` of dist/bench-seal.js: a run sealing `frames` minus the same run without sealing, over frames. */
export function instructionsPerSeal(espruino: string, backend: string, frames: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-'));
  const bundle = readFileSync(BUNDLE, 'utf8');
  const run = (seal: boolean) => instructions(espruino, dir, `var SEALPOST_BENCH={backend:"${backend}",frames:${frames},seal:${seal}};\n${bundle}`);
  return (run(true) - run(false)) / frames;
}

/** Milliseconds on a 64 MHz nRF52 for `n` x86 instructions, by the calibration loop. */
export function nrf52Ms(n: number, loop: number): number {
  return (n / loop) * NRF52_LOOP_SECONDS * 1000;
}

function onLinux(espruino: string, frames: number): void {
  const loop = calibration(espruino);
  console.log(`calibration: for (i=0;i<1000;i=i+1); = ${(loop / 1e6).toFixed(2)} M instructions on this build (= ${NRF52_LOOP_SECONDS} s on a 64 MHz nRF52)`);
  console.log(`backend            M instr/seal   est. nRF52 ms/seal   (20-byte frame, ${frames} seals, nonce and frame assembly included)`);
  for (const backend of BACKENDS) {
    const per = instructionsPerSeal(espruino, backend, frames);
    console.log(`${backend.padEnd(18)} ${(per / 1e6).toFixed(3).padStart(12)}   ${nrf52Ms(per, loop).toFixed(1).padStart(18)}`);
  }
}

function onBoard(port: string, frames: number): void {
  const cli = new URL('../node_modules/.bin/espruino', import.meta.url).pathname;
  const bundle = readFileSync(BUNDLE, 'utf8');
  // On a board the real kernel runs (native-kernel needs sealpost.krn in its Storage: sealpost flash writes it).
  for (const backend of ['native-ccm', 'native-aes', 'plain-js', 'native-kernel']) {
    const file = join(mkdtempSync(join(tmpdir(), 'sealpost-bench-')), 'bench.js');
    writeFileSync(file, `var SEALPOST_BENCH={backend:"${backend}",frames:${frames},seal:true};\n${bundle}`);
    const out = execFileSync(cli, ['-p', port, '--sleep', '10', file], { encoding: 'utf8', timeout: 600_000 });
    const line = out.split('\n').find((l) => l.includes('BENCH'));
    console.log(line ? line.trim() : `${backend}: no BENCH line; output was:\n${out}`);
  }
}

if (runAsScript(import.meta.url)) {
  const { values } = parseArgs({ options: { espruino: { type: 'string' }, port: { type: 'string' }, frames: { type: 'string' } } });
  const frames = Number(values.frames ?? 30);
  if (values.espruino) onLinux(values.espruino, frames);
  else if (values.port) onBoard(values.port, frames);
  else {
    console.error('usage: npx tsx bench/seal-espruino.ts --espruino /path/to/espruino [--frames N]\n       npx tsx bench/seal-espruino.ts --port PORT [--frames N]');
    process.exitCode = 2;
  }
}
