// Where PostgreSQL's CPU goes on sealpost's ingest, statement by statement
// (docs/server.md section 9, "The database's side"):
//
//   npx tsx bench/pg-statements.ts [--devices 1000] [--rounds 4] [--repeat 2] [--pg URL]
//
// Runs the server in this process on a fresh schema, posts `rounds` rounds of
// one 50-frame upload per device (as bench/ingest.ts does), and records the
// last round's statements as the node sends them: the key rows, the read
// ahead, and the ingest_write call, which is recorded instead of run (its
// frames stay unstored, so it can be replayed). Then it replays them from
// one connection, `repeat` times, and reads that backend's CPU time from
// /proc: the database's CPU per 1,000 frames for each statement, and for the
// raw baseline's two inserts (bench/ingest-raw.ts) of the same rows. Writes
// run between BEGIN and ROLLBACK, so the replay can repeat; a commit costs
// the same for both. One connection and no concurrency: the figures are the
// statements' own cost, not the contention of a run.
import { Agent } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig, startServer } from '../server/index.js';
import { parsePostgresUrl } from '../server/storage/postgres.js';
import { DEFAULT_PG, benchDb, cpuMs, freePort, importFleet, post, uploadBody } from './harness.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '4' },
    repeat: { type: 'string', default: '2' },
    pg: { type: 'string', default: DEFAULT_PG },
  },
  strict: true,
});
const DEVICES = Number(values.devices);
const ROUNDS = Math.max(2, Number(values.rounds));
const REPEAT = Number(values.repeat);
const BATCH = 50;

interface Statement {
  name?: string;
  text: string;
  values: unknown[];
}

// Records the node's ingest statements (it calls pool.query with these names and the key rows' text).
const recorded = new Map<string, Statement[]>();
let recording = false;
const query = pg.Pool.prototype.query as (this: pg.Pool, q: unknown, v?: unknown) => Promise<unknown>;
(pg.Pool.prototype as unknown as { query: typeof query }).query = function (this: pg.Pool, q: unknown, v?: unknown) {
  if (recording) {
    const s = typeof q === 'object' && q !== null ? (q as Statement) : { text: String(q), values: v as unknown[] };
    const kind = s.name?.startsWith('sealpost_read_ahead') ? 'read ahead' : s.name === 'sealpost_ingest_write' ? 'ingest_write' : s.text.includes('string_agg(serial') ? 'key rows' : undefined;
    if (kind) (recorded.get(kind) ?? recorded.set(kind, []).get(kind)!).push({ ...(s.name ? { name: s.name } : {}), text: s.text, values: s.values });
    if (kind === 'ingest_write') return Promise.resolve({ rows: [{ ok: true }] });
  }
  return query.call(this, q, v);
};

const bench = benchDb('postgres', values.pg);
try {
  const { devices, keyFile } = await importFleet(bench, DEVICES);
  const port = await freePort();
  const config = join(bench.dir, 'sealpost.json');
  writeFileSync(config, JSON.stringify({ db: bench.db, listen: `127.0.0.1:${port}`, ingest_keys: [keyFile], rate_limit: false, log_level: 'warn' }));
  const server = await startServer(loadConfig({ config }));
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const t0 = Date.now() - 86_400_000;
  for (let r = 0; r < ROUNDS; r++) {
    recording = r === ROUNDS - 1;
    await Promise.all(
      devices.map(async (d) => {
        const x = await post(agent, port, uploadBody(d, r, BATCH, 'bench-relay', t0).body);
        if (x.status !== 200) throw new Error(`HTTP ${x.status}: ${x.text.slice(0, 300)}`);
      }),
    );
  }
  recording = false;
  await server.close();
  agent.destroy();

  const { connectionString, schema } = parsePostgresUrl(bench.db);
  const c = new pg.Client({ connectionString, options: `-c search_path=${schema!}` });
  await c.connect();
  const pid = Number((await c.query('SELECT pg_backend_pid() AS p')).rows[0].p);
  const frames = DEVICES * BATCH;
  const list = (kind: string) => {
    const l = recorded.get(kind);
    if (!l || l.length !== DEVICES) throw new Error(`recorded ${l?.length ?? 0} ${kind} statements, not ${DEVICES}`);
    return l;
  };
  const measure = async (label: string, run: (s: Statement) => Promise<void>, statements: Statement[]) => {
    for (const s of statements.slice(0, 10)) await run(s); // plans cached, as on a node's connection
    const before = cpuMs([pid]);
    for (let r = 0; r < REPEAT; r++) for (const s of statements) await run(s);
    const ms = (cpuMs([pid]) - before) / REPEAT;
    console.log(`${label.padEnd(46)} ${((ms * 1000) / frames).toFixed(1).padStart(6)} ms of database CPU per 1,000 frames`);
  };
  const writes = list('ingest_write');
  console.log(`${DEVICES} devices, round ${ROUNDS} of ${BATCH}-frame uploads replayed ${REPEAT} times on one connection`);
  await measure('BEGIN; ROLLBACK', async () => void (await c.query('BEGIN'), await c.query('ROLLBACK')), writes);
  await measure('key rows', async (s) => void (await c.query(s.text, s.values)), list('key rows'));
  await measure('read ahead', async (s) => void (await c.query({ name: 'ra', text: s.text, values: s.values })), list('read ahead'));
  await measure(
    'BEGIN; ingest_write; ROLLBACK',
    async (s) => {
      await c.query('BEGIN');
      const ok = (await c.query({ name: 'iw', text: s.text, values: s.values })).rows[0].ok;
      await c.query('ROLLBACK');
      if (ok !== true) throw new Error('ingest_write found a row changed: nothing else should write during the replay');
    },
    writes,
  );
  // The raw baseline's statements with the same rows: ingest_write's frame (3rd to 11th) and reading (27th to 40th) arrays.
  const unnest = (table: string, columns: string, types: string[]) => `INSERT INTO ${table} (${columns}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`;
  const frameSql = unnest('frames', 'serial, counter, frame, type, content, relay, relay_time, rx, received', ['text', 'bigint', 'bytea', 'smallint', 'text', 'text', 'bigint', 'bigint', 'bigint']);
  const readingSql = unnest('readings', 'serial, counter, idx, channel, name, unit, value, boot8, uptime24, bound, boot, uptime, time, time_source', [
    'text', 'bigint', 'smallint', 'smallint', 'text', 'text', 'float8', 'smallint', 'int', 'bigint', 'int', 'bigint', 'bigint', 'text',
  ]);
  await measure(
    'raw: BEGIN; two unnest inserts; ROLLBACK',
    async (s) => {
      await c.query('BEGIN');
      await c.query({ name: 'rf', text: frameSql, values: s.values.slice(2, 11) });
      await c.query({ name: 'rr', text: readingSql, values: s.values.slice(26, 40) });
      await c.query('ROLLBACK');
    },
    writes,
  );
  await c.end();
} finally {
  await bench.drop();
}
