// PostgreSQL backend (`pg`): for several stateless ingest nodes on one
// database. Nothing an ingest decision depends on lives in a node's memory
// (device keys are a cache of a pure function of the row; the key directory,
// key-directory.ts, is a copy of key rows that a revoke's NOTIFY clears and
// whose staleness can only make frames fail: what is stored is decided on
// the rows locked in the transaction), inserts are
// idempotent (ON CONFLICT DO NOTHING on (serial, counter)), and a request
// that stores frames first locks the rows of their devices (SELECT ... FOR
// UPDATE, in serial order so two requests never wait on each other in a
// cycle; deviceKeyRows, the read before, takes no lock). The settled
// watermark, gaps and boot estimates of one device are therefore computed by
// one transaction at a time, whichever node runs it, from committed data
// (READ COMMITTED: each statement after the lock sees what the previous
// holder committed).
//
// The URL may carry `?schema=NAME` (a sealpost extension, removed before the
// URL reaches `pg`): the tables then live in that schema, created if needed.
//
// Reads outside a transaction never use the ingest pool: the read API's
// pages run on a read worker thread (server/storage/read-workers.ts) with a
// pool of its own (`readPoolSize`, config pg_read_pool_size), so 48 clients
// paging through readings wait for each other, never for the connections or
// the event loop that uploads need; point lookups (a device before its
// readings) use a second small pool here (docs/server.md, "Reads").
import pg from 'pg';
import { encodePage } from '../reads/wire.js';
import { ReadWorkers } from './read-workers.js';
import { DEFAULT_KEY_DIRECTORY, KeyDirectory } from './key-directory.js';
import { MIGRATIONS } from './migrations.js';
import { PostgresEpochs, type EpochStore } from './epochs.js';
import { INGEST_WRITE, NotReadAhead, ReadAheadTx, readAheadQuery } from './postgres-ingest.js';
import { batchFromRow, keyRowsFromText, keyRowsPageQuery, keyRowsQuery, deviceFromRow, frameFromRow, gapFromRow, readingFromRow, summaryFromRow, tokenFromRow, type Row } from './rows.js';

/** A request's key rows as two text values (rows.ts, keyRowsQuery). */
const KEY_ROWS_ANY = keyRowsQuery('postgres', 'FROM devices WHERE serial = ANY($1::text[])');
/** The key directory's load at start, a page of serials after $1 (key-directory.ts). */
const KEY_ROWS_PAGE = keyRowsPageQuery('postgres', 'FROM (SELECT * FROM devices WHERE serial > $1 AND keys_wrapped IS NOT NULL ORDER BY serial LIMIT $2) AS devices');
/**
 * The channel on which a revoke tells every node to forget the device's held
 * key row (key-directory.ts); the payload is "schema serial" (schema empty
 * for the default one), or "schema *" to forget every row.
 */
const KEY_ROWS_CHANNEL = 'sealpost_key_rows';
import type {
  Anchor,
  BatchRow,
  BootStart,
  DeviceKeyRow,
  DeviceRow,
  DeviceSummary,
  DevicesQuery,
  EncodedPage,
  GapRow,
  GapsQuery,
  IngestPlan,
  NewDevice,
  NewFrame,
  NewGap,
  NewReading,
  NewToken,
  PageRequest,
  PendingSample,
  PruneRequest,
  PruneResult,
  Range,
  ReadingsQuery,
  ResolvedSample,
  Storage,
  StoredFrame,
  StoredReading,
  TokenInfo,
  TimeSource,
  Tx,
} from './types.js';

type Queryable = { query: (text: string, values?: unknown[]) => Promise<pg.QueryResult> };

// int8 (COUNT, BIGINT columns) and numeric (SUM of BIGINT) as JS numbers:
// every value sealpost stores is below 2^53 (counters < 2^32, times in ms).
const INT8 = 20;
const NUMERIC = 1700;
const TYPES = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8 || oid === NUMERIC) return (v: string) => (v === null ? null : Number(v));
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as unknown as pg.CustomTypesConfig;

/** Codes of transaction failures that are safe to retry from the start. */
const RETRYABLE = new Set(['40001', '40P01']);
/**
 * A lost connection: the server ended it (admin_shutdown 57P01, e.g.
 * pg_terminate_backend; crash_shutdown 57P02; connection exceptions 08xxx),
 * or the socket died. Also retried from the start on a fresh connection:
 * even when the loss hit the COMMIT and the outcome is unknown, a request's
 * transaction is idempotent (frames ON CONFLICT DO NOTHING, readings only
 * for frames this attempt inserted, settle recomputed from committed rows),
 * so a second run that finds the first one committed stores nothing twice
 * and acks from what is committed (docs/server.md, "Several nodes").
 */
function connectionLost(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  if (code !== undefined && (code.startsWith('08') || code === '57P01' || code === '57P02' || code === 'ECONNRESET' || code === 'EPIPE')) return true;
  const message = (e as Error).message ?? '';
  return /^Connection terminated( unexpectedly)?$|^Client has encountered a connection error and is not queryable$/.test(message);
}
const MIGRATION_LOCK = 0x5ea1_0001;

const buf = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

export interface PostgresOptions {
  poolSize?: number;
  /** Connections of the read pool (default 4). */
  readPoolSize?: number;
  /** Read worker threads (default 1); 0 reads on this thread. */
  readWorkers?: number;
  /** Open for reads only: no migrations (a read worker; the server migrated). */
  readOnly?: boolean;
  /** Key rows held in memory (key-directory.ts; default DEFAULT_KEY_DIRECTORY); 0: none, every request reads them. */
  keyDirectory?: number;
  onError?: (error: Error) => void;
  /** Told about settings that weaken what an ack promises. */
  onWarning?: (message: string) => void;
}

/**
 * The URL's sealpost parameters: `schema` (the tables' schema) and
 * `application_name` (what pg_stat_activity shows for this node's pools,
 * default "sealpost"; the read pool adds "-read"), both removed before the
 * URL reaches `pg`. Naming each node (`?application_name=ingest-a`) lets an
 * operator of several nodes tell their connections apart.
 */
/**
 * A client checked out of a pool, with an 'error' listener while it is out.
 * pg's pool listens for errors only on idle clients: a connection the server
 * ends while a transaction holds it (pg_terminate_backend, a database
 * restart) makes the client emit 'error' between two queries, and without a
 * listener that kills the whole process. Here it only marks the client lost:
 * the next query fails, and the client is destroyed on release.
 */
async function checkout(pool: pg.Pool): Promise<{ client: pg.PoolClient; lost: () => boolean; release: (broken: boolean) => void }> {
  const client = await pool.connect();
  let lost = false;
  const onError = () => {
    lost = true;
  };
  client.on('error', onError);
  return {
    client,
    lost: () => lost,
    release: (broken) => {
      client.removeListener('error', onError);
      client.release(broken || lost);
    },
  };
}

export function parsePostgresUrl(url: string): { connectionString: string; schema: string | undefined; applicationName: string } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? undefined;
  const applicationName = u.searchParams.get('application_name') ?? 'sealpost';
  u.searchParams.delete('schema');
  u.searchParams.delete('application_name');
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`database URL schema "${schema.slice(0, 70)}" must be a lower-case SQL identifier (a-z, 0-9, _)`);
  }
  if (!/^[A-Za-z0-9._-]{1,50}$/.test(applicationName)) {
    throw new Error(`database URL application_name "${applicationName.slice(0, 70)}" must be 1 to 50 characters A-Z a-z 0-9 . _ -`);
  }
  return { connectionString: u.toString(), schema, applicationName };
}

export class PostgresStorage implements Storage {
  readonly backend = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly readPool: pg.Pool;
  private readonly schema: string | undefined;
  /** The read workers, or null when reads run on this thread. */
  readonly readWorkers: ReadWorkers | null;
  /** Key renewal's epoch rows (epochs.ts). */
  readonly epochs: EpochStore;
  /** The key directory (key-directory.ts), or null; used only while `listener` listens for revokes. */
  private readonly directory: KeyDirectory | null;
  private listener: pg.Client | null = null;
  private listening = false;
  private listenRetry: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly listenSettings: pg.ClientConfig;

  private constructor(pool: pg.Pool, readPool: pg.Pool, schema: string | undefined, readWorkers: ReadWorkers | null, directory: KeyDirectory | null, listenSettings: pg.ClientConfig) {
    this.pool = pool;
    this.readPool = readPool;
    this.schema = schema;
    this.readWorkers = readWorkers;
    this.epochs = new PostgresEpochs(pool);
    this.directory = directory;
    this.listenSettings = listenSettings;
  }

  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresStorage> {
    const { connectionString, schema, applicationName } = parsePostgresUrl(url);
    const settings = { connectionString, types: TYPES, ...(schema ? { options: `-c search_path=${schema}` } : {}) };
    // The names show in pg_stat_activity, so an operator can tell the two pools apart.
    const pool = new pg.Pool({ ...settings, max: options.poolSize ?? 10, application_name: applicationName });
    const readPool = new pg.Pool({ ...settings, max: options.readPoolSize ?? 4, application_name: `${applicationName}-read` });
    pool.on('error', (e) => options.onError?.(e));
    readPool.on('error', (e) => options.onError?.(e));
    const workers = options.readWorkers ?? 1;
    const readWorkers =
      workers > 0
        ? new ReadWorkers(url, { size: workers, readPoolSize: options.readPoolSize ?? 4, ...(options.onError ? { onError: options.onError } : {}) })
        : null;
    const held = options.readOnly ? 0 : (options.keyDirectory ?? DEFAULT_KEY_DIRECTORY);
    const directory = held > 0 ? new KeyDirectory(held) : null;
    const storage = new PostgresStorage(pool, readPool, schema, readWorkers, directory, { connectionString, application_name: `${applicationName}-listen` });
    if (options.readOnly) return storage;
    try {
      await storage.migrate();
      // An ack promises the frames are durable: with synchronous_commit off a
      // crash of the database host could lose commits that were acknowledged.
      const sc = (await pool.query('SHOW synchronous_commit')).rows[0]?.synchronous_commit;
      if (sc === 'off') options.onWarning?.('PostgreSQL synchronous_commit is off: acknowledged frames can be lost if the database host crashes; set it to on');
    } catch (e) {
      await readWorkers?.close();
      await Promise.all([pool.end(), readPool.end()]);
      throw e;
    }
    return storage;
  }

  private async migrate(): Promise<void> {
    const { client, release } = await checkout(this.pool);
    let broken = false;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      if (this.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      const current = Number((await client.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations')).rows[0].v);
      const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
      if (current > latest) {
        throw new Error(`database schema is at version ${current}, newer than this sealpost knows (${latest}): upgrade sealpost`);
      }
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        await client.query(m.postgres);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw e;
    } finally {
      release(broken);
    }
  }

  private makeTx(c: Queryable): Tx {
    const rows = async (text: string, values?: unknown[]) => (await c.query(text, values)).rows as Row[];
    return {
      lockDevices: async (serials) =>
        serials.length === 0 ? [] : (await rows('SELECT * FROM devices WHERE serial = ANY($1::text[]) ORDER BY serial FOR UPDATE', [serials])).map(deviceFromRow),
      insertFrames: async (frames: NewFrame[]) => {
        if (frames.length === 0) return [];
        const inserted = await rows(
          `INSERT INTO frames (serial, counter, frame, type, content, relay, relay_time, rx, received)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::smallint[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[])
           ON CONFLICT (serial, counter) DO NOTHING RETURNING serial, counter`,
          [
            frames.map((f) => f.serial),
            frames.map((f) => f.counter),
            frames.map((f) => buf(f.frame)),
            frames.map((f) => f.type),
            frames.map((f) => f.content),
            frames.map((f) => f.relay),
            frames.map((f) => f.relayTime),
            frames.map((f) => f.rx),
            frames.map((f) => f.received),
          ],
        );
        const set = new Set(inserted.map((r) => `${r.serial as string}\u0000${r.counter as number}`));
        return frames.map((f) => set.has(`${f.serial}\u0000${f.counter}`));
      },
      frameBytes: async (serial, counters) => {
        const out = new Map<number, Uint8Array>();
        if (counters.length === 0) return out;
        for (const r of await rows('SELECT counter, frame FROM frames WHERE serial = $1 AND counter = ANY($2::bigint[])', [serial, counters])) {
          out.set(r.counter as number, new Uint8Array(r.frame as Buffer));
        }
        return out;
      },
      insertAnchors: async (serial, anchors: Anchor[]) => {
        if (anchors.length === 0) return;
        await c.query(
          `INSERT INTO anchors (serial, counter, boot, uptime, reason)
           SELECT $1, * FROM unnest($2::bigint[], $3::int[], $4::bigint[], $5::smallint[]) ON CONFLICT DO NOTHING`,
          [serial, anchors.map((a) => a.counter), anchors.map((a) => a.boot), anchors.map((a) => a.uptime), anchors.map((a) => a.reason)],
        );
      },
      anchorsBefore: async (serial, below, limit) =>
        (await rows('SELECT counter, boot, uptime, reason FROM anchors WHERE serial = $1 AND counter < $2 ORDER BY counter DESC LIMIT $3', [serial, below, limit])) as unknown as Anchor[],
      anchorFor: async (serial, below, boot8) =>
        (
          await rows('SELECT counter, boot, uptime, reason FROM anchors WHERE serial = $1 AND counter < $2 AND boot % 256 = $3 ORDER BY counter DESC LIMIT 1', [
            serial,
            below,
            boot8,
          ])
        )[0] as unknown as Anchor | undefined,
      pendingSamples: async (serial, boot8, above) =>
        (await rows(
          `SELECT r.counter AS counter, MIN(r.uptime24) AS uptime24, MIN(r.bound) AS bound, MIN(f.rx) AS rx FROM readings r
           JOIN frames f ON f.serial = r.serial AND f.counter = r.counter
           WHERE r.serial = $1 AND r.boot IS NULL AND r.boot8 = $2 AND r.counter > $3 GROUP BY r.counter ORDER BY r.counter`,
          [serial, boot8, above],
        )) as unknown as PendingSample[],
      resolveSamples: async (serial, resolved: ResolvedSample[]) => {
        if (resolved.length === 0) return;
        await c.query(
          `UPDATE readings r SET boot = u.boot, uptime = u.uptime, time = u.time, time_source = u.time_source
           FROM unnest($2::bigint[], $3::int[], $4::bigint[], $5::bigint[], $6::text[]) AS u(counter, boot, uptime, time, time_source)
           WHERE r.serial = $1 AND r.counter = u.counter`,
          [
            serial,
            resolved.map((r) => r.counter),
            resolved.map((r) => r.boot),
            resolved.map((r) => r.uptime),
            resolved.map((r) => r.time),
            resolved.map((r) => r.timeSource),
          ],
        );
      },
      bootStarts: async (serial, boots) => {
        const out = new Map<number, BootStart>();
        if (boots.length === 0) return out;
        for (const r of await rows('SELECT boot, start, time_source FROM boots WHERE serial = $1 AND boot = ANY($2::int[])', [serial, boots])) {
          out.set(r.boot as number, { start: r.start as number, source: r.time_source as TimeSource });
        }
        return out;
      },
      saveBoot: async (serial, boot, start, anchorCounter, isNew) => {
        if (isNew) {
          await c.query('INSERT INTO boots (serial, boot, start, anchor_counter, time_source) VALUES ($1, $2, $3, $4, $5)', [
            serial,
            boot,
            start.start,
            anchorCounter,
            start.source,
          ]);
        } else await c.query('UPDATE boots SET start = $1, time_source = $2 WHERE serial = $3 AND boot = $4', [start.start, start.source, serial, boot]);
      },
      retimeBoot: async (serial, boot, start) => {
        await c.query('UPDATE readings SET time = $1 + uptime * 1000, time_source = $2 WHERE serial = $3 AND boot = $4', [start.start, start.source, serial, boot]);
      },
      insertReadings: async (r: NewReading[]) => {
        if (r.length === 0) return;
        await c.query(
          `INSERT INTO readings (serial, counter, idx, channel, name, unit, value, boot8, uptime24, bound, boot, uptime, time, time_source)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::smallint[], $4::smallint[], $5::text[], $6::text[], $7::float8[],
             $8::smallint[], $9::int[], $10::bigint[], $11::int[], $12::bigint[], $13::bigint[], $14::text[])
           ON CONFLICT DO NOTHING`,
          [
            r.map((x) => x.serial),
            r.map((x) => x.counter),
            r.map((x) => x.idx),
            r.map((x) => x.channel),
            r.map((x) => x.name),
            r.map((x) => x.unit),
            r.map((x) => x.value),
            r.map((x) => x.boot8),
            r.map((x) => x.uptime24),
            r.map((x) => x.bound),
            r.map((x) => x.boot),
            r.map((x) => x.uptime),
            r.map((x) => x.time),
            r.map((x) => x.timeSource),
          ],
        );
      },
      storedRanges: async (serial, lo, hi) =>
        (await rows(
          `SELECT MIN(counter) AS first, MAX(counter) AS last FROM (
             SELECT counter, counter - ROW_NUMBER() OVER (ORDER BY counter) AS grp
             FROM frames WHERE serial = $1 AND counter BETWEEN $2 AND $3
           ) t GROUP BY grp ORDER BY first`,
          [serial, lo, hi],
        )) as unknown as Range[],
      gapsOverlapping: async (serial, lo, hi) =>
        (await rows('SELECT * FROM gaps WHERE serial = $1 AND first <= $2 AND first + count - 1 >= $3 ORDER BY first', [serial, hi, lo])).map(gapFromRow),
      deleteGaps: async (ids) => {
        if (ids.length > 0) await c.query('DELETE FROM gaps WHERE id = ANY($1::bigint[])', [ids]);
      },
      insertGaps: async (g: NewGap[]) => {
        if (g.length === 0) return;
        await c.query(
          `INSERT INTO gaps (serial, first, count, kind, detected_at)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[])`,
          [g.map((x) => x.serial), g.map((x) => x.first), g.map((x) => x.count), g.map((x) => x.kind), g.map((x) => x.detectedAt)],
        );
      },
      updateDevice: async (d) => {
        await c.query(
          `UPDATE devices SET frames = $1, last_seen = $2, settled = $3, max_counter = $4, boot_floor = $5, gap_hi = $6,
           battery = $7, battery_counter = $8 WHERE serial = $9`,
          [d.frames, d.lastSeen, d.settled, d.maxCounter, d.bootFloor, d.gapHi, d.battery, d.batteryCounter, d.serial],
        );
      },
      batch: async (batch) => {
        const r = (await rows('SELECT * FROM batches WHERE batch = $1', [batch]))[0];
        return r ? batchFromRow(r) : undefined;
      },
      devicesBySerial: async (serials) =>
        serials.length === 0 ? [] : (await rows('SELECT * FROM devices WHERE serial = ANY($1::text[]) ORDER BY serial', [serials])).map(deviceFromRow),
      insertBatch: async (b: BatchRow) => {
        await c.query(
          `INSERT INTO batches (batch, factory_key_id, ingest_key_id, board, frame_size, created, manifest_sha256, devices, imported_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [b.batch, b.factoryKeyId, b.ingestKeyId, b.board, b.frameSize, b.created, b.manifestSha256, b.devices, b.importedAt],
        );
      },
      insertDevices: async (d: NewDevice[]) => {
        if (d.length === 0) return;
        await c.query(
          `INSERT INTO devices (serial, enc, ingest_key_id, board, frame_size, batch, registered_at, keys_wrapped)
           SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::int[], $6::text[], $7::bigint[], $8::bytea[])`,
          [
            d.map((x) => x.serial),
            d.map((x) => buf(x.enc)),
            d.map((x) => x.ingestKeyId),
            d.map((x) => x.board),
            d.map((x) => x.frameSize),
            d.map((x) => x.batch),
            d.map((x) => x.registeredAt),
            d.map((x) => (x.keysWrapped ? buf(x.keysWrapped) : null)),
          ],
        );
      },
      setStatus: async (serial, status, at) => {
        await c.query('UPDATE devices SET status = $1, revoked_at = $2 WHERE serial = $3', [status, status === 'revoked' ? at : null, serial]);
        // Every node forgets its held row when this commits (nothing is sent on a rollback); this one at once too.
        await c.query('SELECT pg_notify($1, $2)', [KEY_ROWS_CHANNEL, `${this.schema ?? ''} ${serial}`]);
        this.directory?.forget(serial);
      },
      unwrappedDevices: async (ingestKeyIds, after, limit) =>
        ingestKeyIds.length === 0
          ? []
          : (
              await rows(
                'SELECT serial, enc, ingest_key_id FROM devices WHERE keys_wrapped IS NULL AND serial > $2 AND ingest_key_id = ANY($1::text[]) ORDER BY serial LIMIT $3',
                [ingestKeyIds, after, limit],
              )
            ).map((r) => ({ serial: r.serial as string, enc: new Uint8Array(r.enc as Buffer), ingestKeyId: r.ingest_key_id as string })),
      setKeysWrapped: async (w) => {
        if (w.length === 0) return;
        await c.query(
          `UPDATE devices d SET keys_wrapped = u.k FROM unnest($1::text[], $2::bytea[]) AS u(serial, k)
           WHERE d.serial = u.serial AND d.keys_wrapped IS NULL`,
          [w.map((x) => x.serial), w.map((x) => buf(x.keysWrapped))],
        );
      },
    };
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { client, lost, release } = await checkout(this.pool);
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await fn(this.makeTx(client));
        await client.query('COMMIT');
        return result;
      } catch (e) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        const code = (e as { code?: string }).code;
        if (attempt < 3 && ((code !== undefined && RETRYABLE.has(code)) || connectionLost(e) || lost())) {
          if (connectionLost(e) || lost()) broken = true;
          continue;
        }
        throw e;
      } finally {
        release(broken);
      }
    }
  }

  /**
   * How this node's ingest transactions ran (docs/server.md, "One round trip
   * per write"): read ahead and written in one call; run again under the row
   * locks because they needed state not read ahead, or because a row changed
   * (or a frame was stored) between the read and the write.
   */
  readonly ingestStats = { readAhead: 0, notReadAhead: 0, changed: 0 };

  async ingestTransaction<T>(plan: IngestPlan, fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (!this.directory) return this.ingestTransactionRun(plan, fn);
    // Settled changed: the held rows of these devices are read again once it committed (key-directory.ts).
    try {
      return await this.ingestTransactionRun(plan, fn);
    } finally {
      for (const f of plan.frames) this.directory.forget(f.serial);
    }
  }

  private async ingestTransactionRun<T>(plan: IngestPlan, fn: (tx: Tx) => Promise<T>): Promise<T> {
    let rows: Row[];
    try {
      rows = (await this.pool.query(readAheadQuery(plan))).rows as Row[];
    } catch (e) {
      if (!connectionLost(e)) throw e;
      return this.transaction(fn);
    }
    const tx = new ReadAheadTx(rows);
    let result: T;
    try {
      result = await fn(tx);
    } catch (e) {
      if (!(e instanceof NotReadAhead)) throw e;
      this.ingestStats.notReadAhead++;
      return this.transaction(fn);
    }
    try {
      // Autocommit: pg resolves the call on ReadyForQuery, after its transaction committed.
      const ok = (await this.pool.query({ name: 'sealpost_ingest_write', text: INGEST_WRITE, values: tx.args() })).rows[0]?.ok;
      if (ok === true) {
        this.ingestStats.readAhead++;
        return result;
      }
    } catch (e) {
      // A deadlock, a frame stored meanwhile (serialization_failure), a lost connection
      // (the outcome unknown: the locked run finds what committed, see connectionLost).
      const code = (e as { code?: string }).code;
      if (!(code !== undefined && RETRYABLE.has(code)) && !connectionLost(e)) throw e;
    }
    this.ingestStats.changed++;
    return this.transaction(fn);
  }

  /** A read outside any transaction, on the read pool. */
  private async all(text: string, values?: unknown[]): Promise<Row[]> {
    return (await this.readPool.query(text, values)).rows as Row[];
  }

  /** On the ingest pool: an upload's first statement never queues behind the read API's. */
  async deviceKeyRows(serials: string[]): Promise<DeviceKeyRow[]> {
    if (serials.length === 0) return [];
    const dir = this.directory;
    if (!dir) return this.keyRowsFromDb(serials);
    // Without a live LISTEN a revoke on another node could go unheard: read every row then.
    if (!this.listening) {
      if (!this.listenRetry) void this.listen(); // else a retry is due within a second
      return this.keyRowsFromDb(serials);
    }
    return dir.rows(
      serials,
      (missing) => this.keyRowsFromDb(missing),
      () => this.listening,
    );
  }

  /**
   * Fills the key directory from the registry, by pages of serials, until it
   * is full (server start, after the keys are wrapped), once LISTEN for
   * revokes is in place. Returns the rows held.
   */
  async loadKeyDirectory(page = 5000): Promise<number> {
    const dir = this.directory;
    if (!dir) return 0;
    await this.listen();
    let after = '';
    while (this.listening && dir.size < dir.capacity) {
      const epoch = dir.epoch;
      const r = (await this.pool.query(KEY_ROWS_PAGE, [after, Math.min(page, dir.capacity - dir.size)])).rows[0] as { t: string | null; b: Uint8Array | null; last: string | null } | undefined;
      const rows = keyRowsFromText(r?.t ?? null, r?.b ?? null);
      if (rows.length === 0 || !r?.last) break;
      dir.admit(rows, epoch); // a page that overlapped a revoke is not kept: its rows are read on demand
      after = r.last;
    }
    return dir.size;
  }

  /** LISTEN for revokes on a connection of its own; while it is down the directory is empty and unused. */
  private listen(): Promise<void> {
    if (this.listener || this.closed) return Promise.resolve();
    const client = new pg.Client(this.listenSettings);
    this.listener = client;
    const down = () => {
      if (this.listener !== client) return;
      this.listener = null;
      this.listening = false;
      this.directory?.clear();
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      if (!this.closed && !this.listenRetry) {
        this.listenRetry = setTimeout(() => {
          this.listenRetry = undefined;
          void this.listen();
        }, 1000);
        this.listenRetry.unref();
      }
    };
    client.on('error', down);
    client.on('end', down);
    client.on('notification', (n) => {
      const payload = n.payload ?? '';
      const space = payload.indexOf(' ');
      if (space < 0 || payload.slice(0, space) !== (this.schema ?? '')) return;
      const serial = payload.slice(space + 1);
      if (serial === '*') this.directory?.clear();
      else this.directory?.forget(serial);
    });
    return client
      .connect()
      .then(() => client.query(`LISTEN ${KEY_ROWS_CHANNEL}`))
      .then(() => {
        if (this.listener !== client) return;
        this.directory?.clear();
        this.listening = true;
      })
      .catch(() => down());
  }

  private async keyRowsFromDb(serials: string[]): Promise<DeviceKeyRow[]> {
    // A named statement, parsed and described once per connection: unnamed, pg sent the text and
    // read the row description again each time, about 40 us of the node's CPU per request of 100 serials.
    const query = { name: 'sealpost_key_rows', text: KEY_ROWS_ANY, values: [serials] };
    let r: pg.QueryResult;
    try {
      r = await this.pool.query(query);
    } catch (e) {
      if (!connectionLost(e)) throw e;
      r = await this.pool.query(query); // once more, on a fresh connection
    }
    const row = r.rows[0] as { t: string | null; b: Uint8Array | null } | undefined;
    return keyRowsFromText(row?.t ?? null, row?.b ?? null);
  }

  async device(serial: string): Promise<DeviceRow | undefined> {
    const r = (await this.all('SELECT * FROM devices WHERE serial = $1', [serial]))[0];
    return r ? deviceFromRow(r) : undefined;
  }

  async devices(serial?: string): Promise<DeviceSummary[]> {
    if (serial !== undefined) {
      return (
        await this.all(
          `SELECT d.*, (SELECT COUNT(*) FROM gaps WHERE serial = d.serial) AS gaps,
           (SELECT SUM(count) FROM gaps WHERE serial = d.serial) AS lost FROM devices d WHERE d.serial = $1`,
          [serial],
        )
      ).map(summaryFromRow);
    }
    return (
      await this.all(
        `SELECT d.*, g.n AS gaps, g.lost AS lost FROM devices d
         LEFT JOIN (SELECT serial, COUNT(*) AS n, SUM(count) AS lost FROM gaps GROUP BY serial) g ON g.serial = d.serial
         ORDER BY d.serial`,
      )
    ).map(summaryFromRow);
  }

  async devicesPage(q: DevicesQuery): Promise<DeviceSummary[]> {
    if (this.readWorkers) return this.readWorkers.run('devicesPage', [q]);
    return (
      await this.all(
        `SELECT d.serial, d.board, d.batch, d.status, d.frame_size, d.ingest_key_id, d.registered_at, d.frames, d.last_seen, d.settled, d.battery,
         (SELECT COUNT(*) FROM gaps WHERE serial = d.serial) AS gaps, (SELECT SUM(count) FROM gaps WHERE serial = d.serial) AS lost,
         (SELECT COALESCE(MAX(epoch), 0) FROM device_epochs WHERE serial = d.serial AND state = 'committed') AS epoch,
  (SELECT CASE WHEN SUM(CASE WHEN state = 'frozen' THEN 1 ELSE 0 END) > 0 THEN 'frozen' WHEN SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) > 0 THEN 'pending'
    WHEN COUNT(*) > 0 THEN 'committed' ELSE 'none' END FROM device_epochs WHERE serial = d.serial) AS renewal
         FROM devices d WHERE d.serial > $1 ORDER BY d.serial LIMIT $2`,
        [q.after ?? '', q.limit],
      )
    ).map(summaryFromRow);
  }

  async readings(serial: string, q: ReadingsQuery): Promise<StoredReading[]> {
    // The row comparison is an index condition on the primary key (serial,
    // counter, idx): a page starts at its cursor and reads `limit` rows in
    // order (EXPLAIN: Index Scan using readings_pkey). With from/to the
    // planner may pick readings_by_time instead when that range is narrow.
    if (this.readWorkers) return this.readWorkers.run('readings', [serial, q]);
    const where = ['serial = $1', '(counter, idx) > ($2, $3)'];
    const args: unknown[] = [serial, q.after?.counter ?? -1, q.after?.idx ?? -1];
    if (q.from !== undefined) {
      args.push(q.from);
      where.push(`time >= $${args.length}`);
    }
    if (q.to !== undefined) {
      args.push(q.to);
      where.push(`time <= $${args.length}`);
    }
    args.push(q.limit);
    return (
      await this.all(
        `SELECT serial, counter, idx, channel, name, unit, value, boot, uptime, time, time_source FROM readings
         WHERE ${where.join(' AND ')} ORDER BY counter, idx LIMIT $${args.length}`,
        args,
      )
    ).map(readingFromRow);
  }

  async gaps(serial: string, q?: GapsQuery): Promise<GapRow[]> {
    if (q === undefined) return (await this.all('SELECT * FROM gaps WHERE serial = $1 ORDER BY first, id', [serial])).map(gapFromRow);
    if (this.readWorkers) return this.readWorkers.run('gaps', [serial, q]);
    return (
      await this.all('SELECT * FROM gaps WHERE serial = $1 AND (first, id) > ($2, $3) ORDER BY first, id LIMIT $4', [
        serial,
        q.after?.first ?? -1,
        q.after?.id ?? -1,
        q.limit,
      ])
    ).map(gapFromRow);
  }

  async readPage(request: PageRequest): Promise<EncodedPage> {
    if (this.readWorkers) return this.readWorkers.run('page', [request]);
    return encodePage(this, request);
  }

  async frames(serial: string): Promise<StoredFrame[]> {
    return (await this.all('SELECT * FROM frames WHERE serial = $1 ORDER BY counter', [serial])).map(frameFromRow);
  }

  async batches(): Promise<BatchRow[]> {
    return (await this.all('SELECT * FROM batches ORDER BY batch')).map(batchFromRow);
  }

  async insertToken(t: NewToken): Promise<boolean> {
    const r = await this.pool.query('INSERT INTO api_tokens (name, role, hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING', [
      t.name,
      t.role,
      buf(t.hash),
      t.createdAt,
    ]);
    return r.rowCount === 1;
  }

  async tokens(): Promise<TokenInfo[]> {
    return (await this.all('SELECT name, role, created_at, last_used FROM api_tokens ORDER BY name COLLATE "C"')).map(tokenFromRow);
  }

  async tokenByHash(hash: Uint8Array): Promise<TokenInfo | undefined> {
    const r = (await this.all('SELECT name, role, created_at, last_used FROM api_tokens WHERE hash = $1', [buf(hash)]))[0];
    return r ? tokenFromRow(r) : undefined;
  }

  async deleteToken(name: string): Promise<boolean> {
    return (await this.pool.query('DELETE FROM api_tokens WHERE name = $1', [name])).rowCount === 1;
  }

  async touchToken(name: string, at: number): Promise<void> {
    await this.pool.query('UPDATE api_tokens SET last_used = $1 WHERE name = $2 AND (last_used IS NULL OR last_used < $1)', [at, name]);
  }

  async pruneReadings(q: PruneRequest): Promise<PruneResult> {
    const window = (await this.pool.query('SELECT serial FROM devices WHERE serial > $1 ORDER BY serial LIMIT $2', [q.after, q.devices])).rows.map(
      (r) => r.serial as string,
    );
    if (window.length === 0) return { deleted: 0, through: null };
    // One statement, so one short transaction. SKIP LOCKED: a reading an
    // upload is re-timing right now is left for the next pass instead of
    // waited for, so retention never waits on ingest (and never deadlocks
    // with it); ingest waits at most for this statement's few ms on a row it
    // deletes. `serial = ANY` prunes the hash partitions and walks
    // readings_by_time (serial, time). The rows go by (tableoid, ctid), which
    // the lock keeps valid: a TID lookup per row whatever the backlog (a join
    // on the primary key made the planner hash every old reading of the
    // window's devices, 50 ms a batch with 8,000 of them, 400 ms with more).
    const r = await this.pool.query(
      `WITH doomed AS (
         SELECT tableoid AS t, ctid AS c FROM readings WHERE serial = ANY($1::text[]) AND time < $2 LIMIT $3 FOR UPDATE SKIP LOCKED
       )
       DELETE FROM readings r USING doomed d WHERE r.serial = ANY($1::text[]) AND r.tableoid = d.t AND r.ctid = d.c`,
      [window, q.before, q.limit],
    );
    return { deleted: r.rowCount ?? 0, through: window[window.length - 1]! };
  }

  async migrations(): Promise<number[]> {
    return (await this.all('SELECT version FROM schema_migrations ORDER BY version')).map((r) => Number(r.version));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.listenRetry);
    const listener = this.listener;
    this.listener = null;
    this.listening = false;
    await listener?.end().catch(() => undefined);
    await this.readWorkers?.close();
    await Promise.all([this.pool.end(), this.readPool.end()]);
  }
}
