// What a junk uplink costs the server (issue #10, item 4).
//
//   npx tsx bench/junk-uplink.ts [--devices 100000] [--key-cache 1000] [--requests 3000]
//       [--serials 100] [--concurrency 8] [--backend sqlite|postgres] [--pg URL]
//       [--throttle off|on|both] [--wrap bench|server] [--profile DIR]
//       [--settled N] [--frames random|plausible] [--root DIR]... [--rounds N]
//       [--key-directory N]
//
// An attacker knows serials (public, sequential) and sends requests that each
// name `serials` registered devices with one junk frame apiece: random bytes of
// the right size (F = 20), which fail authentication. `--frames random` (the
// default) sends random counters too; `--frames plausible` is the smarter
// attacker: counters just above each device's watermark, as the device's next
// genuine frame would carry, so no counter check can refuse them without the
// key. `--settled N` gives every registry row the watermark N (an active
// fleet: trees before session 5 answered each named device with an ack, one
// more AES operation per serial; now junk gets none, and the line reports
// how many entries were acked); 0, the default, is a fresh registry. The
// worst case is `--settled 1000 --frames plausible` (docs/server.md, "Junk
// uplinks"). The fleet is larger than the server's key cache (`key_cache`,
// small on purpose), so every serial is a cache miss. `--key-directory N`
// sets the server's `key_directory` (the registry key rows a node holds in
// memory, default 1,000,000): 0, or any N well below --devices, is a fleet
// larger than any cache, where every serial's key row comes from the
// database. Before wrapped keys,
// each miss cost an HPKE SetupBaseR (X25519); then an AES-256-GCM unwrap of
// the row's keys_wrapped and an AES context for the CCM check; now the
// request's blobs share one AES-256 call (the tag is checked only once a
// frame authenticates) and every device's CCM check the same 1 + k calls of
// AES-128 under many keys (server/ingest/aes.ts: the native/ addon).
//
// The registry rows are written through the storage API with real enc values
// (factory/sender.ts, the factory's HPKE sender). With `--wrap bench` (the
// default) this process also stores each row's wrapped keys, as `registry
// import` with the private key would; with `--wrap server` it leaves them NULL
// and the server wraps them at start (timed: the one-off migration cost). On a
// tree without wrapped keys (the base commit) the column is simply left alone.
//
// The server runs as its own process (bin/sealpost.mjs server). Its CPU time
// (utime + stime from /proc/PID/stat, 10 ms ticks) over the timed requests,
// divided by the requests, is the figure. `--throttle off` disables the
// failed-authentication throttle (the work per request); `on` keeps its
// defaults and reports what one attacking address gets: how many requests
// were looked at (200) and how many were refused before any work (429).
//
// `--root DIR` (repeatable) runs the server of another checkout (e.g. the
// tree before a change) against the same registry rows, written into a
// database of its own by that checkout's storage code (so each tree runs on
// the schema it knows; the rows are made once); with several roots and
// `--rounds N` the runs alternate root by root, N times, so a before/after
// comparison on a shared machine sees the same load.
import { Agent } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { newIngestKey, type DeviceKeys } from '../protocol/index.js';
import { createSender } from '../factory/sender.js';
import { openStorage } from '../server/index.js';
import type { NewDevice } from '../server/storage/types.js';
import { DEFAULT_PG, benchDb, cpuMs, freePort, post, startServer, stopServer, writeConfig, writeIngestKey, type BenchServer } from './harness.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '100000' },
    'key-cache': { type: 'string', default: '1000' },
    requests: { type: 'string', default: '3000' },
    serials: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '8' },
    backend: { type: 'string', default: 'sqlite' },
    pg: { type: 'string', default: DEFAULT_PG },
    throttle: { type: 'string', default: 'both' },
    wrap: { type: 'string', default: 'bench' },
    profile: { type: 'string' },
    settled: { type: 'string', default: '0' },
    frames: { type: 'string', default: 'random' },
    root: { type: 'string', multiple: true },
    rounds: { type: 'string', default: '1' },
    'key-directory': { type: 'string' },
  },
  strict: true,
});
const DEVICES = Number(values.devices);
const KEY_CACHE = Number(values['key-cache']);
const REQUESTS = Number(values.requests);
const SERIALS = Number(values.serials);
const CONCURRENCY = Number(values.concurrency);
const BACKEND = values.backend as 'sqlite' | 'postgres';
const SETTLED = Number(values.settled);
const FRAMES = values.frames as 'random' | 'plausible';
const ROUNDS = Number(values.rounds);
const ROOTS: (string | undefined)[] = values.root ?? [undefined];
const KEY_DIRECTORY = values['key-directory'] === undefined ? undefined : Number(values['key-directory']);
const FRAME_SIZE = 20;
if (KEY_DIRECTORY !== undefined && (!Number.isInteger(KEY_DIRECTORY) || KEY_DIRECTORY < 0)) throw new Error(`--key-directory must be 0 or a number of rows, not ${String(values['key-directory'])}`);
if (FRAMES !== 'random' && FRAMES !== 'plausible') throw new Error(`--frames is random or plausible, not ${String(values.frames)}`);
if (!Number.isInteger(SETTLED) || SETTLED < 0 || SETTLED > 0xffff0000) throw new Error(`--settled must be a counter, not ${String(values.settled)}`);

// Present only on trees with wrapped device keys (not on the base commit).
type Wrap = (kek: Uint8Array, row: { serial: string; ingestKeyId: string; enc: Uint8Array }, keys: DeviceKeys) => Uint8Array;
const keysModule = (await import('../server/keys.js')) as Record<string, unknown>;
const wrapDeviceKeys = keysModule.wrapDeviceKeys as Wrap | undefined;
const registryKek = keysModule.registryKek as ((k: Uint8Array, id: string) => Uint8Array) | undefined;
const HAS_WRAPPING = wrapDeviceKeys !== undefined && registryKek !== undefined;

const serialOf = (i: number) => `SP-J${String(i + 1).padStart(7, '0')}`;

/** One junk frame: random bytes, or (plausible) a counter 1 to 16 above the device's watermark before them. */
function junkFrame(): string {
  const frame = randomBytes(FRAME_SIZE);
  if (FRAMES === 'plausible') frame.writeUInt32BE(SETTLED + 1 + Math.floor(Math.random() * 16), 0);
  return frame.toString('base64');
}

/** Request bodies: each names SERIALS random registered serials, one junk frame each. */
function junkBodies(n: number): string[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, r) => {
    const picked = new Set<number>();
    while (picked.size < SERIALS) picked.add(Math.floor(Math.random() * DEVICES));
    const devices = [...picked].map((i) => `{"serial":"${serialOf(i)}","frames":[{"data":"${junkFrame()}","rx":${now}}]}`);
    return `{"relay":{"id":"junk-${r % 4}","time":${now}},"devices":[${devices.join(',')}]}`;
  });
}

interface Outcome {
  ok: number;
  refused: number;
  failedFrames: number;
  /** Device entries answered with an ack (junk should get none). */
  acked: number;
  cpuMs: number;
  seconds: number;
}

async function drive(port: number, pid: number, bodies: string[]): Promise<Outcome> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const out: Outcome = { ok: 0, refused: 0, failedFrames: 0, acked: 0, cpuMs: 0, seconds: 0 };
  let acked = 0;
  let next = 0;
  const cpu0 = cpuMs([pid]);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const r = await post(agent, port, bodies[next++]!);
        if (r.status === 429) {
          out.refused++;
          continue;
        }
        if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 300)}`);
        out.ok++;
        for (const d of JSON.parse(r.text).devices) {
          for (const x of d.rejected) {
            if (x.reason !== 'frame authentication failed') throw new Error(`unexpected rejection: ${JSON.stringify(x)}`);
            out.failedFrames++;
          }
          if (d.accepted !== 0) throw new Error('a junk frame was accepted');
          // Trees before 2026-12-07 (session 5) answered junk with the watermark's ack; now junk learns nothing.
          if (d.ack !== null) acked++;
        }
      }
    }),
  );
  out.acked = acked;
  out.seconds = (performance.now() - start) / 1000;
  out.cpuMs = cpuMs([pid]) - cpu0;
  agent.destroy();
  return out;
}

/** The storage code of a checkout (its migrations): this one's, or `root`'s compiled server. */
async function storageOf(root: string | undefined): Promise<typeof openStorage> {
  if (!root) return openStorage;
  return ((await import(pathToFileURL(join(root, 'build/server/index.js')).href)) as { openStorage: typeof openStorage }).openStorage;
}

async function main(): Promise<void> {
  // One registry per root, the same rows written by that root's own storage code, so a tree whose
  // schema is older than this one's (it refuses a newer database) measures on a database it knows.
  const benches = ROOTS.map(() => benchDb(BACKEND, values.pg));
  const bench = benches[0]!;
  const servers: BenchServer[] = [];
  try {
    const ingest = newIngestKey();
    const keyId = ingest.privateFile.id;
    const sender = createSender(ingest.publicFile.key);
    const kek = HAS_WRAPPING && values.wrap === 'bench' ? registryKek!(ingest.privateFile.key, keyId) : undefined;
    const t = performance.now();
    const now = Date.now();
    const chunks: NewDevice[][] = [];
    for (let i = 0; i < DEVICES; i += 2000) {
      const rows: NewDevice[] = [];
      for (let j = i; j < Math.min(DEVICES, i + 2000); j++) {
        const serial = serialOf(j);
        const dev = sender(serial);
        const row = { serial, enc: dev.enc, ingestKeyId: keyId, board: 'puckjs', frameSize: FRAME_SIZE, batch: 'JUNK', registeredAt: now };
        rows.push(kek ? { ...row, keysWrapped: wrapDeviceKeys!(kek, row, dev) } : row);
      }
      chunks.push(rows);
    }
    for (let r = 0; r < ROOTS.length; r++) {
      const storage = await (await storageOf(ROOTS[r]))(benches[r]!.db);
      await storage.transaction(async (tx) =>
        tx.insertBatch({
          batch: 'JUNK',
          factoryKeyId: 'fk-0000000000000000',
          ingestKeyId: keyId,
          board: 'puckjs',
          frameSize: FRAME_SIZE,
          created: new Date(now).toISOString(),
          manifestSha256: '0'.repeat(64),
          devices: DEVICES,
          importedAt: now,
        }),
      );
      for (const rows of chunks) {
        await storage.transaction(async (tx) => {
          await tx.insertDevices(rows);
          if (SETTLED === 0) return;
          // An active fleet: every counter up to SETTLED stored and acknowledged (the frames themselves are not needed).
          for (const d of await tx.lockDevices(rows.map((r) => r.serial))) {
            await tx.updateDevice({ ...d, settled: SETTLED, maxCounter: SETTLED, frames: SETTLED, lastSeen: now });
          }
        });
      }
      await storage.close();
    }
    const provisionS = (performance.now() - t) / 1000;
    const keyFile = writeIngestKey(bench, ingest.privateFile);

    console.log(
      `sealpost junk-uplink bench: ${BACKEND}, ${DEVICES} registered devices (rows written in ${provisionS.toFixed(1)} s, ` +
        `${HAS_WRAPPING ? (kek ? 'keys wrapped by the bench' : 'keys left for the server to wrap') : 'tree without wrapped keys'}), ` +
        `watermark ${SETTLED}, key_cache ${KEY_CACHE}, key_directory ${KEY_DIRECTORY ?? 'default'}, ${REQUESTS} requests x ${SERIALS} serials x 1 junk frame (${FRAMES} counters), ` +
        `${CONCURRENCY} connections, ${cpus().length} CPUs, node ${process.version}`,
    );
    const modes = values.throttle === 'both' ? ['off', 'on'] : [values.throttle!];
    const runs: { root: string | undefined; mode: string }[] = [];
    for (let round = 0; round < ROUNDS; round++) for (const root of ROOTS) for (const mode of modes) runs.push({ root, mode });
    for (const { root, mode } of runs) {
      const db = benches[ROOTS.indexOf(root)]!.db;
      if (mode === 'on' && !HAS_WRAPPING) {
        console.log('throttle on: this tree has no failed-authentication throttle; skipped');
        continue;
      }
      const port = await freePort();
      const settings: Record<string, unknown> = { db, listen: `127.0.0.1:${port}`, ingest_keys: [keyFile], rate_limit: false, log_level: 'warn', key_cache: KEY_CACHE };
      if (HAS_WRAPPING && mode === 'off') settings.failed_auth = false;
      if (KEY_DIRECTORY !== undefined) settings.key_directory = KEY_DIRECTORY;
      const config = writeConfig(bench, settings, `sealpost-${mode}.json`);
      const server = await startServer(config, port, { profileDir: values.profile, timeoutMs: 600_000, ...(root ? { root } : {}) });
      servers.push(server);
      const { child, startMs } = server;
      if (HAS_WRAPPING && !kek && servers.length === 1) console.log(`server start, wrapping every row first: ${(startMs / 1000).toFixed(1)} s`);
      // Warm-up (JIT, statement caches) only without the throttle: with it, the first requests are the attack.
      if (mode === 'off') await drive(port, child.pid!, junkBodies(Math.min(200, REQUESTS)));
      const r = await drive(port, child.pid!, junkBodies(REQUESTS));
      const perRequest = r.cpuMs / REQUESTS;
      console.log(
        [
          `${root ? `${root}: ` : ''}throttle ${mode.padEnd(3)}:`,
          `server CPU ${perRequest.toFixed(3)} ms per request (${r.cpuMs} ms over ${REQUESTS} requests in ${r.seconds.toFixed(2)} s),`,
          `${r.ok} looked at (200, ${r.failedFrames} frames failed authentication), ${r.refused} refused with 429 before any work;`,
          `${Math.round(r.failedFrames / r.seconds)} junk frames/s reached the crypto; ${r.acked} device entries answered with an ack`,
        ].join(' '),
      );
      await stopServer(server);
    }
  } finally {
    for (const server of servers) await stopServer(server);
    for (const b of benches) await b.drop();
  }
}

await main();
