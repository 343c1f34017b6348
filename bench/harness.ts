// What the benchmarks share: a signed fleet imported into a fresh database of
// either backend, the server as its own process (the production entry,
// `bin/sealpost.mjs server`), loopback HTTP helpers and percentiles.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { encodeKeyFile, encodeManifest, newFactoryKey, newIngestKey, provisionDevice, signManifest, type ProvisionedDevice } from '../protocol/index.js';
import { importManifest, openStorage } from '../server/index.js';

export type Backend = 'sqlite' | 'postgres';

export const DEFAULT_PG = process.env.SEALPOST_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

export function post(agent: Agent, port: number, body: string, path = '/v1/uplink'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
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

/** Provisions `count` devices (SP-B000001...), signs their manifest and imports it into `bench.db`. */
export async function importFleet(bench: BenchDb, count: number): Promise<BenchFleet> {
  const ingest = newIngestKey();
  const factory = newFactoryKey();
  const devices = Array.from({ length: count }, (_, i) => provisionDevice(ingest.publicFile.key, `SP-B${String(i + 1).padStart(6, '0')}`));
  const manifest = encodeManifest(
    signManifest(
      {
        batch: 'BENCH',
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
  const keyFile = join(bench.dir, 'ingest.key');
  writeFileSync(keyFile, encodeKeyFile(ingest.privateFile), { mode: 0o600 });
  return { devices, keyFile };
}

/** Writes the config file (JSON, snake_case as the server reads it). */
export function writeConfig(bench: BenchDb, settings: Record<string, unknown>): string {
  const file = join(bench.dir, 'sealpost.json');
  writeFileSync(file, JSON.stringify(settings));
  return file;
}

export interface ServerOptions {
  /** Where bin/sealpost.mjs is (another checkout, to measure an older version); default this one. */
  root?: string;
  /** Writes a V8 CPU profile of the server process into this directory. */
  profileDir?: string;
}

/** Starts `sealpost server --config FILE` as its own process and waits until it answers HTTP (any status). */
export async function startServer(config: string, port: number, options: ServerOptions = {}): Promise<ChildProcess> {
  const bin = options.root ? join(options.root, 'bin/sealpost.mjs') : new URL('../bin/sealpost.mjs', import.meta.url).pathname;
  const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
  const child = spawn(process.execPath, [...profile, bin, 'server', '--config', config], { stdio: ['ignore', 'inherit', 'inherit'] });
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));
  for (let i = 0; i < 300; i++) {
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
    if (up) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not start within 30 s');
}

export async function stopServer(child: ChildProcess | undefined): Promise<void> {
  if (!child) return;
  child.kill('SIGTERM');
  if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
}

export { Agent };
