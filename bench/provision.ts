// Provisioning throughput of the factory, in devices per second.
//
//   npx tsx bench/provision.ts [--devices 20000] [--runs 3] [--board puckjs] [--dir DIR]
//
// Each run is a complete `sealpost provision` of a fresh batch through the
// library (factory/provision.ts), exactly as the command does it: HPKE
// SetupBaseS per device, the device secret file (0600), the journal with one
// fdatasync per group, kcv.json and the signed manifest. The clock covers
// everything from the lock to the manifest on disk. Output trees go to a
// fresh temporary directory under DIR (default: the OS temp dir) and are all
// removed at the end (deleting them between runs would slow the next run's
// file creation on ext4). Also reported, for context: the HPKE sender alone
// (factory/sender.ts) and the reference implementation (protocol/provision.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { boardProfile } from '../boards/index.js';
import { provisionDevice } from '../protocol/index.js';
import { initKeys, loadKeyFile } from '../factory/keyfiles.js';
import { provisionBatch } from '../factory/provision.js';
import { createSender } from '../factory/sender.js';
import { parseSerialRange } from '../factory/serials.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '3' },
    board: { type: 'string', default: 'puckjs' },
    dir: { type: 'string' },
  },
  strict: true,
});
const devices = Number(values.devices);
const runs = Number(values.runs);
if (!Number.isInteger(devices) || devices < 1 || devices > 100_000) throw new Error('--devices expects 1..100000');
if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error('--runs expects 1..20');
const board = boardProfile(values.board!);

const root = mkdtempSync(join(values.dir ?? tmpdir(), 'sealpost-bench-provision-'));
const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const keys = initKeys(join(root, 'keys'));
  const ingest = loadKeyFile(keys.ingestPublic, 'ingest-public', 'ingest');
  const factory = loadKeyFile(keys.factoryPrivate, 'factory-private', 'factory');
  console.log(`provisioning ${devices} devices for ${board.id}, ${runs} runs; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const results: number[] = [];
  for (let r = 0; r < runs; r++) {
    const range = parseSerialRange(`B${r}-000001-B${r}-${String(devices).padStart(6, '0')}`);
    const started = performance.now();
    const result = await provisionBatch({ out: join(root, `out-${r}`), batch: `bench-${r}`, board, range, ingest, factory });
    const ms = performance.now() - started;
    if (result.issued !== devices) throw new Error(`run ${r}: issued ${result.issued} of ${devices}`);
    results.push(rate(devices, ms));
    console.log(`  run ${r + 1}: ${devices} devices in ${(ms / 1000).toFixed(2)} s = ${results[r]} devices/s`);
  }

  const send = createSender(ingest.key);
  const n = Math.min(devices, 10_000);
  let t = performance.now();
  for (let i = 0; i < n; i++) send(`SP-${i}`);
  const sender = rate(n, performance.now() - t);
  const m = 1000;
  t = performance.now();
  for (let i = 0; i < m; i++) provisionDevice(ingest.key, `SP-${i}`);
  const reference = rate(m, performance.now() - t);

  console.log('');
  console.log(`provision: best ${Math.max(...results)} devices/s, median ${median(results)} devices/s (target 5000)`);
  console.log(`  HPKE sender alone (factory/sender.ts, OpenSSL X25519): ${sender} devices/s on one core`);
  console.log(`  reference provisionDevice (protocol/provision.ts, noble): ${reference} devices/s on one core`);
  console.log(`reproduce: npx tsx bench/provision.ts --devices ${devices} --runs ${runs} --board ${board.id}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
