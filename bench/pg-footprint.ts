// What the PostgreSQL ingest leaves behind, for sizing (docs/server.md,
// "Sizing"): bytes on disk per frame and per reading (pg_total_relation_size
// summed over each table's partitions: heap, indexes, TOAST) and WAL written
// per frame (the server's WAL position before and after a timed phase; it
// counts every session on that PostgreSQL, so measure on a server of its own).
import pg from 'pg';
import { parsePostgresUrl } from '../server/storage/postgres.js';

const TABLES = ['frames', 'readings', 'anchors', 'boots', 'gaps', 'devices'] as const;

async function withClient<T>(url: string, fn: (c: pg.Client, schema: string) => Promise<T>): Promise<T> {
  const { connectionString, schema } = parsePostgresUrl(url);
  const c = new pg.Client({ connectionString });
  await c.connect();
  try {
    return await fn(c, schema ?? 'public');
  } finally {
    await c.end();
  }
}

/** The server's current WAL position, in bytes. */
export function walPosition(url: string): Promise<bigint> {
  return withClient(url, async (c) => BigInt((await c.query("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS b")).rows[0].b));
}

export interface Footprint {
  rows: Record<string, number>;
  bytes: Record<string, number>;
}

/** Rows and bytes of each table, after VACUUM ANALYZE (which writes the visibility and free space maps a table in service has). */
export function footprint(url: string): Promise<Footprint> {
  return withClient(url, async (c, schema) => {
    const rows: Record<string, number> = {};
    const bytes: Record<string, number> = {};
    for (const t of TABLES) {
      await c.query(`VACUUM ANALYZE ${schema}.${t}`);
      rows[t] = Number((await c.query(`SELECT COUNT(*) AS n FROM ${schema}.${t}`)).rows[0].n);
      // A partitioned table's own size is 0: sum its partitions (a plain table has no partition tree).
      const size = await c.query(
        `SELECT GREATEST(pg_total_relation_size($1::regclass), (SELECT COALESCE(SUM(pg_total_relation_size(relid)), 0) FROM pg_partition_tree($1::regclass))) AS b`,
        [`${schema}.${t}`],
      );
      bytes[t] = Number(size.rows[0].b);
    }
    return { rows, bytes };
  });
}

/** One line for the benchmark's output. */
export function describeFootprint(f: Footprint, walBytes: bigint, framesTimed: number): string {
  const per = (t: string, unit: string) => (f.rows[t]! > 0 ? `${t} ${Math.round(f.bytes[t]! / f.rows[t]!)} B/${unit} (${(f.bytes[t]! / 1048576).toFixed(1)} MB, ${f.rows[t]} rows)` : `${t} empty`);
  const all = TABLES.reduce((s, t) => s + f.bytes[t]!, 0);
  return [
    `on disk: ${per('frames', 'frame')}, ${per('readings', 'reading')}, ${per('anchors', 'anchor')};`,
    `all tables ${Math.round(all / f.rows.frames!)} B per stored frame;`,
    `WAL ${Math.round(Number(walBytes) / framesTimed)} B per timed frame (every session on this server counts)`,
  ].join(' ');
}
