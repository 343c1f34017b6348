// Read-flood benchmark: do large reads stall ingest? (issue #10, item 2)
//
//   npx tsx bench/read-flood.ts [--backend sqlite|postgres|both] [--mode pages|csv|single]
//       [--readers 48] [--readings 100000] [--limit 10000] [--rate 20] [--pg URL]
//       [--root DIR]   (run the server of another checkout, e.g. an older commit)
//       [--settings JSON]   (more server settings, e.g. '{"pg_read_pool_size": 2}')
//
// The server runs as its own process (bench/harness.ts) so its memory can be
// sampled from /proc/PID/status (VmRSS every 100 ms; VmHWM, the kernel's peak,
// at the end). One device gets `readings` readings through the real ingest
// path (genuine sealed frames, one reading each, 500 per request). Then an
// uplink client posts a second device's next genuine frames (5 per request)
// at a steady `rate` requests per second, open loop (a slow answer does not
// delay the next request, so latency is not hidden), and records each
// latency; after 3 s alone, `readers` clients each read all of the first
// device's readings at once:
//   pages   follow next_cursor with limit=`limit` (the maximum page, 10,000)
//   csv     one `format=csv` request, streamed
//   single  one `?limit=100000` request (the API before paging; use with --root)
// Every reader checks it got every reading once, in order. The readers run
// in a thread of their own at nice 10 (bench/read-flood-readers.ts): in a
// deployment they are other machines, and here their JSON parsing must
// neither delay the uplink client's event loop (which would inflate the
// latencies it measures) nor outrank the server for the 2 cores. Reported: the
// uplink latency alone and during the flood (p50, p99, max), the flood's
// duration and read rate, and the server's peak RSS during the flood.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { ANCHOR_BOOT, encodeAnchor, encodeSample, sealFrame, type ProvisionedDevice } from '../protocol/index.js';
import type { ReadersData } from './read-flood-readers.js';
import { DEFAULT_PG, benchDb, freePort, importFleet, pct, post, startServer, stopServer, writeConfig, type Backend, type BenchDb, type BenchServer } from './harness.js';
import { createToken, openStorage } from '../server/index.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'both' },
    mode: { type: 'string', default: 'pages' },
    readers: { type: 'string', default: '48' },
    readings: { type: 'string', default: '100000' },
    limit: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '20' },
    pg: { type: 'string', default: DEFAULT_PG },
    root: { type: 'string' },
    settings: { type: 'string', default: '{}' },
  },
  strict: true,
});
const MODE = values.mode as 'pages' | 'csv' | 'single';
if (!['pages', 'csv', 'single'].includes(MODE)) throw new Error('--mode must be pages, csv or single');
const READERS = Number(values.readers);
const READINGS = Number(values.readings);
const LIMIT = Number(values.limit);
const RATE = Number(values.rate);
const SEED_BATCH = 500;
const UPLINK_BATCH = 5;

/**
 * The request headers every read carries: a read token (issue #10, item 1),
 * made in the bench database through the token store, as `sealpost token
 * create` would. An older checkout (--root) predates tokens and migrating
 * its database here would make it refuse to start, so it gets none.
 */
async function readAuthHeaders(bench: BenchDb): Promise<Record<string, string>> {
  if (values.root) return {};
  const storage = await openStorage(bench.db);
  try {
    const { token } = await createToken(storage, 'read-flood', 'read');
    return { authorization: `Bearer ${token}` };
  } finally {
    await storage.close();
  }
}

/** A device's next frames, sealed as its firmware would: the boot anchor first, then one-reading samples. */
class Sealer {
  counter = 0;
  private readonly pt = new Uint8Array(8);
  constructor(
    readonly device: ProvisionedDevice,
    private readonly t0: number,
  ) {}
  body(n: number): string {
    const frames: string[] = [];
    for (let i = 0; i < n; i++) {
      const c = ++this.counter;
      if (c === 1) encodeAnchor(this.pt, 1, 0, ANCHOR_BOOT);
      else encodeSample(this.pt, 1, c, [{ channel: 1 + (c % 3), value: (c % 4000) / 100 }], 0);
      frames.push(`{"data":"${Buffer.from(sealFrame(this.device, c, this.pt, 20)).toString('base64')}","rx":${this.t0 + c * 1000}}`);
    }
    return `{"relay":{"id":"bench-relay","time":${Date.now()}},"devices":[{"serial":"${this.device.serial}","frames":[${frames.join(',')}]}]}`;
  }
}

function kb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Runs the readers in their thread; resolves with the number of requests they made. */
function readInThread(data: ReadersData): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./read-flood-readers.mjs', import.meta.url), { workerData: data });
    worker.once('message', (m: { requests?: number; error?: string }) => (m.error !== undefined ? reject(new Error(m.error)) : resolve(m.requests!)));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`reader thread exited with ${code}`)));
  });
}

async function run(backend: Backend): Promise<void> {
  const bench = benchDb(backend, values.pg);
  let server: BenchServer | undefined;
  try {
    const { devices, keyFile } = await importFleet(bench, 2);
    const headers = await readAuthHeaders(bench);
    const port = await freePort();
    const config = writeConfig(bench, { db: bench.db, listen: `127.0.0.1:${port}`, ingest_keys: [keyFile], rate_limit: false, log_level: 'warn', ...JSON.parse(values.settings!) });
    server = await startServer(config, port, values.root ? { root: values.root } : {});
    const pid = server.child.pid!;
    // Both devices booted so long ago that every frame's rx (t0 + counter seconds, as the relay
    // would stamp it) is in the past, yet inside max_relay_delay (7 days): a relay outside that
    // window is clamped, and a boot whose estimate keeps moving is re-timed on every upload
    // (docs/server.md, "Time clamp"), which is not what this bench measures.
    const t0 = Date.now() - (READINGS + 2 * 3_600 + 10 * 60 * RATE * UPLINK_BATCH) * 1000;

    // The read device's readings, through the ingest path: the anchor and READINGS samples.
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const seed = new Sealer(devices[0]!, t0);
    for (let left = READINGS + 1; left > 0; left -= SEED_BATCH) {
      const r = await post(agent, port, seed.body(Math.min(SEED_BATCH, left)));
      if (r.status !== 200) throw new Error(`seeding: HTTP ${r.status}: ${r.text.slice(0, 200)}`);
    }
    const seededRss = kb(pid, 'VmRSS');

    // The uplink client: open loop, RATE requests per second.
    const uplink = new Sealer(devices[1]!, t0);
    const latencies: { at: number; ms: number }[] = [];
    const failures: string[] = [];
    const inflight = new Set<Promise<void>>();
    let sending = true;
    const ticker = (async () => {
      const start = performance.now();
      for (let i = 0; sending; i++) {
        const due = start + (i * 1000) / RATE;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const t = performance.now();
        const p = post(agent, port, uplink.body(UPLINK_BATCH)).then(
          (r) => {
            if (r.status !== 200 || JSON.parse(r.text).devices[0].accepted !== UPLINK_BATCH) failures.push(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
            latencies.push({ at: t, ms: performance.now() - t });
          },
          (e: Error) => {
            failures.push(e.message);
          },
        );
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
    })();
    await new Promise((r) => setTimeout(r, 3_000));

    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, kb(pid, 'VmRSS'))), 100);
    const floodStart = performance.now();
    const requests = await readInThread({ port, serial: devices[0]!.serial, headers, mode: MODE, readers: READERS, readings: READINGS, limit: LIMIT });
    const floodEnd = performance.now();
    clearInterval(sampler);
    peak = Math.max(peak, kb(pid, 'VmRSS'));
    sending = false;
    await ticker;
    await Promise.all(inflight);
    const hwm = kb(pid, 'VmHWM');

    const alone = latencies.filter((l) => l.at < floodStart).map((l) => l.ms);
    const during = latencies.filter((l) => l.at >= floodStart && l.at < floodEnd).map((l) => l.ms);
    const seconds = (floodEnd - floodStart) / 1000;
    const f = (xs: number[]) => (xs.length === 0 ? 'n/a' : `p50 ${pct(xs, 0.5).toFixed(0)} ms, p99 ${pct(xs, 0.99).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms (${xs.length} requests)`);
    console.log(`${backend}, mode ${MODE}${values.root ? ` (server from ${values.root})` : ''}${values.settings !== '{}' ? `, settings ${values.settings}` : ''}:`);
    console.log(`  flood: ${READERS} readers x ${READINGS} readings in ${seconds.toFixed(1)} s (${requests} requests, ${Math.round((READERS * READINGS) / seconds).toLocaleString('en-US')} readings/s)`);
    console.log(`  uplink alone:        ${f(alone)}`);
    console.log(`  uplink during flood: ${f(during)}${failures.length ? `; ${failures.length} FAILED, e.g. ${failures[0]}` : ''}`);
    console.log(`  server RSS: ${Math.round(seededRss / 1024)} MB before the flood, peak ${Math.round(peak / 1024)} MB during it (VmHWM ${Math.round(hwm / 1024)} MB)`);
    agent.destroy();
  } finally {
    await stopServer(server);
    await bench.drop();
  }
}

console.log(
  `sealpost read-flood bench: ${READERS} readers, ${READINGS} readings, mode ${MODE}${MODE === 'pages' ? ` (limit ${LIMIT})` : ''}, uplink ${RATE} req/s x ${UPLINK_BATCH} frames, ${cpus().length} CPUs, node ${process.version}`,
);
const backends = values.backend === 'both' ? (['sqlite', 'postgres'] as const) : [values.backend as Backend];
for (const b of backends) await run(b);
