// Variables the BLE board bundles keep on the real interpreter: after boot, with the outbox full, after 1,000 and up to N seals, and the largest free flat block.
//
//   npx tsx bench/firmware-memory.ts [--bin PATH]... [--boards puckjs,mdbt42q] [--seals 10000] [--breakdown] [--kernel-in-place]
//
// Without --bin it runs ESPRUINO_2630_BIN and ESPRUINO_ARM_BIN (see
// ../shared/espruino/README.md: Espruino 2v29 for Linux with a Puck.js's
// 2,630 variables; the ARM one under qemu-arm has the boards' 13-byte blocks).
// Each bundle is written into the interpreter's Storage as a board has it:
// `.bootcde` (the bundle), `sealpost.dev`, `sealpost.ctr`, and `.boot0`, run
// first, with what the Linux build lacks (NRF, Puck, Bangle: a few functions;
// NRF keeps what 2v29's keeps: the service table and its options, the
// advertising and scan response data, and the event handlers, which
// Espruino's own Object.prototype.on stores as NRF's does)
// and the driver: it keeps the firmware's hourly anchor timer instead of
// scheduling it (and drops the sampling timer), then calls it N times, one
// seal per call, in batches with the interpreter idle between them, and
// prints process.memory() (after a garbage collection) at each step. The
// "prelude" column is the same .boot0 without a .bootcde: what the
// stand-ins and driver themselves hold. Largest flat block: the largest
// Uint8Array that gets a flat (contiguous) buffer, by bisection with
// E.getAddressOf(a, true). A native-kernel bundle on the Linux build copies the kernel into a flat
// string in RAM (its Storage strings have no address), about 100 variables a board keeps in flash;
// with --kernel-in-place, .boot0 makes that flat copy itself, before the bundle, and hands it to the
// firmware as Storage's sealpost.krn with a non-zero address, as flash is on a board: the firmware
// then runs the kernel in place, and the line under the row says what the copy held and the
// figures without it. Build first: npm run build.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BOARDS } from '../boards/index.js';
import type { BoardProfile } from '../boards/types.js';
import { counterLogImage } from '../protocol/wire/counter-log.js';
import { KERNEL_FILE_NAME } from '../protocol/wire/names.js';
import { consoleLines } from '../test/helpers/espruino-process.js';
import { provisionSim } from '../test/helpers/sim-fleet.js';

const DIST = new URL('../dist/', import.meta.url).pathname;

function driver(board: BoardProfile | undefined, seals: number, breakdown: boolean, traceAfter: boolean, kernelInPlace = false): string {
  const d = board?.device;
  const inPlace =
    kernelInPlace && board?.crypto === 'native-kernel'
      ? `var SP_M0 = process.memory().usage, SP_S = require("Storage"), SP_RD = SP_S.read, SP_K = E.toFlatString(SP_RD.call(SP_S, ${JSON.stringify(KERNEL_FILE_NAME)}));
SP_S.read = function (n) { return n === ${JSON.stringify(KERNEL_FILE_NAME)} ? SP_K : SP_RD.call(SP_S, n); };
print("MEM kernelcopy " + (process.memory().usage - SP_M0) + " 0 0 " + E.getAddressOf(SP_K, true));`
      : '';
  const checkpoints = d ? [...new Set([d.outboxFrames, 1000, ...Array.from({ length: Math.floor(seals / 1000) }, (_, i) => (i + 1) * 1000)])].filter((n) => n <= seals).sort((a, b) => a - b) : [];
  return `${inPlace}
var NRF = { setServices: function (d, o) { NRF.sd = d; NRF.so = o; }, setAdvertising: function (d, o) { NRF.ad = d; NRF.ao = o; }, setScanResponse: function (d) { NRF.sr = d; }, updateServices: function () {}, getBattery: function () { return 3; } };
var Puck = { light: function () { return 0.5; }, mag: function () { return { x: 1, y: 2, z: 3 }; } };
var Bangle = { getAccel: function () { return { x: 0, y: 0, z: -1, mag: 1 }; } };
LoopbackB.on("data", function (d) { USB.write(d); });
var SP_ST = setTimeout, SP_A, SP_AA, SP_N = 0, SP_C = ${JSON.stringify(checkpoints)};
global.setTimeout = function (f, ms, a) { if (ms === ${d?.anchorPeriodMs ?? -1}) { SP_A = f; SP_AA = a; return 0; } if (ms === ${d?.samplePeriodMs ?? -1}) return 0; return a === undefined ? SP_ST(f, ms) : SP_ST(f, ms, a); };
function spFlat(m) { var lo = 0, hi = (m.free - 64) * (m.blocksize - 6), mid, a, ok; while (hi - lo > 16) { mid = (lo + hi) >> 1; a = new Uint8Array(mid); ok = E.getAddressOf(a, true) !== 0; a = undefined; if (ok) lo = mid; else hi = mid; } return lo; }
function spMem(tag) { var m = process.memory(); var f = spFlat(m); m = process.memory(); print("MEM " + tag + " " + m.usage + " " + m.total + " " + m.blocksize + " " + f); }
function spStep() { var i, n = SP_C.length ? Math.min(50, SP_C[0] - SP_N) : 0; if (!n) { ${breakdown ? 'spBreak(); ' : ''}print("DO" + "NE"); return; } for (i = 0; i < n; i++) { SP_A(SP_AA); SP_N++; } if (SP_N === SP_C[0]) { SP_C.shift(); spMem("seals" + SP_N); } SP_ST(spStep, 1); }
function spWalk(a, p, d) { var i; for (i = 0; i < a.length; i++) { if (a[i].size >= 8) print("SIZE " + p + "." + a[i].name + " " + a[i].size); if (a[i].more && d < 2) spWalk(a[i].more, p + "." + a[i].name, d + 1); } }
function spBreak() { var h = global["\\xff"], k, j; for (k in h) { print("SIZE hidden." + k + " " + E.getSizeOf(h[k])); if (k === "timers") for (j in h[k]) print("SIZE hidden.timers." + j + " " + E.getSizeOf(h[k][j]) + " " + (h[k][j].interval || 0)); } spWalk(E.getSizeOf(SP_A, 3), "anchorTick", 0); for (k in global) print("SIZE global." + k.replace(/[^ -~]/g, "?") + " " + E.getSizeOf(global[k])); }
${traceAfter ? 'SP_ST(function () { print("TRACE" + "{"); trace(); print("}" + "TRACE"); }, 2900);' : ''}
SP_ST(function () { spMem("boot"); SP_ST(spStep, 1); }, 3500);
`;
}

/** Writes `files` into Storage in chunks, each by its own run, so no run holds a whole file in RAM. */
function flash(bin: string, dir: string, files: Record<string, Uint8Array>): void {
  for (const [name, bytes] of Object.entries(files)) {
    for (let off = 0; off < bytes.length; off += 1024) {
      const chunk = bytes.subarray(off, off + 1024);
      if (off > 0 && chunk.every((b) => b === 0xff)) continue;
      const data = `new Uint8Array([${Array.from(chunk).join(',')}])`;
      const script = `require("Storage").write(${JSON.stringify(name)}, ${data}, ${off}, ${bytes.length});`;
      writeFileSync(join(dir, 'setup.js'), script + '\n');
      try {
        execFileSync(bin, ['setup.js'], { cwd: dir, input: '', timeout: 60_000, killSignal: 'SIGKILL' });
      } catch (e) {
        throw new Error(`writing ${name} at ${off} failed: ${String((e as { stdout?: Buffer }).stdout ?? e).slice(-600)}`);
      }
    }
  }
}

interface Row {
  tag: string;
  usage: number;
  total: number;
  blocksize: number;
  flat: number;
}

/**
 * Where the variables of a `trace()` dump go: each variable is charged to the
 * path of names (globals, properties, scope members) by which the dump first
 * reaches it, cut at `depth` names; strings count their blocks. A shared
 * variable is charged once, to the first path (trace() prints a shared
 * scope's members again under every closure that holds it).
 */
export function traceBreakdown(lines: string[], depth: number): { path: string; vars: number }[] {
  const sums = new Map<string, number>();
  const stack: { indent: number; path: string[] }[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    const tokens = [...line.matchAll(/#(\d+)\[r\d+,l\d+\] (\.\.\.|Name (?:String|Param|Integer)?|[A-Za-z0-9]+)( \[(\d+) blocks\])? ?(?:"((?:[^"\\]|\\.)*)"|(-?\d+))?/g)];
    if (!tokens.length) continue;
    const indent = line.length - line.trimStart().length;
    while (stack.length && stack.at(-1)!.indent >= indent) stack.pop();
    const parent = stack.length ? stack.at(-1)!.path : [];
    const first = tokens[0]!;
    const name = first[2]!.startsWith('Name') ? (first[5] ?? first[6] ?? '?').replace(/\\xFF/g, '~') : undefined;
    const path = name === undefined ? parent : [...parent, name];
    let vars = 0;
    for (const t of tokens) {
      if (t[2] === '...' || seen.has(t[1]!)) continue;
      seen.add(t[1]!);
      vars += t[4] ? +t[4] : 1;
    }
    const key = path.slice(0, depth).join('.') || '(root)';
    sums.set(key, (sums.get(key) ?? 0) + vars);
    stack.push({ indent, path });
  }
  return [...sums].map(([path, vars]) => ({ path, vars })).sort((a, b) => b.vars - a.vars);
}

function run(bin: string, board: BoardProfile | undefined, seals: number, breakdown: boolean, traceDepth = 0, kernelInPlace = false): Promise<{ rows: Row[]; sizes: string[]; trace: string[]; error?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-mem-'));
  const files: Record<string, Uint8Array> = {};
  if (board) {
    const prov = provisionSim(`SP-MEM-${board.id.toUpperCase()}`, board.frameSize);
    files['sealpost.dev'] = prov.deviceFile;
    if (board.counterStore.kind === 'storage-log') files['sealpost.ctr'] = counterLogImage(board.counterStore.bytes);
    // As the factory writes it; the Linux build copies it into a flat string (its Storage strings have address 0).
    if (board.crypto === 'native-kernel') files[KERNEL_FILE_NAME] = readFileSync(new URL('../kernel/aes-ccm/aes-ccm.bin', import.meta.url));
    files['.bootcde'] = readFileSync(`${bundleDir}${board.id}${bundleSuffix}`);
  }
  // Last: the Linux build runs .boot0 even when given a script (setup.js), .bootcde only without one.
  files['.boot0'] = Buffer.from(driver(board, seals, breakdown, traceDepth > 0, kernelInPlace), 'latin1');
  flash(bin, dir, files);
  return new Promise((resolve) => {
    const child = spawn(bin, [], { cwd: dir, stdio: ['pipe', 'pipe', 'ignore'] });
    const rows: Row[] = [];
    const sizes: string[] = [];
    const trace: string[] = [];
    let inTrace = false;
    let error: string | undefined;
    const finish = () => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve({ rows, sizes, trace, error });
    };
    const timer = setTimeout(() => ((error = 'timed out'), finish()), 3_600_000);
    consoleLines(child.stdout, (line) => {
      if (process.env.SEALPOST_BENCH_VERBOSE) console.error((Date.now() % 100000) + ' > ' + JSON.stringify(line));
      if (line.includes('TRACE{')) inTrace = true;
      if (line.includes('}TRACE')) inTrace = false;
      if (inTrace) return void trace.push(line);
      const m = /MEM (\S+) (\d+) (\d+) (\d+) (\d+)/.exec(line);
      if (m) rows.push({ tag: m[1]!, usage: +m[2]!, total: +m[3]!, blocksize: +m[4]!, flat: +m[5]! });
      else if (line.includes('SIZE ')) sizes.push(line.slice(line.indexOf('SIZE ') + 5));
      else if (/out of memory|error/i.test(line)) error = (error ? error + '; ' : '') + line.trim();
      if (line.includes('DONE') || (!board && rows.length)) finish();
    });
  });
}

const args = parseArgs({ options: { bin: { type: 'string', multiple: true }, boards: { type: 'string' }, seals: { type: 'string', default: '10000' }, breakdown: { type: 'boolean', default: false }, trace: { type: 'string', default: '0' }, names: { type: 'boolean', default: false }, 'kernel-in-place': { type: 'boolean', default: false } } });
// --names runs the bundles `npm run build` leaves unmangled in dist/names/ (SEALPOST_BUNDLE_NAMES=1), so --trace names the source's variables.
const bundleDir = args.values.names ? `${DIST}names/` : DIST;
const bundleSuffix = '.js';
const traceDepth = Number(args.values.trace);
const bins = args.values.bin ?? [process.env.ESPRUINO_2630_BIN, process.env.ESPRUINO_ARM_BIN].filter((b): b is string => !!b);
if (!bins.length) throw new Error('name an interpreter with --bin, or set ESPRUINO_2630_BIN / ESPRUINO_ARM_BIN (source /tmp/testenv.sh or ../shared/espruino/build.sh)');
const wanted = args.values.boards?.split(',');
const boards = BOARDS.filter((b) => b.radio === 'ble' && (!wanted || wanted.includes(b.id)));
const seals = Number(args.values.seals);

console.log('| interpreter | bundle | vars total (block) | prelude | after boot | outbox full (seals) | after 1,000 seals | after N seals | growth 1,000 -> N | largest flat block after boot / full | errors |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const bin of bins) {
  const base = (await run(bin, undefined, 0, false)).rows[0]!;
  for (const board of boards) {
    // A native-kernel bundle executes Thumb code: only the 32-bit ARM build runs it (x86-64 would jump into it as x86).
    if (board.crypto === 'native-kernel' && !/arm/.test(bin)) {
      console.log(`| ${bin.split('/').pop()} | ${board.id} | skipped: its native-kernel backend needs the 32-bit ARM build (ESPRUINO_ARM_BIN) |`);
      continue;
    }
    const t0 = Date.now();
    const r = await run(bin, board, seals, args.values.breakdown, traceDepth, args.values['kernel-in-place']);
    const at = (tag: string) => r.rows.find((x) => x.tag === tag);
    const boot = at('boot');
    const full = at(`seals${board.device.outboxFrames}`);
    const k1 = at('seals1000');
    const last = r.rows.at(-1);
    const name = bin.split('/').pop();
    console.log(
      `| ${name} | ${board.id} | ${base.total} (${base.blocksize} B) | ${base.usage} | ${boot?.usage ?? '-'} | ${full?.usage ?? '-'} (${board.device.outboxFrames}) | ${k1?.usage ?? '-'} | ${last?.usage ?? '-'} (${last?.tag.slice(5) ?? '-'}) | ${k1 && last ? last.usage - k1.usage : '-'} | ${boot?.flat ?? '-'} / ${full?.flat ?? '-'} B | ${r.error ?? 'none'} |`,
    );
    const copy = at('kernelcopy');
    if (copy) {
      const without = (n: number | undefined) => (n === undefined ? '-' : n - copy.usage);
      console.log(`    ${board.id}: kernel in place (address ${copy.flat}); the .boot0 copy standing in for flash holds ${copy.usage} variables; without it: after boot ${without(boot?.usage)}, outbox full ${without(full?.usage)}`);
    }
    if (process.env.SEALPOST_BENCH_VERBOSE) console.error(board.id, ((Date.now() - t0) / 1000).toFixed(1) + ' s', JSON.stringify(r.rows));
    for (const s of r.sizes) console.log(`    ${board.id} ${s}`);
    if (process.env.SEALPOST_TRACE_RAW) writeFileSync(process.env.SEALPOST_TRACE_RAW, r.trace.join('\n'));
    if (traceDepth) for (const t of traceBreakdown(r.trace, traceDepth)) console.log(`    ${board.id} ${String(t.vars).padStart(5)} ${t.path}`);
  }
}
