// What counting the limits in Redis (`shared_limits`) costs an upload.
//
//   npx tsx bench/shared-limits.ts [--devices 200] [--rounds 20] [--batch 5]
//       [--concurrency 16] [--runs 2] [--redis redis://127.0.0.1:6379]
//
// One server process (`node bin/sealpost.mjs server`, SQLite, logs at warn)
// with every rate limit and the failed-authentication throttle on, set so
// high that nothing is refused, so each upload pays for its checks: address
// requests, the failed-authentication gate, address frames. It runs with the
// limits counted locally and in Redis, alternately (`--runs` of each, so a
// load change on a shared machine hits both), small requests (`--batch`
// frames) so the per-request cost shows, and prints requests/s, latency, and
// the Redis script calls per request (INFO commandstats), which should be
// one per check.
import { Agent } from 'node:http';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { ProvisionedDevice } from '../protocol/index.js';
import { benchDb, freePort, importFleet, pct, post, startServer, stopServer, uploadBody, writeConfig, type BenchServer } from './harness.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '20' },
    batch: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    runs: { type: 'string', default: '2' },
    redis: { type: 'string', default: process.env.SEALPOST_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
  strict: true,
});
const DEVICES = Number(values.devices);
const ROUNDS = Number(values.rounds);
const BATCH = Number(values.batch);
const CONCURRENCY = Number(values.concurrency);
const HIGH = { per_second: 1_000_000_000, burst: 1_000_000_000 };

async function scriptCalls(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

async function drive(port: number, bodies: string[]): Promise<{ seconds: number; latencies: number[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const t = performance.now();
        const r = await post(agent, port, body);
        latencies.push(performance.now() - t);
        if (r.status !== 200 || JSON.parse(r.text).devices[0].accepted !== BATCH) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 300)}`);
      }
    }),
  );
  agent.destroy();
  return { seconds: (performance.now() - start) / 1000, latencies };
}

async function run(mode: 'local' | 'redis', redis: Redis): Promise<void> {
  const bench = benchDb('sqlite');
  let server: BenchServer | undefined;
  try {
    const { devices, keyFile } = await importFleet(bench, DEVICES);
    const port = await freePort();
    const prefix = `sealpost-bench:${randomBytes(4).toString('hex')}:`;
    const config = writeConfig(bench, {
      db: bench.db,
      listen: `127.0.0.1:${port}`,
      ingest_keys: [keyFile],
      log_level: 'warn',
      limits: { frames_per_request: BATCH },
      rate_limit: { address: { requests: HIGH, frames: HIGH }, relay_key: null, read: null, auth_failures: null },
      failed_auth: { ip: HIGH, serial: HIGH },
      ...(mode === 'redis' ? { shared_limits: { redis: values.redis, prefix } } : {}),
    });
    const t0 = Date.now() - 86_400_000;
    const job = (d: ProvisionedDevice, r: number) => uploadBody(d, r, BATCH, 'bench-relay', t0).body;
    server = await startServer(config, port);
    await drive(port, devices.map((d) => job(d, 0)));
    const bodies: string[] = [];
    for (let r = 1; r <= ROUNDS; r++) for (const d of devices) bodies.push(job(d, r));
    const before = await scriptCalls(redis);
    const { seconds, latencies } = await drive(port, bodies);
    const calls = (await scriptCalls(redis)) - before;
    console.log(
      `${mode.padEnd(5)} ${Math.round(bodies.length / seconds).toLocaleString('en-US').padStart(6)} req/s, latency p50 ${pct(latencies, 0.5).toFixed(2)} ms p99 ${pct(latencies, 0.99).toFixed(2)} ms, Redis script calls per request ${(calls / bodies.length).toFixed(2)}`,
    );
    const left = await redis.keys(`${prefix}*`);
    if (left.length > 0) await redis.del(...left);
  } finally {
    await stopServer(server);
    await bench.drop();
  }
}

const redis = new Redis(values.redis);
console.log(
  `sealpost shared-limits bench: ${DEVICES} devices, ${BATCH} frames per request, ${ROUNDS} timed rounds, ${CONCURRENCY} connections, ${cpus().length} CPUs, node ${process.version}`,
);
try {
  for (let i = 0; i < Number(values.runs); i++) {
    await run('local', redis);
    await run('redis', redis);
  }
} finally {
  redis.disconnect();
}
