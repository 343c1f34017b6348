// Fixtures for the server tests: a fleet (ingest key, factory key, devices
// provisioned as the factory would, a signed manifest), devices that seal
// frames with protocol/ (not the firmware), request bodies, and the two
// storage backends with a fresh database per test file: a temporary SQLite
// file, or a PostgreSQL schema with a random name that is dropped afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import {
  encodeAnchor,
  encodeGap,
  encodeManifest,
  encodeSample,
  newFactoryKey,
  newIngestKey,
  provisionDevice,
  sealFrame,
  signManifest,
  type KeyFile,
  type ProvisionedDevice,
  type Reading,
} from '../../protocol/index.js';
import { NO_RATE_LIMIT, buildServer, importManifest, makeConfig, openStorage, type ServerConfig, type Storage } from '../../server/index.js';
import type { FastifyInstance } from 'fastify';
import { createToken } from '../../server/auth/tokens.js';

export const BACKENDS = ['sqlite', 'postgres'] as const;
export type Backend = (typeof BACKENDS)[number];

export const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');

export interface Fleet {
  ingest: { privateFile: KeyFile; publicFile: KeyFile };
  factory: { privateFile: KeyFile; publicFile: KeyFile };
  devices: ProvisionedDevice[];
  frameSize: number;
  batch: string;
  manifest: string;
}

export function manifestFor(fleet: Pick<Fleet, 'ingest' | 'factory'>, devices: ProvisionedDevice[], batch: string, frameSize = 20, board = 'puckjs'): string {
  return encodeManifest(
    signManifest(
      {
        batch,
        created: '2026-11-27T00:00:00Z',
        board,
        frame_size: frameSize,
        ingest_key_id: fleet.ingest.publicFile.id,
        devices: devices.map((d) => ({ serial: d.serial, enc: Buffer.from(d.enc).toString('hex') })),
      },
      fleet.factory.privateFile,
    ),
  );
}

export function makeFleet(count: number, options: { frameSize?: number; batch?: string; prefix?: string } = {}): Fleet {
  const ingest = newIngestKey();
  const factory = newFactoryKey();
  const frameSize = options.frameSize ?? 20;
  const batch = options.batch ?? 'B-0001';
  const prefix = options.prefix ?? 'SP-T';
  const devices = Array.from({ length: count }, (_, i) => provisionDevice(ingest.publicFile.key, `${prefix}${String(i + 1).padStart(5, '0')}`));
  const fleet = { ingest, factory, devices, frameSize, batch, manifest: '' };
  fleet.manifest = manifestFor(fleet, devices, batch, frameSize);
  return fleet;
}

/** Seals frames the way the firmware would, from protocol/ alone: no firmware, no HAL (for that, sim/device.ts SimDevice). */
export class SealingDevice {
  counter = 0;
  readonly pt: Uint8Array;
  constructor(
    readonly keys: ProvisionedDevice,
    readonly frameSize = 20,
  ) {
    this.pt = new Uint8Array(frameSize - 12);
  }
  get serial(): string {
    return this.keys.serial;
  }
  private seal(): Uint8Array {
    this.counter++;
    return sealFrame(this.keys, this.counter, this.pt, this.frameSize);
  }
  sample(boot: number, uptime: number, readings: Reading[]): Uint8Array {
    encodeSample(this.pt, boot, uptime, readings, 0);
    return this.seal();
  }
  anchor(boot: number, uptime: number, reason: number): Uint8Array {
    encodeAnchor(this.pt, boot, uptime, reason);
    return this.seal();
  }
  gap(first: number, count: number): Uint8Array {
    encodeGap(this.pt, first, count);
    return this.seal();
  }
  raw(bytes: number[]): Uint8Array {
    this.pt.fill(0);
    this.pt.set(bytes);
    return this.seal();
  }
}

export interface FrameIn {
  frame: Uint8Array;
  rx: number;
}

export function body(relay: string, time: number, devices: { serial: string; frames: FrameIn[] }[]) {
  return { relay: { id: relay, time }, devices: devices.map((d) => ({ serial: d.serial, frames: d.frames.map((f) => ({ data: b64(f.frame), rx: f.rx })) })) };
}

/** A fresh, empty database for one test file; `drop()` removes it. */
export interface TestDb {
  backend: Backend;
  /** What config.db would say. */
  url: string;
  open(): Promise<Storage>;
  drop(): Promise<void>;
}

export async function testDb(backend: Backend): Promise<TestDb> {
  const name = `sp_test_${randomBytes(6).toString('hex')}`;
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'sealpost-test-'));
    const url = join(dir, `${name}.db`);
    return { backend, url, open: () => openStorage(url), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const base = process.env.SEALPOST_TEST_PG_URL;
  if (!base) throw new Error('SEALPOST_TEST_PG_URL is not set (vitest.config.ts sets a default)');
  const u = new URL(base);
  u.searchParams.set('schema', name);
  const url = u.toString();
  return {
    backend,
    url,
    open: () => openStorage(url, { poolSize: 4 }),
    drop: async () => {
      const admin = new pg.Client({ connectionString: base });
      await admin.connect();
      try {
        await admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      } finally {
        await admin.end();
      }
    },
  };
}

export interface TestServer {
  app: FastifyInstance;
  storage: Storage;
  fleet: Fleet;
  clock: { now: number };
  post(payload: unknown): Promise<{ status: number; json: any; headers: Record<string, unknown> }>;
  /** A read token made through the token store for this server, and its header. */
  token: string;
  auth: { authorization: string };
  close(): Promise<void>;
}

/** A log stream for a server's logger (`logger: { level, stream }`) and the lines written to it, each as `parse` makes it (default as is). */
export function logCapture(): { lines: string[]; stream: Writable };
export function logCapture<T>(parse: (line: string) => T): { lines: T[]; stream: Writable };
export function logCapture(parse: (line: string) => unknown = (line) => line): { lines: unknown[]; stream: Writable } {
  const lines: unknown[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(parse(line));
      done();
    },
  });
  return { lines, stream };
}

/** A new read token in `storage` with a unique name; returns the token and its Authorization header. */
export async function readToken(storage: Storage, role: 'read' | 'admin' = 'read'): Promise<{ token: string; name: string; auth: { authorization: string } }> {
  const t = await createToken(storage, `test-${role}-${randomBytes(4).toString('hex')}`, role);
  return { token: t.token, name: t.name, auth: { authorization: `Bearer ${t.token}` } };
}

/** An in-process server (fastify.inject) on `storage`, with `fleet` imported. */
export async function testServer(
  storage: Storage,
  fleet: Fleet,
  options: { config?: Partial<ServerConfig>; logger?: any; importFleet?: boolean; token?: boolean } = {},
): Promise<TestServer> {
  if (options.importFleet !== false) {
    await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
  }
  const clock = { now: Date.UTC(2026, 10, 27, 12, 0, 0) };
  const app = await buildServer({
    config: makeConfig({ logLevel: 'silent', rateLimit: NO_RATE_LIMIT, ...options.config }),
    ingestKeys: [fleet.ingest.privateFile],
    storage,
    now: () => clock.now,
    logger: options.logger ?? false,
  });
  // A storage that refuses every write (a failure test) gets no token.
  const { token, auth } = options.token === false ? { token: '', auth: { authorization: '' } } : await readToken(storage);
  return {
    app,
    storage,
    fleet,
    clock,
    token,
    auth,
    post: async (payload) => {
      const r = await app.inject({ method: 'POST', url: '/v1/uplink', payload: payload as object });
      let json: unknown;
      try {
        json = r.json();
      } catch {
        json = r.body;
      }
      return { status: r.statusCode, json, headers: r.headers };
    },
    close: () => app.close(),
  };
}

/** What a describe block's tests share: a fresh database, its storage, and an in-process server with a fleet imported. */
export interface ServerFixture {
  db: TestDb;
  storage: Storage;
  fleet: Fleet;
  s: TestServer;
}

/** A fresh `backend` database and a fleet of `devices` imported into an in-process server (testServer's defaults). */
export async function openServerFixture(backend: Backend, devices = 24): Promise<ServerFixture> {
  const f: Partial<ServerFixture> = {};
  try {
    f.db = await testDb(backend);
    f.storage = await f.db.open();
    f.fleet = makeFleet(devices);
    f.s = await testServer(f.storage, f.fleet);
    return f as ServerFixture;
  } catch (e) {
    await closeServerFixture(f);
    throw e;
  }
}

/** Closes whatever part of a fixture was opened (server, storage), then drops its database. */
export async function closeServerFixture(f: Partial<Pick<ServerFixture, 'db' | 'storage' | 's'>>): Promise<void> {
  await f.s?.close();
  await f.storage?.close();
  await f.db?.drop();
}
