// SQLite backend (better-sqlite3): the default, one file, one process.
//
// Durability (docs/server.md, "Durability"): WAL with synchronous=FULL, so a
// transaction is fsynced to the WAL before COMMIT returns, and the server
// sends an ack only after COMMIT returned. An ack therefore never covers a
// frame that a crash of the process, the OS or the power could take back.
// NORMAL would survive a killed process (the WAL is in the page cache) but
// not a power cut, and an ack lets the device delete its copy for good.
//
// Group commit: the fsync per COMMIT was the largest cost of ingest (a CPU
// profile of bench/ingest.ts put 37% of the server's time in BEGIN/COMMIT).
// Transactions requested in the same turn of the event loop run one after
// the other inside one SQLite transaction, each in its own SAVEPOINT (a
// failing one is rolled back alone), and are committed with one COMMIT; no
// caller's promise resolves before that COMMIT returned, so "ack only after
// commit" holds for every request of the group. And the fsync is off the
// event loop (issue #14, item 4; group-sync.ts): with the default
// sqlite_synchronous FULL, a file database runs SQLite at NORMAL (COMMIT
// writes the WAL without syncing it) and each caller's promise waits for an
// fsync of the WAL that started after its COMMIT, in libuv's thread pool,
// shared by every group committed meanwhile. An ack is as durable as under
// FULL, and the event loop goes on opening the next requests meanwhile;
// the transactions requested while an fsync runs wait for it to end and are
// then written as one group (they would wait for the next fsync anyway, and
// one transaction writes each page to the WAL once, not once per request).
// Checkpoints are off the event loop too (checkpointer.ts): a thread with its
// own connection copies the WAL back into the database when the group
// commits since the last one have written about 1,000 pages, and groups wait
// for it as they wait for an fsync, so the WAL restarts from its beginning
// after each checkpoint as it did when SQLite checkpointed inside COMMIT.
//
// better-sqlite3 is synchronous; the Tx methods return settled promises so
// the ingest algorithm is shared with the PostgreSQL backend. Groups run one
// at a time (SQLite has one writer anyway), and BEGIN IMMEDIATE plus
// busy_timeout let `sealpost registry` write while a server runs on the
// same file.
//
// Reads of the read API (readings, devices and gaps pages) run on read
// workers (server/storage/read-workers.ts): threads with their own read-only
// connections, so a large read never holds the event loop that answers
// uplinks. A `:memory:` database lives in this connection only and cannot
// be opened by another thread: it reads in-process (tests).
import Database from 'better-sqlite3';
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import { encodePage } from '../reads/wire.js';
import { ReadWorkers } from './read-workers.js';
import { DEFAULT_KEY_DIRECTORY, KeyDirectory } from './key-directory.js';
import { CHECKPOINT_PAGES, Checkpointer } from './checkpointer.js';
import { GroupSync, fileSync } from './group-sync.js';
import { MIGRATIONS } from './migrations.js';
import { SqliteEpochs, type EpochStore } from './epochs.js';
import { KEY_ROWS_INDEX, batchFromRow, deviceFromRow, frameFromRow, gapFromRow, keyRowsFromText, keyRowsPageQuery, keyRowsQuery, readingFromRow, summaryFromRow, tokenFromRow, type Row } from './rows.js';
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

type Db = Database.Database;
type Stmt = Database.Statement;

const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const ISLANDS = `
  SELECT MIN(counter) AS first, MAX(counter) AS last FROM (
    SELECT counter, counter - ROW_NUMBER() OVER (ORDER BY counter) AS grp
    FROM frames WHERE serial = ? AND counter BETWEEN ? AND ?
  ) t GROUP BY grp ORDER BY first`;

/** A transaction waiting for its group. */
interface Pending {
  fn: (tx: Tx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Database files are for the server's user only (issue #10, item 7): the
 * registry holds no secret, but frames, readings and relay metadata are the
 * fleet's data. SQLite creates its -wal and -shm files with the mode of the
 * database file (os_unix.c, findCreateFileMode), so creating that file 0600
 * before SQLite opens it covers all three; an existing file that group or
 * others can read is restricted, with a warning. In-memory and URI
 * databases are left alone.
 */
export function restrictDbFiles(path: string, warn: (message: string) => void): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  let fd: number;
  try {
    // 'a' creates the file if missing (with mode 0600) and never truncates.
    fd = openSync(path, 'a', 0o600);
  } catch {
    return; // better-sqlite3 reports the real problem (missing directory, permissions) next.
  }
  closeSync(fd);
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue;
    }
    if ((mode & 0o077) === 0) continue;
    try {
      chmodSync(file, mode & 0o700);
      warn(`database file ${file} was accessible to group or others (mode ${mode.toString(8).padStart(4, '0')}); restricted it to the owner (chmod 600)`);
    } catch (e) {
      warn(`database file ${file} is accessible to group or others (mode ${mode.toString(8).padStart(4, '0')}) and cannot be restricted (${(e as NodeJS.ErrnoException).code}); run: chmod 600 ${file}`);
    }
  }
}

export interface SqliteOptions {
  synchronous?: 'FULL' | 'NORMAL';
  readonly?: boolean;
  /** Read worker threads (default 1); 0 reads in-process. A `:memory:` database always reads in-process. */
  readWorkers?: number;
  /** Told when a read worker dies unexpectedly. */
  onError?: (error: Error) => void;
  /** Told when a database file had to be restricted to its owner (restrictDbFiles). */
  onWarning?: (message: string) => void;
  /** Key rows held in memory (key-directory.ts; default DEFAULT_KEY_DIRECTORY); 0: none, every request reads them. */
  keyDirectory?: number;
  /** Checkpoint the WAL in a thread (checkpointer.ts; default true for a file); false: SQLite's own, inside COMMIT. */
  checkpointThread?: boolean;
}

/** Columns of DeviceSummary: not enc or wrapped keys, which a listing never needs. */
const SUMMARY = `d.serial, d.board, d.batch, d.status, d.frame_size, d.ingest_key_id, d.registered_at, d.frames, d.last_seen, d.settled, d.battery,
  (SELECT COUNT(*) FROM gaps WHERE serial = d.serial) AS gaps, (SELECT SUM(count) FROM gaps WHERE serial = d.serial) AS lost,
  (SELECT COALESCE(MAX(epoch), 0) FROM device_epochs WHERE serial = d.serial AND state = 'committed') AS epoch,
  (SELECT CASE WHEN SUM(CASE WHEN state = 'frozen' THEN 1 ELSE 0 END) > 0 THEN 'frozen' WHEN SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) > 0 THEN 'pending'
    WHEN COUNT(*) > 0 THEN 'committed' ELSE 'none' END FROM device_epochs WHERE serial = d.serial) AS renewal`;

/**
 * A request's key rows (rows.ts, keyRowsQuery), the serials given as a JSON
 * array. The serials' list drives the loop (one index search each); `serial
 * IN (SELECT ...)` built a temporary index of the list first, a fifth of a
 * one-serial request's statement (bench/junk-uplink.ts). The search is of
 * devices_key_rows (migration 7), which holds both values already computed:
 * one descent per serial and no read of the table; INDEXED BY makes a query
 * that could not use the index fail to prepare instead of running slower.
 */
export const KEY_ROWS_SQL = keyRowsQuery('sqlite', `FROM json_each(?) AS j CROSS JOIN devices INDEXED BY ${KEY_ROWS_INDEX} ON devices.serial = j.value`);

/** Most transactions committed together (one fsync). */
const MAX_GROUP = 64;

export class SqliteStorage implements Storage {
  readonly backend = 'sqlite' as const;
  private readonly db: Db;
  private pending: Pending[] = [];
  private scheduled = false;
  /** A group waits for the WAL's fsync (group-sync.ts) or a checkpoint (checkpointer.ts) to end, so that it grows. */
  private waitingForSync = false;
  private running: Promise<void> = Promise.resolve();
  private readonly s: Record<string, Stmt>;
  private readonly readingQueries = new Map<string, Stmt>();
  private readonly tx: Tx;
  /** The read workers, or null when reads run in-process (`:memory:`, or readWorkers 0). */
  readonly readWorkers: ReadWorkers | null;
  /** The shared fsync of the WAL (synchronous FULL on a file), or null when COMMIT itself is as durable as asked. */
  readonly walSync: GroupSync | null = null;
  private closeWal: (() => void) | undefined;
  /** The WAL's checkpoints in their own thread (a file database), or null: SQLite's own, inside COMMIT. */
  readonly checkpointer: Checkpointer | null = null;
  /** Key renewal's epoch rows (epochs.ts). */
  readonly epochs: EpochStore;
  /** The key directory (key-directory.ts), or null; and the data_version it was last checked against. */
  private readonly directory: KeyDirectory | null;
  private dataVersion = -1;

  constructor(path: string, options: SqliteOptions = {}) {
    if (!options.readonly) restrictDbFiles(path, options.onWarning ?? ((m) => process.emitWarning(m)));
    this.db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
    const workers = options.readWorkers ?? 1;
    // '' is a temporary database private to this connection, like :memory:.
    this.readWorkers = workers > 0 && !this.db.memory && path !== '' ? new ReadWorkers(path, { size: workers, ...(options.onError ? { onError: options.onError } : {}) }) : null;
    this.db.pragma('busy_timeout = 5000');
    const held = options.keyDirectory ?? DEFAULT_KEY_DIRECTORY;
    this.directory = held > 0 && !options.readonly ? new KeyDirectory(held) : null;
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL');
      const synchronous = options.synchronous ?? 'FULL';
      // FULL on a file: NORMAL plus our own fsync of the WAL before any caller hears of its commit.
      const ownSync = synchronous === 'FULL' && !this.db.memory && path !== '' && !path.startsWith('file:');
      this.db.pragma(`synchronous = ${ownSync ? 'NORMAL' : synchronous}`);
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('cache_size = -65536');
      this.migrate();
      if (ownSync) {
        // The WAL exists from here on (the migrations wrote to it, or found the schema through it) while this connection is open.
        this.db.pragma('schema_version');
        const wal = fileSync(`${this.db.name}-wal`);
        this.walSync = new GroupSync(wal.sync);
        this.closeWal = wal.close;
      }
      if (options.checkpointThread !== false && !this.db.memory && path !== '' && !path.startsWith('file:')) {
        this.db.pragma('wal_autocheckpoint = 0');
        const warn = options.onWarning ?? ((m: string) => process.emitWarning(m));
        this.checkpointer = new Checkpointer(this.db.name, (e) => {
          // Never a WAL without checkpoints: SQLite's own again, inside COMMIT.
          if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${CHECKPOINT_PAGES}`);
          warn(`${e.message}; SQLite checkpoints the WAL itself again, inside COMMIT on the event loop`);
        });
      }
    }
    // The key-row query concatenates blobs as text (rows.ts, keyRowsQuery): the same bytes only in UTF-8,
    // the encoding of every database sealpost creates.
    const encoding = this.db.pragma('encoding', { simple: true });
    if (encoding !== 'UTF-8') throw new Error(`database ${path} is encoded in ${String(encoding)}; sealpost needs UTF-8 (the encoding it creates databases in)`);
    const db = this.db;
    this.epochs = new SqliteEpochs(
      db,
      (fn) => this.transaction(async () => fn()),
      async () => {
        while (this.db.inTransaction) await this.running;
      },
    );
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      device: p('SELECT * FROM devices WHERE serial = ?'),
      // One statement for a request's devices: a third cheaper than one lookup per serial at 100
      // serials (bench/junk-uplink.ts), which is what a request naming many serials costs first.
      devicesIn: p('SELECT * FROM devices WHERE serial IN (SELECT value FROM json_each(?)) ORDER BY serial'),
      keyRowsIn: p(KEY_ROWS_SQL),
      // The key directory's change signal and its load at start (key-directory.ts).
      dataVersion: p('PRAGMA data_version').pluck(),
      keyRowsPage: p(keyRowsPageQuery('sqlite', 'FROM (SELECT * FROM devices WHERE serial > ? AND keys_wrapped IS NOT NULL ORDER BY serial LIMIT ?) AS devices')),
      insertFrame: p(
        `INSERT INTO frames (serial, counter, frame, type, content, relay, relay_time, rx, received)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (serial, counter) DO NOTHING`,
      ),
      frameBytes: p('SELECT frame FROM frames WHERE serial = ? AND counter = ?'),
      insertAnchor: p('INSERT INTO anchors (serial, counter, boot, uptime, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING'),
      anchorsBefore: p('SELECT counter, boot, uptime, reason FROM anchors WHERE serial = ? AND counter < ? ORDER BY counter DESC LIMIT ?'),
      anchorFor: p(
        'SELECT counter, boot, uptime, reason FROM anchors WHERE serial = ? AND counter < ? AND boot % 256 = ? ORDER BY counter DESC LIMIT 1',
      ),
      pending: p(
        `SELECT r.counter AS counter, MIN(r.uptime24) AS uptime24, MIN(r.bound) AS bound, MIN(f.rx) AS rx FROM readings r
         JOIN frames f ON f.serial = r.serial AND f.counter = r.counter
         WHERE r.serial = ? AND r.boot IS NULL AND r.boot8 = ? AND r.counter > ? GROUP BY r.counter ORDER BY r.counter`,
      ),
      resolve: p('UPDATE readings SET boot = ?, uptime = ?, time = ?, time_source = ? WHERE serial = ? AND counter = ?'),
      bootStart: p('SELECT start, time_source FROM boots WHERE serial = ? AND boot = ?'),
      insertBoot: p('INSERT INTO boots (serial, boot, start, anchor_counter, time_source) VALUES (?, ?, ?, ?, ?)'),
      updateBoot: p('UPDATE boots SET start = ?, time_source = ? WHERE serial = ? AND boot = ?'),
      retime: p('UPDATE readings SET time = ? + uptime * 1000, time_source = ? WHERE serial = ? AND boot = ?'),
      insertReading: p(
        `INSERT INTO readings (serial, counter, idx, channel, name, unit, value, boot8, uptime24, bound, boot, uptime, time, time_source)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      islands: p(ISLANDS),
      gapsOverlapping: p('SELECT * FROM gaps WHERE serial = ? AND first <= ? AND first + count - 1 >= ? ORDER BY first'),
      deleteGap: p('DELETE FROM gaps WHERE id = ?'),
      insertGap: p('INSERT INTO gaps (serial, first, count, kind, detected_at) VALUES (?, ?, ?, ?, ?)'),
      updateDevice: p(
        `UPDATE devices SET frames = ?, last_seen = ?, settled = ?, max_counter = ?, boot_floor = ?, gap_hi = ?,
         battery = ?, battery_counter = ? WHERE serial = ?`,
      ),
      batch: p('SELECT * FROM batches WHERE batch = ?'),
      insertBatch: p(
        `INSERT INTO batches (batch, factory_key_id, ingest_key_id, board, frame_size, created, manifest_sha256, devices, imported_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertDevice: p(
        `INSERT INTO devices (serial, enc, ingest_key_id, board, frame_size, batch, registered_at, keys_wrapped)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      setKeysWrapped: p('UPDATE devices SET keys_wrapped = ? WHERE serial = ? AND keys_wrapped IS NULL'),
      setStatus: p('UPDATE devices SET status = ?, revoked_at = ? WHERE serial = ?'),
      devices: p(
        `SELECT d.*, g.n AS gaps, g.lost AS lost FROM devices d
         LEFT JOIN (SELECT serial, COUNT(*) AS n, SUM(count) AS lost FROM gaps GROUP BY serial) g ON g.serial = d.serial
         ORDER BY d.serial`,
      ),
      deviceSummary: p(
        `SELECT d.*, (SELECT COUNT(*) FROM gaps WHERE serial = d.serial) AS gaps,
         (SELECT SUM(count) FROM gaps WHERE serial = d.serial) AS lost FROM devices d WHERE d.serial = ?`,
      ),
      gaps: p('SELECT * FROM gaps WHERE serial = ? ORDER BY first, id'),
      // Keyset pages (docs/api.md, "Paging"): each starts in the index at its
      // cursor, so the last page of 100k rows costs what the first does.
      devicesPage: p(`SELECT ${SUMMARY} FROM devices d WHERE d.serial > ? ORDER BY d.serial LIMIT ?`),
      gapsPage: p('SELECT * FROM gaps WHERE serial = ? AND (first, id) > (?, ?) ORDER BY first, id LIMIT ?'),
      frames: p('SELECT * FROM frames WHERE serial = ? ORDER BY counter'),
      batches: p('SELECT * FROM batches ORDER BY batch'),
      migrations: p('SELECT version FROM schema_migrations ORDER BY version'),
      pruneWindow: p('SELECT serial FROM devices WHERE serial > ? ORDER BY serial LIMIT ?').pluck(),
      // readings_by_time (serial, time) finds a device's old readings; the primary key deletes them.
      pruneReadings: p(
        `DELETE FROM readings WHERE (serial, counter, idx) IN (
           SELECT serial, counter, idx FROM readings WHERE serial IN (SELECT value FROM json_each(?)) AND time < ? LIMIT ?)`,
      ),
      insertToken: p('INSERT INTO api_tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING'),
      tokens: p('SELECT name, role, created_at, last_used FROM api_tokens ORDER BY name'),
      tokenByHash: p('SELECT name, role, created_at, last_used FROM api_tokens WHERE hash = ?'),
      deleteToken: p('DELETE FROM api_tokens WHERE name = ?'),
      touchToken: p('UPDATE api_tokens SET last_used = ? WHERE name = ? AND (last_used IS NULL OR last_used < ?)'),
    };
    this.tx = this.makeTx();
  }

  private migrate(): void {
    const db = this.db;
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    db.exec('BEGIN IMMEDIATE');
    try {
      const current = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
      const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
      if (current > latest) {
        throw new Error(`database schema is at version ${current}, newer than this sealpost knows (${latest}): upgrade sealpost`);
      }
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        db.exec(m.sqlite);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      }
      db.exec('COMMIT');
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw e;
    }
  }

  private makeTx(): Tx {
    const s = this.s;
    return {
      lockDevices: async (serials) => {
        if (serials.length === 0) return [];
        // Reads wait while this transaction is open; once it committed they read these rows again.
        if (this.directory) for (const serial of serials) this.directory.forget(serial);
        // The usual request names one device (a relay forwards one outbox at a time): one index search, no JSON list.
        if (serials.length === 1) {
          const r = s.device!.get(serials[0]) as Row | undefined;
          return r ? [deviceFromRow(r)] : [];
        }
        return (s.devicesIn!.all(JSON.stringify(serials)) as Row[]).map(deviceFromRow);
      },
      insertFrames: async (rows: NewFrame[]) => {
        const out = new Array<boolean>(rows.length);
        for (let i = 0; i < rows.length; i++) {
          const f = rows[i]!;
          // better-sqlite3 binds any Uint8Array (its view only) as a BLOB: no Buffer made per frame.
          out[i] = s.insertFrame!.run(f.serial, f.counter, f.frame, f.type, f.content, f.relay, f.relayTime, f.rx, f.received).changes === 1;
        }
        return out;
      },
      frameBytes: async (serial, counters) => {
        const out = new Map<number, Uint8Array>();
        for (const c of counters) {
          const r = s.frameBytes!.get(serial, c) as { frame: Buffer } | undefined;
          if (r) out.set(c, new Uint8Array(r.frame));
        }
        return out;
      },
      insertAnchors: async (serial, rows: Anchor[]) => {
        for (const a of rows) s.insertAnchor!.run(serial, a.counter, a.boot, a.uptime, a.reason);
      },
      anchorsBefore: async (serial, below, limit) => s.anchorsBefore!.all(serial, below, limit) as Anchor[],
      anchorFor: async (serial, below, boot8) => s.anchorFor!.get(serial, below, boot8) as Anchor | undefined,
      pendingSamples: async (serial, boot8, above) => s.pending!.all(serial, boot8, above) as PendingSample[],
      resolveSamples: async (serial, rows: ResolvedSample[]) => {
        for (const r of rows) s.resolve!.run(r.boot, r.uptime, r.time, r.timeSource, serial, r.counter);
      },
      bootStarts: async (serial, boots) => {
        const out = new Map<number, BootStart>();
        for (const b of boots) {
          const r = s.bootStart!.get(serial, b) as { start: number; time_source: TimeSource } | undefined;
          if (r) out.set(b, { start: r.start, source: r.time_source });
        }
        return out;
      },
      saveBoot: async (serial, boot, start, anchorCounter, isNew) => {
        if (isNew) s.insertBoot!.run(serial, boot, start.start, anchorCounter, start.source);
        else s.updateBoot!.run(start.start, start.source, serial, boot);
      },
      retimeBoot: async (serial, boot, start) => {
        s.retime!.run(start.start, start.source, serial, boot);
      },
      insertReadings: async (rows: NewReading[]) => {
        for (const r of rows) {
          s.insertReading!.run(r.serial, r.counter, r.idx, r.channel, r.name, r.unit, r.value, r.boot8, r.uptime24, r.bound, r.boot, r.uptime, r.time, r.timeSource);
        }
      },
      storedRanges: async (serial, lo, hi) => s.islands!.all(serial, lo, hi) as Range[],
      gapsOverlapping: async (serial, lo, hi) => (s.gapsOverlapping!.all(serial, hi, lo) as Row[]).map(gapFromRow),
      deleteGaps: async (ids) => {
        for (const id of ids) s.deleteGap!.run(id);
      },
      insertGaps: async (rows: NewGap[]) => {
        for (const g of rows) s.insertGap!.run(g.serial, g.first, g.count, g.kind, g.detectedAt);
      },
      updateDevice: async (d) => {
        s.updateDevice!.run(d.frames, d.lastSeen, d.settled, d.maxCounter, d.bootFloor, d.gapHi, d.battery, d.batteryCounter, d.serial);
      },
      batch: async (batch) => {
        const r = s.batch!.get(batch) as Row | undefined;
        return r ? batchFromRow(r) : undefined;
      },
      devicesBySerial: async (serials) => {
        const out: DeviceRow[] = [];
        for (const serial of serials) {
          const r = s.device!.get(serial) as Row | undefined;
          if (r) out.push(deviceFromRow(r));
        }
        return out;
      },
      insertBatch: async (b: BatchRow) => {
        s.insertBatch!.run(b.batch, b.factoryKeyId, b.ingestKeyId, b.board, b.frameSize, b.created, b.manifestSha256, b.devices, b.importedAt);
      },
      insertDevices: async (rows: NewDevice[]) => {
        for (const d of rows) {
          s.insertDevice!.run(d.serial, asBuffer(d.enc), d.ingestKeyId, d.board, d.frameSize, d.batch, d.registeredAt, d.keysWrapped ? asBuffer(d.keysWrapped) : null);
        }
      },
      setStatus: async (serial, status, at) => {
        s.setStatus!.run(status, status === 'revoked' ? at : null, serial);
        this.directory?.forget(serial);
      },
      unwrappedDevices: async (ingestKeyIds, after, limit) => {
        if (ingestKeyIds.length === 0) return [];
        const rows = this.db
          .prepare(
            `SELECT serial, enc, ingest_key_id FROM devices
             WHERE keys_wrapped IS NULL AND serial > ? AND ingest_key_id IN (${ingestKeyIds.map(() => '?').join(', ')}) ORDER BY serial LIMIT ?`,
          )
          .all(after, ...ingestKeyIds, limit) as Row[];
        return rows.map((r) => ({ serial: r.serial as string, enc: new Uint8Array(r.enc as Buffer), ingestKeyId: r.ingest_key_id as string }));
      },
      setKeysWrapped: async (rows) => {
        for (const r of rows) s.setKeysWrapped!.run(asBuffer(r.keysWrapped), r.serial);
      },
    };
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  /** One process per file and no round trips: an uplink's transaction is an ordinary one (group commit included). */
  ingestTransaction<T>(plan: IngestPlan, fn: (tx: Tx) => Promise<T>): Promise<T> {
    const run = this.transaction(fn);
    if (!this.directory) return run;
    // Settled (and maybe more) changed: held rows of the locked devices are read again (key-directory.ts).
    const forget = () => {
      for (const f of plan.frames) this.directory!.forget(f.serial);
    };
    return run.finally(forget);
  }

  private schedule(): void {
    if (this.scheduled || this.waitingForSync) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      // While the WAL syncs, the queue grows: its requests wait for the next fsync
      // either way, and one transaction for all of them writes each page once.
      const busy = this.walSync?.busy ? this.walSync.idle() : this.checkpointer?.running;
      if (busy && this.pending.length < MAX_GROUP) {
        this.waitingForSync = true;
        void busy.then(() => {
          this.waitingForSync = false;
          this.schedule();
        });
        return;
      }
      const group = this.pending.splice(0, MAX_GROUP);
      if (this.pending.length > 0) this.schedule();
      this.running = this.running.then(() => this.runGroup(group));
    });
  }

  private async runGroup(group: Pending[]): Promise<void> {
    // A full group does not wait in schedule(); it still never writes while a checkpoint copies the WAL,
    // or the checkpoint could not finish and the WAL would not restart.
    if (this.checkpointer?.running) await this.checkpointer.running;
    const db = this.db;
    const outcomes: { ok: boolean; value: unknown }[] = [];
    let first = 0; // first member of the SQLite transaction now open
    const failFrom = (from: number, error: unknown) => {
      for (let i = from; i < outcomes.length; i++) outcomes[i] = { ok: false, value: error };
    };
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      for (const p of group) p.reject(e);
      return;
    }
    for (const p of group) {
      if (!db.inTransaction) {
        first = outcomes.length;
        try {
          db.exec('BEGIN IMMEDIATE');
        } catch (e) {
          outcomes.push({ ok: false, value: e });
          continue;
        }
      }
      db.exec('SAVEPOINT sealpost_tx');
      try {
        const value = await p.fn(this.tx);
        db.exec('RELEASE sealpost_tx');
        outcomes.push({ ok: true, value });
      } catch (e) {
        outcomes.push({ ok: false, value: e });
        if (db.inTransaction) {
          try {
            db.exec('ROLLBACK TO sealpost_tx');
            db.exec('RELEASE sealpost_tx');
          } catch (inner) {
            if (db.inTransaction) db.exec('ROLLBACK');
            failFrom(first, inner);
          }
        } else {
          // SQLite rolled the whole transaction back (e.g. disk full): nobody in it is stored.
          failFrom(first, e);
        }
      }
    }
    let committed = false;
    if (db.inTransaction) {
      try {
        db.exec('COMMIT');
        committed = true;
      } catch (e) {
        if (db.inTransaction) db.exec('ROLLBACK');
        failFrom(first, e);
      }
    }
    if (committed) void this.checkpointer?.committed();
    const settle = () => group.forEach((p, i) => (outcomes[i]!.ok ? p.resolve(outcomes[i]!.value) : p.reject(outcomes[i]!.value)));
    if (!this.walSync || !outcomes.some((o) => o.ok)) {
      settle();
      return;
    }
    // Not awaited: the next group runs while the WAL syncs; nobody of this one hears of its commit before.
    this.walSync.after().then(settle, (e: unknown) => group.forEach((p, i) => p.reject(outcomes[i]!.ok ? e : outcomes[i]!.value)));
  }

  async deviceKeyRows(serials: string[]): Promise<DeviceKeyRow[]> {
    if (serials.length === 0) return [];
    // Committed rows only: on this one connection an open transaction's writes would be visible, so let a group in flight finish.
    while (this.db.inTransaction) await this.running;
    const dir = this.directory;
    if (!dir) return this.keyRowsFromDb(serials);
    // Another connection (a CLI's revoke or import) committed: what is held may be stale, read again.
    const version = this.s.dataVersion!.get() as number;
    if (version !== this.dataVersion) {
      dir.clear();
      this.dataVersion = version;
    }
    return dir.rows(serials, (missing) => this.keyRowsFromDb(missing));
  }

  private keyRowsFromDb(serials: string[]): DeviceKeyRow[] {
    const r = this.s.keyRowsIn!.get(JSON.stringify(serials)) as { t: string | null; b: Uint8Array | null };
    return keyRowsFromText(r.t, r.b);
  }

  /**
   * Fills the key directory from the registry, by pages of serials, until it
   * is full (server start, after the keys are wrapped). Returns the rows held.
   */
  async loadKeyDirectory(page = 5000): Promise<number> {
    const dir = this.directory;
    if (!dir) return 0;
    this.dataVersion = this.s.dataVersion!.get() as number;
    let after = '';
    while (dir.size < dir.capacity) {
      const r = this.s.keyRowsPage!.get(after, Math.min(page, dir.capacity - dir.size)) as { t: string | null; b: Uint8Array | null; last: string | null };
      const rows = keyRowsFromText(r.t, r.b);
      if (rows.length === 0 || r.last === null) break;
      dir.admit(rows, dir.epoch);
      after = r.last;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return dir.size;
  }

  async device(serial: string): Promise<DeviceRow | undefined> {
    const r = this.s.device!.get(serial) as Row | undefined;
    return r ? deviceFromRow(r) : undefined;
  }

  async devices(serial?: string): Promise<DeviceSummary[]> {
    const rows = serial === undefined ? this.s.devices!.all() : this.s.deviceSummary!.all(serial);
    return (rows as Row[]).map(summaryFromRow);
  }

  async devicesPage(q: DevicesQuery): Promise<DeviceSummary[]> {
    if (this.readWorkers) return this.readWorkers.run('devicesPage', [q]);
    return (this.s.devicesPage!.all(q.after ?? '', q.limit) as Row[]).map(summaryFromRow);
  }

  async readings(serial: string, q: ReadingsQuery): Promise<StoredReading[]> {
    if (this.readWorkers) return this.readWorkers.run('readings', [serial, q]);
    const key = `${q.from !== undefined ? 'f' : ''}${q.to !== undefined ? 't' : ''}`;
    let stmt = this.readingQueries.get(key);
    if (!stmt) {
      // The primary key (serial, counter, idx) gives the order and the start
      // at the cursor; the unary + keeps the planner off readings_by_time,
      // which would sort every matching row for each page.
      const where = ['serial = ?', '(counter, idx) > (?, ?)'];
      if (q.from !== undefined) where.push('+time >= ?');
      if (q.to !== undefined) where.push('+time <= ?');
      stmt = this.db.prepare(
        `SELECT serial, counter, idx, channel, name, unit, value, boot, uptime, time, time_source FROM readings
         WHERE ${where.join(' AND ')} ORDER BY counter, idx LIMIT ?`,
      );
      this.readingQueries.set(key, stmt);
    }
    const args: unknown[] = [serial, q.after?.counter ?? -1, q.after?.idx ?? -1];
    if (q.from !== undefined) args.push(q.from);
    if (q.to !== undefined) args.push(q.to);
    args.push(q.limit);
    return (stmt.all(...args) as Row[]).map(readingFromRow);
  }

  async gaps(serial: string, q?: GapsQuery): Promise<GapRow[]> {
    if (q === undefined) return (this.s.gaps!.all(serial) as Row[]).map(gapFromRow);
    if (this.readWorkers) return this.readWorkers.run('gaps', [serial, q]);
    return (this.s.gapsPage!.all(serial, q.after?.first ?? -1, q.after?.id ?? -1, q.limit) as Row[]).map(gapFromRow);
  }

  async readPage(request: PageRequest): Promise<EncodedPage> {
    if (this.readWorkers) return this.readWorkers.run('page', [request]);
    return encodePage(this, request);
  }

  async frames(serial: string): Promise<StoredFrame[]> {
    return (this.s.frames!.all(serial) as Row[]).map(frameFromRow);
  }

  async batches(): Promise<BatchRow[]> {
    return (this.s.batches!.all() as Row[]).map(batchFromRow);
  }

  // Token writes go through transaction(): they join the next group commit
  // instead of running inside whichever group happens to be open.
  async insertToken(t: NewToken): Promise<boolean> {
    return this.transaction(async () => this.s.insertToken!.run(t.name, t.role, asBuffer(t.hash), t.createdAt).changes === 1);
  }

  async tokens(): Promise<TokenInfo[]> {
    return (this.s.tokens!.all() as Row[]).map(tokenFromRow);
  }

  async tokenByHash(hash: Uint8Array): Promise<TokenInfo | undefined> {
    const r = this.s.tokenByHash!.get(asBuffer(hash)) as Row | undefined;
    return r ? tokenFromRow(r) : undefined;
  }

  async deleteToken(name: string): Promise<boolean> {
    return this.transaction(async () => this.s.deleteToken!.run(name).changes === 1);
  }

  async touchToken(name: string, at: number): Promise<void> {
    await this.transaction(async () => this.s.touchToken!.run(at, name, at));
  }

  // The delete joins the next group commit, like token writes: it never runs
  // inside, or holds open, a group of uploads; an upload waits at most for
  // this one statement (docs/server.md, "Retention", measured there).
  async pruneReadings(q: PruneRequest): Promise<PruneResult> {
    const window = this.s.pruneWindow!.all(q.after, q.devices) as string[];
    if (window.length === 0) return { deleted: 0, through: null };
    const deleted = await this.transaction(async () => this.s.pruneReadings!.run(JSON.stringify(window), q.before, q.limit).changes);
    return { deleted, through: window[window.length - 1]! };
  }

  async migrations(): Promise<number[]> {
    return (this.s.migrations!.all() as { version: number }[]).map((r) => r.version);
  }

  async close(): Promise<void> {
    while (this.pending.length > 0 || this.scheduled || this.waitingForSync) await new Promise((r) => setImmediate(r));
    await this.running;
    await this.walSync?.idle();
    // The checkpoint thread's connection closes first, so this one is the last and removes the WAL.
    await this.checkpointer?.close();
    await this.readWorkers?.close();
    this.closeWal?.();
    this.closeWal = undefined;
    if (this.db.open) this.db.close();
  }
}
