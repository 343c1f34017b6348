// Several ingest nodes on one PostgreSQL schema, under chaos (issue #14,
// items 1 and 3; docs/server.md, "Several nodes"). Three `sealpost server`
// processes start at once on a fresh schema (their migrations race), then a
// batch is registered without the ingest private key, so the nodes derive
// and wrap keys on first frames, concurrently. Relays carry every device
// twice (two phones in range) and post each device's unacknowledged frames to
// a node picked at random; devices drop frames when their outbox overflows
// and report the loss as a gap, as the firmware does. Meanwhile one node is
// killed with SIGKILL and restarted, and the nodes' PostgreSQL connections
// are terminated at random (pg_terminate_backend). The nodes count their rate
// limits together in Redis (shared_limits), as a deployment of several nodes
// does, with budgets an honest fleet stays within. Then the chaos stops and
// the relays drain every outbox. What must hold:
//   - no ack ever covers a frame that is not stored or inside a reported gap;
//   - every frame a device made is stored or inside a reported gap, and every
//     device ends fully acknowledged (N = its last counter);
//   - nothing is stored twice: one frame row per counter (the key), and one
//     reading per stored sample.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANCHOR_BOOT, readU32BE, verifyAck } from '../../protocol/index.js';
import { importManifest, openStorage } from '../../server/index.js';
import { SealingDevice, body, makeFleet, type Fleet } from '../helpers/server.js';
import { startServerProcess, writeConfig, writeFleetFiles, type FleetFiles, type ServerProcess } from '../helpers/server-files.js';

const BASE = process.env.SEALPOST_TEST_PG_URL!;
const REDIS = process.env.SEALPOST_TEST_REDIS_URL!;
const NODES = 3;
const DEVICES = 10;
/** Frames a device keeps unacknowledged; beyond it the oldest are dropped and reported as a gap. */
const OUTBOX = 48;
const CHAOS_MS = 12_000;
/** Acks the chaos phase waits for (past CHAOS_MS) before it ends. */
const CHAOS_ACKS = 120;
const DRAIN_MS = 45_000;

interface Node extends ServerProcess {
  index: number;
  /** Requests sent to it and not yet answered. */
  inFlight: number;
}

/** A device as the relays see it: its sealer and the frames it still holds (one outbox, shared by both relays). */
interface Device {
  sealer: SealingDevice;
  outbox: Uint8Array[];
  acked: number;
  uptime: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startNode(index: number, config: string): Promise<Node> {
  return { index, inFlight: 0, ...(await startServerProcess(config, 45_000)) };
}

describe('three ingest nodes on one PostgreSQL schema, under chaos', () => {
  const tag = randomBytes(5).toString('hex');
  const schema = `sp_chaos_${tag}`;
  const appName = `sealpost-chaos-${tag}`;
  const u = new URL(BASE);
  u.searchParams.set('schema', schema);
  u.searchParams.set('application_name', appName);
  const dbUrl = u.toString();
  let fleet: Fleet;
  let files: FleetFiles;
  let admin: pg.Client;
  let redis: Redis;
  const prefix = `sealpost-chaos-${tag}:`;
  const nodes: (Node | undefined)[] = [];

  beforeAll(async () => {
    fleet = makeFleet(DEVICES, { prefix: 'SP-C', batch: `B-C${tag}` });
    files = writeFleetFiles(fleet);
    admin = new pg.Client({ connectionString: BASE });
    await admin.connect();
    redis = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  afterAll(async () => {
    for (const n of nodes) n?.child.kill('SIGKILL');
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    rmSync(files.dir, { recursive: true, force: true });
  });

  it('stores every frame once, acks nothing that is missing, and settles everything after a node is killed and connections drop', async () => {
    const config = writeConfig(files.dir, {
      db: dbUrl,
      listen: '127.0.0.1:0',
      ingest_keys: [files.ingestKey],
      rate_limit: { address: { requests: { per_second: 1000, burst: 2000 }, frames: { per_second: 50_000, burst: 100_000 } } },
      shared_limits: { redis: REDIS, prefix, timeout_ms: 1000 },
      log_level: 'info',
      pg_pool_size: 4,
      pg_read_pool_size: 1,
      read_workers: 1,
    });
    // All three at once on a schema that does not exist yet: their migrations race.
    nodes.push(...(await Promise.all(Array.from({ length: NODES }, (_, i) => startNode(i, config)))));
    const versions = (await admin.query(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`)).rows.map((r) => Number(r.version));
    expect(versions).toEqual([...new Set(versions)]);

    // Registered while the nodes run, without the private key: the nodes derive and wrap on first frames.
    const storage = await openStorage(dbUrl, { poolSize: 2, readWorkers: 0 });
    await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
    await storage.close();

    const devices: Device[] = fleet.devices.map((k) => {
      const sealer = new SealingDevice(k);
      return { sealer, outbox: [sealer.anchor(1, 0, ANCHOR_BOOT)], acked: 0, uptime: 0 };
    });
    const acks: { serial: string; n: number }[] = [];
    const stats = { posts: 0, failures: 0, gaps: 0, kills: 0, inFlightAtKill: 0, terminated: 0, redisKeys: 0 };
    let chaos = true;

    /** The device samples: new frames into its outbox; on overflow the oldest go and a gap report says so. */
    const produce = (d: Device, count: number) => {
      for (let i = 0; i < count; i++) {
        d.uptime += 10;
        d.outbox.push(d.sealer.sample(1, d.uptime, [{ channel: 1, value: d.uptime % 1000 }]));
      }
      if (d.outbox.length > OUTBOX) {
        const lost = d.outbox.splice(0, d.outbox.length - OUTBOX + 1);
        const first = readU32BE(lost[0]!, 0);
        d.outbox.push(d.sealer.gap(first, lost.length));
        stats.gaps++;
      }
    };

    const post = async (d: Device, relay: string): Promise<void> => {
      const live = nodes.filter((n): n is Node => n !== undefined);
      const node = live[Math.floor(Math.random() * live.length)]!;
      const frames = d.outbox.slice(0, 64);
      if (frames.length === 0) return;
      stats.posts++;
      let res: Response;
      let json: any;
      node.inFlight++;
      try {
        res = await fetch(`${node.url}/v1/uplink`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body(relay, Date.now(), [{ serial: d.sealer.serial, frames: frames.map((frame) => ({ frame, rx: Date.now() })) }])),
          signal: AbortSignal.timeout(10_000),
        });
        json = await res.json();
      } catch {
        stats.failures++; // a killed node, a reset connection: the relay tries again later
        return;
      } finally {
        node.inFlight--;
      }
      if (res.status !== 200) {
        // A dropped database connection the retry could not save: 5xx, nothing acknowledged.
        expect(res.status, JSON.stringify(json)).toBeGreaterThanOrEqual(500);
        stats.failures++;
        return;
      }
      const entry = json.devices[0];
      expect(entry.rejected).toEqual([]);
      if (entry.ack === null) return;
      const n = verifyAck(d.sealer.keys, new Uint8Array(Buffer.from(entry.ack, 'base64')));
      expect(n).toBeGreaterThan(0);
      acks.push({ serial: d.sealer.serial, n });
      if (n > d.acked) d.acked = n;
      while (d.outbox.length > 0 && readU32BE(d.outbox[0]!, 0) <= d.acked) d.outbox.shift();
    };

    // Two relays per device (relay r carries devices r and r + 1 mod R), each a loop.
    const RELAYS = 5;
    const relayLoop = async (r: number, until: () => boolean) => {
      const mine = devices.filter((_, i) => i % RELAYS === r || (i + 1) % RELAYS === r);
      while (!until()) {
        const d = mine[Math.floor(Math.random() * mine.length)]!;
        // Now and then a device was out of range for a while: a burst that overflows its outbox.
        if (chaos) produce(d, Math.random() < 0.03 ? OUTBOX : 1 + Math.floor(Math.random() * 6));
        await post(d, `relay-${r}`);
        await sleep(Math.random() * 20);
      }
    };

    // Killed while it has requests in flight; the load balancer notices only when they fail.
    const killer = async () => {
      await sleep(CHAOS_MS / 3);
      const victim = nodes[1]!;
      while (victim.inFlight === 0) await sleep(2);
      stats.inFlightAtKill = victim.inFlight;
      victim.child.kill('SIGKILL');
      expect(await victim.exited).toBe('SIGKILL');
      stats.kills++;
      await sleep(300);
      nodes[1] = undefined;
      await sleep(700);
      nodes[1] = await startNode(1, config);
    };
    const terminator = async () => {
      while (chaos) {
        await sleep(200 + Math.random() * 400);
        const r = await admin.query(
          `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name LIKE $1 ORDER BY random() LIMIT 1`,
          [`${appName}%`],
        );
        if (r.rows[0]?.done) stats.terminated++;
        // The nodes count their limits in Redis while they run (idle keys expire once full again).
        stats.redisKeys = Math.max(stats.redisKeys, (await redis.keys(`${prefix}*`)).length);
      }
    };

    const started = Date.now();
    // At least CHAOS_MS, and on a loaded machine longer (up to three times) until the
    // relays have had enough acks under chaos for the check below to mean something.
    const chaosOver = () => {
      const t = Date.now() - started;
      return t > CHAOS_MS && (acks.length > CHAOS_ACKS || t > 3 * CHAOS_MS);
    };
    const done = Promise.all([killer(), terminator(), ...Array.from({ length: RELAYS }, (_, r) => relayLoop(r, chaosOver))]);
    while (!chaosOver()) await sleep(50);
    chaos = false;
    await done;

    // Drain: no new frames, no chaos; relays post until every device is fully acknowledged.
    const drained = () => devices.every((d) => d.outbox.length === 0);
    const drainStart = Date.now();
    await Promise.all(Array.from({ length: RELAYS }, (_, r) => relayLoop(r, () => drained() || Date.now() - drainStart > DRAIN_MS)));
    const stuck = devices.filter((d) => d.outbox.length > 0).map((d) => `${d.sealer.serial}: ${d.outbox.length} frames, acked ${d.acked} of ${d.sealer.counter}`);
    expect(stuck, JSON.stringify(stats)).toEqual([]);

    console.log(`multi-node chaos: ${JSON.stringify({ ...stats, acks: acks.length, frames: devices.reduce((n, d) => n + d.sealer.counter, 0) })}`);
    // The chaos happened.
    expect(stats.kills).toBe(1);
    expect(stats.inFlightAtKill).toBeGreaterThan(0);
    expect(stats.failures).toBeGreaterThan(0);
    expect(stats.terminated).toBeGreaterThan(5);
    expect(stats.gaps).toBeGreaterThan(0);
    expect(acks.length).toBeGreaterThan(100);

    const q = async (text: string) => (await admin.query(text)).rows;
    const stored = new Map<string, Set<number>>();
    for (const r of await q(`SELECT serial, counter FROM ${schema}.frames`)) {
      if (!stored.has(r.serial)) stored.set(r.serial, new Set());
      stored.get(r.serial)!.add(Number(r.counter));
    }
    const gaps = new Map<string, { first: number; count: number }[]>();
    for (const r of await q(`SELECT serial, first, count FROM ${schema}.gaps`)) {
      if (!gaps.has(r.serial)) gaps.set(r.serial, []);
      gaps.get(r.serial)!.push({ first: Number(r.first), count: Number(r.count) });
    }
    const settled = (serial: string, c: number) => stored.get(serial)?.has(c) || (gaps.get(serial) ?? []).some((g) => c >= g.first && c < g.first + g.count);

    for (const a of acks) {
      for (let c = 1; c <= a.n; c++) expect(settled(a.serial, c), `${a.serial} counter ${c} under an ack of ${a.n} is neither stored nor in a gap`).toBe(true);
    }
    for (const d of devices) {
      expect(d.acked, d.sealer.serial).toBe(d.sealer.counter);
      for (let c = 1; c <= d.sealer.counter; c++) expect(settled(d.sealer.serial, c), `${d.sealer.serial} counter ${c}`).toBe(true);
    }
    expect(await q(`SELECT serial, counter, count(*) AS n FROM ${schema}.readings GROUP BY serial, counter HAVING count(*) <> 1`)).toEqual([]);
    const samples = await q(`SELECT count(*) AS n FROM ${schema}.frames f WHERE NOT EXISTS (SELECT 1 FROM ${schema}.readings r WHERE r.serial = f.serial AND r.counter = f.counter) AND f.type = 1`);
    expect(Number(samples[0].n)).toBe(0);
    // The nodes counted their limits in Redis, together.
    expect(stats.redisKeys).toBeGreaterThan(0);
    // Every node that ran until the end is still up: no node died of a dropped connection.
    for (const n of nodes) expect(n!.child.exitCode, n!.stderr.join('').slice(-2000)).toBeNull();
  }, 150_000);
});
