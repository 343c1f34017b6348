// The key-renewal Storage module on the real interpreter: its size, and the variables it holds while
// loaded and after it is dropped (docs/firmware.md, "Key renewal on the device").
//
//   npx tsx bench/renewal-module.ts [--bin PATH]... [--slots 200]
//
// Builds firmware/targets/renewal-module.ts as the firmware build does a bundle (TypeScript to ES5,
// terser twice, checked by tools/espruino-check), writes it into the interpreter's Storage as
// `sealpost.rnw` next to a counter log of --slots block records followed by a PENDING and a COMMIT
// record, then prints process.memory().usage (after a garbage collection) at each step: before
// require, after require("sealpost.rnw"), after scan() over the log, after start() and the six
// ANNOUNCE writes of a renewal (the signature check is a stand-in that refuses, so no flash is
// written), after the references are dropped, after Modules.removeCached. Without --bin it runs
// ESPRUINO_2630_BIN and ESPRUINO_BIN. The Linux builds copy a Storage file into RAM when it is read
// (no memory-mapped flash), so "loaded" includes the module's code there.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { rollup } from 'rollup';
import typescript from '@rollup/plugin-typescript';
import { minify } from 'terser';
import { checkSource } from '../tools/espruino-check/checker.js';
import { crc32 } from '../protocol/wire/crc32.js';
import { encodeRecord } from '../firmware/renewal.js';
import { RECORD_COMMIT, RECORD_PENDING } from '../protocol/wire/counter-log.js';

export const MODULE_NAME = 'sealpost.rnw';

/** The module's source as a board would hold it in Storage. */
export async function buildRenewalModule(): Promise<string> {
  const bundle = await rollup({
    input: fileURLToPath(new URL('../firmware/targets/renewal-module.ts', import.meta.url)),
    plugins: [
      typescript({
        tsconfig: fileURLToPath(new URL('../tsconfig.firmware.json', import.meta.url)),
        compilerOptions: { noEmit: false, outDir: join(tmpdir(), 'sealpost-rnw-build'), declaration: false, removeComments: true },
        include: ['firmware/**/*.ts', 'hal/types.ts', 'hal/features.ts', 'protocol/wire/*.ts'],
      }),
    ],
  });
  const { output } = await bundle.generate({ format: 'es', strict: false });
  await bundle.close();
  // The module runs inside require()'s function scope: wrap nothing, keep top-level names local to it.
  const min = await minify(output[0].code, {
    ecma: 5,
    toplevel: true,
    compress: { passes: 2, toplevel: true, hoist_funs: true, hoist_vars: true, inline: 1 },
    mangle: { toplevel: true },
    format: { comments: false, ascii_only: true },
  });
  const code = min.code ?? '';
  const problems = checkSource(code, MODULE_NAME);
  if (problems.length) throw new Error(`${MODULE_NAME} fails the bundle checker: ${JSON.stringify(problems)}`);
  return code;
}

function logImage(slots: number): Uint8Array {
  const words: number[] = [0x53, 0x50, 0x63, 0x01];
  for (let b = 1; b <= slots; b++) words.push(b >> 8, b & 255, (~b >> 8) & 255, ~b & 255);
  const p = new Uint8Array(92).map((_, i) => (i * 13 + 1) & 255);
  p.set([0, 0, 0, 1], 0);
  words.push(...encodeRecord(RECORD_PENDING, p, crc32));
  words.push(...encodeRecord(RECORD_COMMIT, new Uint8Array([0, 0, 0, 1, 0, 0, 0x10, 0x01]), crc32));
  return new Uint8Array(words);
}

function driver(slots: number): string {
  const used = slots + 49 + 7;
  return `
var S = require("Storage");
function mem(t) { process.memory(); print("MEM " + t + " " + process.memory().usage); }
var L = S.readArrayBuffer("sealpost.ctr"), R, r, rn, i, w, cycle;
function rd(s) { return new Uint8Array(L, 4 + 4 * s, 4); }
function cycle(n) {
  R = require("${MODULE_NAME}");
  mem("required" + n);
  r = R.scan(rd, ${used}, E.CRC32);
  if (n === 1) print("SCAN epoch " + r.epoch + " commit " + r.commit + " carry " + (r.carry ? r.carry.length : 0));
  mem("scanned" + n);
  rn = R.start({ serial: "SP-BENCH1", frameSize: 20, fleetId: new Uint8Array([1,2,3,4]), renewalKey: new Uint8Array(32), epoch: 1, chain: new Uint8Array(32), records: r,
    crypto: { verify: function () { return false; }, setupPskS: function () { throw new Error("no"); }, hwRand: function () { return 1; } },
    ccm: function () { throw new Error("no"); }, crc32: E.CRC32, counters: {}, ring: new Uint8Array(20), seal: function () { return 0; }, held: function () { return false; },
    use: function () {}, print: function (l) { print(l); } });
  for (i = 0; i < 6; i++) { w = new Uint8Array(20); w[0] = 0xb0 | i; if (i === 0) { w[1] = 0x5a; w[2] = 1; w[3] = 1; w[4] = 2; w[5] = 3; w[6] = 4; w[10] = 9; } rn.write(w); }
  mem("announce" + n);
  rn = undefined; r = undefined; R = undefined; w = undefined;
  mem("dropped" + n);
  Modules.removeCached("${MODULE_NAME}");
  mem("uncached" + n);
}
mem("before");
cycle(1);
cycle(2);
print("DONE");
`;
}

export function storageWrite(bin: string, dir: string, name: string, bytes: Uint8Array | string): void {
  const data = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('latin1');
  for (let off = 0; off < data.length; off += 1024) {
    const chunk = data.slice(off, off + 1024);
    writeFileSync(join(dir, 'setup.js'), `require("Storage").write(${JSON.stringify(name)}, atob(${JSON.stringify(Buffer.from(chunk, 'latin1').toString('base64'))}), ${off}, ${data.length});\n`);
    execFileSync(bin, ['setup.js'], { cwd: dir, input: '', timeout: 60_000, killSignal: 'SIGKILL' });
  }
}

export async function measure(bin: string, slots: number, code: string): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-rnw-'));
  storageWrite(bin, dir, MODULE_NAME, code);
  storageWrite(bin, dir, 'sealpost.ctr', logImage(slots));
  writeFileSync(join(dir, 'run.js'), driver(slots));
  const out = execFileSync(bin, ['run.js'], { cwd: dir, input: '', timeout: 120_000, killSignal: 'SIGKILL' }).toString('latin1');
  if (!out.includes('DONE') || !out.includes('SCAN epoch 1 commit 4097')) throw new Error(`${bin}: the module did not run as expected:\n${out.slice(-2000)}`);
  const mem: Record<string, number> = {};
  for (const m of out.matchAll(/MEM (\w+) (\d+)/g)) mem[m[1]!] = Number(m[2]);
  return mem;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = parseArgs({ options: { bin: { type: 'string', multiple: true }, slots: { type: 'string', default: '200' } } });
  const bins = args.values.bin ?? [process.env.ESPRUINO_2630_BIN, process.env.ESPRUINO_BIN].filter((b): b is string => !!b);
  if (bins.length === 0) throw new Error('no interpreter: pass --bin or set ESPRUINO_2630_BIN / ESPRUINO_BIN (source /work/briefs/testenv.sh)');
  const code = await buildRenewalModule();
  console.log(`${MODULE_NAME}: ${code.length} bytes`);
  for (const bin of bins) {
    const m = await measure(bin, Number(args.values.slots), code);
    const base = m.before!;
    console.log(`${bin.split('/').pop()}: variables above "before" (${base}): ` + Object.entries(m).map(([k, v]) => `${k} ${v - base}`).join(', '));
  }
}
