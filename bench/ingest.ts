// Ingest benchmark over HTTP on loopback.
//
//   npx tsx bench/ingest.ts [--backend sqlite|postgres|both] [--devices 1000]
//       [--frames 200000] [--batch 50] [--concurrency 16] [--pg URL]
//       [--profile DIR]   (writes a V8 CPU profile of the server process)
//       [--raw on|off]    (default on: the raw baseline and the ratio)
//       [--nodes 1,2]     (PostgreSQL: a run per count of server processes on the
//                          one database, requests spread round-robin over them)
//       [--footprint]     (PostgreSQL: bytes on disk per frame and reading, WAL per
//                          frame, for docs/server.md "Sizing"; bench/pg-footprint.ts)
//
// The server runs as its own process (`node bin/sealpost.mjs server`, the
// production entry, logs at warn) so the client does not share its event
// loop; this process provisions the fleet, imports its signed manifest,
// seals every frame and serialises every request body before the clock
// starts, then drives the server with `concurrency` keep-alive connections,
// one device and `batch` frames per request (a time anchor and batch - 1
// one-reading sample records, as a relay forwards a device's outbox). Every
// response is checked: status 200, every frame accepted, and the ack verifies
// and covers the batch. A warm-up round sends each device's first batch
// (first contact: HPKE key recovery on the server) and is reported apart.
// Then, in the same invocation, the raw baseline (bench/ingest-raw.ts): the
// rows this run stored, inserted into an empty database of the same backend
// with the same driver and durability and no HTTP; the line gives sealpost's
// steady frames/s as a ratio of it (issue #14's target: at least 0.8).
import { Agent } from 'node:http';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { verifyAck, type ProvisionedDevice } from '../protocol/index.js';
import { rawBaseline } from './ingest-raw.js';
import { describeFootprint, footprint, walPosition } from './pg-footprint.js';
import { DEFAULT_PG, benchDb, importFleet, pct, post, freePort, startServer, stopServer, uploadBody, writeConfig, type BenchServer } from './harness.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'both' },
    devices: { type: 'string', default: '1000' },
    frames: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '16' },
    pg: { type: 'string', default: DEFAULT_PG },
    profile: { type: 'string' },
    raw: { type: 'string', default: 'on' },
    nodes: { type: 'string', default: '1' },
    footprint: { type: 'boolean', default: false },
  },
  strict: true,
});
const DEVICES = Number(values.devices);
const BATCH = Number(values.batch);
const ROUNDS = Math.max(2, Math.ceil(Number(values.frames) / (DEVICES * BATCH)));
const CONCURRENCY = Number(values.concurrency);
const NODES = values.nodes!.split(',').map(Number);
if (NODES.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) throw new Error(`--nodes takes counts from 1 to 8, comma-separated, not ${values.nodes}`);

interface Job {
  device: ProvisionedDevice;
  body: string;
  last: number;
}

/** Every request body, by round; round 0 is the warm-up (first contact of each device). */
function makeJobs(devices: ProvisionedDevice[]): Job[][] {
  const t0 = Date.now() - 86_400_000;
  const rounds: Job[][] = [];
  for (let r = 0; r < ROUNDS; r++) rounds.push(devices.map((device) => ({ device, ...uploadBody(device, r, BATCH, `bench-relay-${r % 8}`, t0) })));
  return rounds;
}

async function drive(ports: number[], jobs: Job[]): Promise<{ seconds: number; latencies: number[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < jobs.length) {
        const i = next++;
        const job = jobs[i]!;
        const t = performance.now();
        const r = await post(agent, ports[i % ports.length]!, job.body);
        latencies.push(performance.now() - t);
        if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 300)}`);
        const d = JSON.parse(r.text).devices[0];
        if (d.accepted !== BATCH || d.ack === null || verifyAck(job.device, new Uint8Array(Buffer.from(d.ack, 'base64'))) !== job.last) {
          throw new Error(`unexpected answer for ${job.device.serial} (last ${job.last}): ${r.text.slice(0, 300)}`);
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  return { seconds, latencies };
}

async function run(backend: 'sqlite' | 'postgres', nodes: number): Promise<void> {
  if (backend === 'sqlite' && nodes > 1) throw new Error('SQLite takes one server process per file: --nodes above 1 is for postgres');
  const bench = benchDb(backend, values.pg);
  const servers: BenchServer[] = [];
  try {
    const { devices, keyFile } = await importFleet(bench, DEVICES);
    const ports: number[] = [];
    for (let n = 0; n < nodes; n++) {
      const port = await freePort();
      const config = writeConfig(bench, { db: bench.db, listen: `127.0.0.1:${port}`, ingest_keys: [keyFile], rate_limit: false, log_level: 'warn' }, `sealpost-${n}.json`);
      servers.push(await startServer(config, port, values.profile ? { profileDir: values.profile } : {}));
      ports.push(port);
    }
    const rounds = makeJobs(devices);
    const warm = await drive(ports, rounds[0]!);
    const measure = values.footprint && backend === 'postgres';
    const wal0 = measure ? await walPosition(bench.db) : 0n;
    const steady = await drive(ports, rounds.slice(1).flat());
    const wal = measure ? (await walPosition(bench.db)) - wal0 : 0n;
    const frames = (ROUNDS - 1) * DEVICES * BATCH;
    for (const server of servers.splice(0)) await stopServer(server);
    if (measure) console.log(`${''.padEnd(8)} ${describeFootprint(await footprint(bench.db), wal, frames)}`);
    const sealpost = frames / steady.seconds;
    console.log(
      [
        `${(nodes > 1 ? `${backend} x${nodes}` : backend).padEnd(8)}`,
        `${Math.round(frames / steady.seconds).toLocaleString('en-US').padStart(7)} frames/s`,
        `(${frames} frames in ${steady.seconds.toFixed(2)} s, ${Math.round(steady.latencies.length / steady.seconds)} req/s,`,
        `latency p50 ${pct(steady.latencies, 0.5).toFixed(1)} ms p99 ${pct(steady.latencies, 0.99).toFixed(1)} ms)`,
        `| first contact: ${Math.round((DEVICES * BATCH) / warm.seconds).toLocaleString('en-US')} frames/s incl. HPKE key recovery`,
      ].join(' '),
    );
    if (values.raw !== 'off' && nodes === NODES[0]) {
      const target = benchDb(backend, values.pg);
      try {
        const raw = await rawBaseline(bench, target, BATCH, CONCURRENCY);
        console.log(
          `${'raw'.padEnd(8)} ${Math.round(raw.framesPerSecond).toLocaleString('en-US').padStart(7)} frames/s (the ${raw.frames} frames and ${raw.readings} readings stored above, inserted directly)` +
            ` | sealpost / raw = ${(sealpost / raw.framesPerSecond).toFixed(2)}`,
        );
      } finally {
        await target.drop();
      }
    }
  } finally {
    for (const server of servers) await stopServer(server);
    await bench.drop();
  }
}

console.log(
  `sealpost ingest bench: ${DEVICES} devices, ${BATCH} frames per request, ${ROUNDS - 1} timed rounds, ${CONCURRENCY} connections, ${cpus().length} CPUs, node ${process.version}`,
);
const backends = values.backend === 'both' ? (['sqlite', 'postgres'] as const) : [values.backend as 'sqlite' | 'postgres'];
for (const b of backends) for (const n of b === 'sqlite' ? [1] : NODES) await run(b, n);
