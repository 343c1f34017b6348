// What the benchmarks share: a signed fleet imported into a fresh database of
// either backend, the server as its own process (the production entry,
// `bin/sealpost.mjs server`), loopback HTTP helpers and percentiles.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ANCHOR_BOOT, ANCHOR_CONNECT, encodeAnchor, encodeKeyFile, encodeManifest, encodeSample, newFactoryKey, newIngestKey, provisionDevice, sealFrame, signManifest, type KeyFile, type ProvisionedDevice } from '../protocol/index.js';
import * as server from '../server/index.js';
import { pathToFileURL } from 'node:url';

export type Backend = 'sqlite' | 'postgres';

export const DEFAULT_PG = process.env.SEALPOST_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The p-quantile of `xs` (p = 1: the maximum); NaN when there is none. */
export const pct = (xs: number[], p: number): number => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!);

export interface PostOptions {
  /** Default /v1/uplink. */
  path?: string;
  /** Gives up (rejects) when no answer came within this time; default never. */
  timeoutMs?: number;
}

export function post(agent: Agent, port: number, body: string | Buffer, options: PostOptions = {}): Promise<{ status: number; text: string }> {
  const { path = '/v1/uplink', timeoutMs } = options;
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: '127.0.0.1', port, path, method: 'POST', timeout: timeoutMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
      },
    );
    if (timeoutMs !== undefined) req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The upload a relay would make for `device` in round `round` (0: its first
 * contact): `batch` frames sealed as its firmware would, a time anchor (boot
 * in round 0, connect after) then one-reading samples, counters
 * round * batch + 1 onwards, 10 s of uptime apart from `t0`. `last` is the
 * last counter, which the ack must cover.
 */
export function uploadBody(device: ProvisionedDevice, round: number, batch: number, relayId: string, t0: number): { body: string; last: number } {
  const pt = new Uint8Array(8);
  const frames: string[] = [];
  let counter = round * batch;
  for (let i = 0; i < batch; i++) {
    counter++;
    const uptime = counter * 10;
    if (i === 0) encodeAnchor(pt, 1, uptime, round === 0 ? ANCHOR_BOOT : ANCHOR_CONNECT);
    else encodeSample(pt, 1, uptime, [{ channel: 1 + (counter % 3), value: (counter % 4000) / 100 }], 0);
    const rx = t0 + uptime * 1000 + 500;
    frames.push(`{"data":"${Buffer.from(sealFrame(device, counter, pt, 20)).toString('base64')}","rx":${rx}}`);
  }
  const body = `{"relay":{"id":"${relayId}","time":${Date.now()}},"devices":[{"serial":"${device.serial}","frames":[${frames.join(',')}]}]}`;
  return { body, last: counter };
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface BenchDb {
  backend: Backend;
  /** The config's db setting. */
  db: string;
  dir: string;
  /** Removes the files and the PostgreSQL schema. */
  drop(): Promise<void>;
}

/** A temporary directory and a fresh database: a SQLite file in it, or a PostgreSQL schema of its own. */
export function benchDb(backend: Backend, pgUrl = DEFAULT_PG): BenchDb {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-'));
  const schema = `sp_bench_${randomBytes(4).toString('hex')}`;
  let db = join(dir, 'bench.db');
  if (backend === 'postgres') {
    const u = new URL(pgUrl);
    u.searchParams.set('schema', schema);
    // Names the server's connections after the schema, so the bench can find their backends (backendPids).
    u.searchParams.set('application_name', schema);
    db = u.toString();
  }
  return {
    backend,
    db,
    dir,
    drop: async () => {
      rmSync(dir, { recursive: true, force: true });
      if (backend === 'postgres') {
        const admin = new pg.Client({ connectionString: pgUrl });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.end();
      }
    },
  };
}

export interface BenchFleet {
  devices: ProvisionedDevice[];
  /** The ingest private key file, mode 0600, for the config. */
  keyFile: string;
}

export interface FleetOptions {
  /** Serials are this and a six-digit number from 000001; default SP-B. */
  serialPrefix?: string;
  /** The batch name; default BENCH. */
  batch?: string;
  /** Import with another checkout's compiled server (its migrations), for a server of that checkout; default this one. */
  root?: string;
}

/** Provisions `count` devices (SP-B000001...), signs their manifest and imports it into `bench.db`. */
export async function importFleet(bench: BenchDb, count: number, options: FleetOptions = {}): Promise<BenchFleet> {
  const { serialPrefix = 'SP-B', batch = 'BENCH' } = options;
  const { openStorage, importManifest } = options.root ? ((await import(pathToFileURL(join(options.root, 'build/server/index.js')).href)) as typeof server) : server;
  const ingest = newIngestKey();
  const factory = newFactoryKey();
  const devices = Array.from({ length: count }, (_, i) => provisionDevice(ingest.publicFile.key, `${serialPrefix}${String(i + 1).padStart(6, '0')}`));
  const manifest = encodeManifest(
    signManifest(
      {
        batch,
        created: new Date().toISOString(),
        board: 'puckjs',
        frame_size: 20,
        ingest_key_id: ingest.publicFile.id,
        devices: devices.map((d) => ({ serial: d.serial, enc: Buffer.from(d.enc).toString('hex') })),
      },
      factory.privateFile,
    ),
  );
  const storage = await openStorage(bench.db);
  await importManifest(storage, manifest, { trusted: [factory.publicFile], ingestKeyIds: [ingest.publicFile.id] });
  await storage.close();
  return { devices, keyFile: writeIngestKey(bench, ingest.privateFile) };
}

/** Writes the ingest private key file (mode 0600) for the config; returns its path. */
export function writeIngestKey(bench: BenchDb, privateFile: KeyFile): string {
  const keyFile = join(bench.dir, 'ingest.key');
  writeFileSync(keyFile, encodeKeyFile(privateFile), { mode: 0o600 });
  return keyFile;
}

/** Writes the config file (JSON, snake_case as the server reads it) as `name` in the bench directory. */
export function writeConfig(bench: BenchDb, settings: Record<string, unknown>, name = 'sealpost.json'): string {
  const file = join(bench.dir, name);
  writeFileSync(file, JSON.stringify(settings));
  return file;
}

export interface ServerOptions {
  /** Where bin/sealpost.mjs is (another checkout, to measure an older version); default this one. */
  root?: string;
  /** Writes a V8 CPU profile of the server process into this directory. */
  profileDir?: string;
  /** How long it may take to answer; default 30 s (a large registry wrapped at start takes longer). */
  timeoutMs?: number;
  /** Runs node under this command, e.g. `['prlimit', '--nofile=N:N', '--']`; default none. */
  wrapper?: string[];
}

export interface BenchServer {
  child: ChildProcess;
  /** From the spawn to the first answer. */
  startMs: number;
}

/** Starts `sealpost server --config FILE` as its own process and waits until it answers HTTP (any status). */
export async function startServer(config: string, port: number, options: ServerOptions = {}): Promise<BenchServer> {
  const { timeoutMs = 30_000 } = options;
  const t = performance.now();
  const bin = options.root ? join(options.root, 'bin/sealpost.mjs') : new URL('../bin/sealpost.mjs', import.meta.url).pathname;
  const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
  const [command, ...args] = [...(options.wrapper ?? []), process.execPath, ...profile, bin, 'server', '--config', config];
  const child = spawn(command!, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));
  for (let i = 0; i < timeoutMs / 100; i++) {
    if (exited !== null) throw new Error(`server exited with ${exited}`);
    const up = await new Promise<boolean>((resolve) => {
      // Any answer means it listens: read routes may answer 401 once they need a token.
      const req = request({ host: '127.0.0.1', port, path: '/v1/devices', agent: false }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (up) return { child, startMs: performance.now() - t };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not start within ${timeoutMs / 1000} s`);
}

/** SIGTERM, then waits for the exit; with `killAfterMs`, SIGKILL when it has not exited by then. */
export async function stopServer(server: BenchServer | undefined, options: { killAfterMs?: number } = {}): Promise<void> {
  if (!server) return;
  const { child } = server;
  child.kill('SIGTERM');
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = options.killAfterMs === undefined ? undefined : setTimeout(() => (child.kill('SIGKILL'), resolve()), options.killAfterMs);
    child.once('exit', () => (clearTimeout(timer), resolve()));
  });
}

/**
 * CPU time (user + system, ms) used so far by these processes, all threads,
 * from /proc (Linux; 0 for a process that is gone). On a machine shared with
 * other work, CPU per frame moves far less than frames per second.
 */
export function cpuMs(pids: number[]): number {
  return ticksMs(pids.map((pid) => `/proc/${pid}/stat`));
}

/**
 * CPU time (user + system) of the main threads of these processes, in ms: a
 * node server's event loop, without its worker threads and libuv's pool
 * (/proc/PID/task/PID/stat; the main thread's id is the process id).
 */
export function mainThreadCpuMs(pids: number[]): number {
  return ticksMs(pids.map((pid) => `/proc/${pid}/task/${pid}/stat`));
}

function ticksMs(files: string[]): number {
  let ticks = 0;
  for (const file of files) {
    try {
      const stat = readFileSync(file, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    } catch {
      // exited
    }
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS = 100;

/** The server processes of PostgreSQL connections whose application_name starts with `prefix`. */
export async function backendPids(pgUrl: string, prefix: string): Promise<number[]> {
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  try {
    return (await admin.query('SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1', [`${prefix}%`])).rows.map((r) => Number(r.pid));
  } finally {
    await admin.end();
  }
}

export { Agent };
