// A real ingest server for relay tests: key files on disk as an operator has
// them, SQLite in a temporary directory, real HTTP on 127.0.0.1, and a way
// to stop it and start it again on the same database and port.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKeyFile, newFactoryKey, newIngestKey, type KeyFile } from '../../protocol/index.js';
import { importManifest, makeConfig, startServer, type RunningServer, type ServerConfig } from '../../server/index.js';

export interface FleetKeySet {
  ingest: { privateFile: KeyFile; publicFile: KeyFile };
  factory: { privateFile: KeyFile; publicFile: KeyFile };
}

export function newKeySet(): FleetKeySet {
  return { ingest: newIngestKey(), factory: newFactoryKey() };
}

export class IngestServer {
  readonly dir: string;
  readonly db: string;
  readonly keys: FleetKeySet;
  readonly #keyPath: string;
  #running: RunningServer | undefined;
  #port = 0;
  starts = 0;

  constructor(keys: FleetKeySet, dir = mkdtempSync(join(tmpdir(), 'sealpost-relay-'))) {
    this.dir = dir;
    this.keys = keys;
    this.db = join(dir, 'sealpost.db');
    this.#keyPath = join(dir, `ingest-${keys.ingest.privateFile.id}.key`);
    writeFileSync(this.#keyPath, encodeKeyFile(keys.ingest.privateFile), { mode: 0o600 });
    chmodSync(this.#keyPath, 0o600);
  }

  get running(): RunningServer {
    if (!this.#running) throw new Error('ingest server is not running');
    return this.#running;
  }

  get url(): string {
    return this.running.url;
  }

  /** Starts on the database file; on the port of the previous start when there was one. */
  async start(overrides: Partial<ServerConfig> = {}): Promise<string> {
    const config = makeConfig({
      db: this.db,
      listen: { host: '127.0.0.1', port: this.#port },
      ingestKeys: [this.#keyPath],
      logLevel: 'silent',
      ...overrides,
    });
    this.#running = await startServer(config, { logger: false });
    this.#port = Number(new URL(this.#running.url).port);
    this.starts++;
    return this.#running.url;
  }

  async import(manifest: string): Promise<void> {
    await importManifest(this.running.app.storage, manifest, {
      trusted: [this.keys.factory.publicFile],
      ingestKeyIds: [this.keys.ingest.privateFile.id],
    });
  }

  async stop(): Promise<void> {
    const r = this.#running;
    this.#running = undefined;
    await r?.close();
  }
}
