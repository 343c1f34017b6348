// The raw baseline of bench/ingest.ts (issue #14, item 4): the rows sealpost
// stored in a run, inserted again into an empty database of the same schema
// directly with the same driver and the same durability, no HTTP, no crypto,
// no settling. What the database itself can take, so the ingest figure can
// be given as a ratio of it.
//   SQLite: better-sqlite3, WAL, synchronous=FULL, one transaction per 500
//           frames with their readings (sealpost's SQLite backend groups the
//           commits of concurrent requests the same way).
//   PostgreSQL: node-postgres, `concurrency` connections, one transaction of
//           two `unnest` inserts (frames, readings) per request's frames.
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStorage } from '../server/index.js';
import { parsePostgresUrl } from '../server/storage/postgres.js';
import { backendPids, cpuMs, type BenchDb } from './harness.js';

type Row = Record<string, unknown>;

interface Captured {
  frames: Row[];
  readings: Map<string, Row[]>;
  frameColumns: string[];
  readingColumns: string[];
}

const key = (serial: unknown, counter: unknown) => `${String(serial)}\u0000${String(counter)}`;

/** Every frame and reading sealpost stored in `from`, in counter order per device. */
async function capture(from: BenchDb): Promise<Captured> {
  let frames: Row[];
  let readings: Row[];
  if (from.backend === 'sqlite') {
    const db = new Database(from.db, { readonly: true });
    frames = db.prepare('SELECT * FROM frames ORDER BY serial, counter').all() as Row[];
    readings = db.prepare('SELECT * FROM readings').all() as Row[];
    db.close();
  } else {
    const { client, schema } = await pgClient(from.db);
    frames = (await client.query(`SELECT * FROM ${schema}.frames ORDER BY serial, counter`)).rows;
    readings = (await client.query(`SELECT * FROM ${schema}.readings`)).rows;
    await client.end();
  }
  const byFrame = new Map<string, Row[]>();
  for (const r of readings) {
    const k = key(r.serial, r.counter);
    const list = byFrame.get(k);
    if (list) list.push(r);
    else byFrame.set(k, [r]);
  }
  return { frames, readings: byFrame, frameColumns: Object.keys(frames[0] ?? {}), readingColumns: Object.keys(readings[0] ?? {}) };
}

async function pgClient(url: string): Promise<{ client: pg.Client; schema: string }> {
  const { connectionString, schema } = parsePostgresUrl(url);
  const client = new pg.Client({ connectionString });
  await client.connect();
  return { client, schema: schema! };
}

/** Chunks of frames in the order the run sent them: per device and round, `batch` frames. */
function chunks(frames: Row[], size: number): Row[][] {
  const out: Row[][] = [];
  for (let i = 0; i < frames.length; i += size) out.push(frames.slice(i, i + size));
  return out;
}

/**
 * Inserts what `from` holds into `to` (an empty database: its schema is
 * created first, by sealpost's own migrations) and returns frames per second.
 */
export async function rawBaseline(
  from: BenchDb,
  to: BenchDb,
  batch: number,
  concurrency: number,
): Promise<{ framesPerSecond: number; frames: number; readings: number; clientCpuMs: number; dbCpuMs: number }> {
  const c = await capture(from);
  await (await openStorage(to.db, { readWorkers: 0 })).close(); // the schema, by the same migrations
  const readingsOf = (f: Row) => c.readings.get(key(f.serial, f.counter)) ?? [];
  let readingCount = 0;
  for (const list of c.readings.values()) readingCount += list.length;
  let start = performance.now();
  let cpu0 = process.cpuUsage();
  let dbCpuMs = 0;
  if (to.backend === 'sqlite') {
    const db = new Database(to.db);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const insertFrame = db.prepare(`INSERT INTO frames (${c.frameColumns.join(', ')}) VALUES (${c.frameColumns.map(() => '?').join(', ')})`);
    const insertReading = db.prepare(`INSERT INTO readings (${c.readingColumns.join(', ')}) VALUES (${c.readingColumns.map(() => '?').join(', ')})`);
    const group = db.transaction((frames: Row[]) => {
      for (const f of frames) {
        insertFrame.run(c.frameColumns.map((k) => f[k]));
        for (const r of readingsOf(f)) insertReading.run(c.readingColumns.map((k) => r[k]));
      }
    });
    for (const frames of chunks(c.frames, 500)) group(frames);
    db.close();
  } else {
    const { connectionString, schema, applicationName } = parsePostgresUrl(to.db);
    const pool = new pg.Pool({ connectionString, max: concurrency, options: `-c search_path=${schema!}`, application_name: `${applicationName}-raw` });
    const types = await columnTypes(pool);
    // Every connection open before the clock starts, so their backends can be found and measured.
    const clients = await Promise.all(Array.from({ length: concurrency }, () => pool.connect()));
    for (const c of clients) c.release();
    const backends = await backendPids(connectionString, `${applicationName}-raw`);
    const db0 = cpuMs(backends);
    start = performance.now();
    cpu0 = process.cpuUsage();
    const unnest = (table: string, columns: string[]) =>
      `INSERT INTO ${table} (${columns.join(', ')}) SELECT * FROM unnest(${columns.map((k, i) => `$${i + 1}::${types.get(`${table}.${k}`)}[]`).join(', ')})`;
    const frameSql = unnest('frames', c.frameColumns);
    const readingSql = unnest('readings', c.readingColumns);
    const jobs = chunks(c.frames, batch);
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < jobs.length) {
          const frames = jobs[next++]!;
          const readings = frames.flatMap(readingsOf);
          const client = await pool.connect();
          try {
            await client.query('BEGIN');
            await client.query(frameSql, c.frameColumns.map((k) => frames.map((f) => f[k])));
            if (readings.length > 0) await client.query(readingSql, c.readingColumns.map((k) => readings.map((r) => r[k])));
            await client.query('COMMIT');
          } finally {
            client.release();
          }
        }
      }),
    );
    dbCpuMs = cpuMs(backends) - db0;
    await pool.end();
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { framesPerSecond: c.frames.length / seconds, frames: c.frames.length, readings: readingCount, clientCpuMs: (cpu.user + cpu.system) / 1000, dbCpuMs };
}

/** `table.column` -> its SQL type, for the unnest casts. */
async function columnTypes(pool: pg.Pool): Promise<Map<string, string>> {
  const r = await pool.query(
    `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name IN ('frames', 'readings')`,
  );
  const map = (t: string) => (t === 'double precision' ? 'float8' : t === 'character varying' ? 'text' : t);
  return new Map(r.rows.map((x) => [`${x.table_name as string}.${x.column_name as string}`, map(x.data_type as string)]));
}
