// PostgreSQL migration 3: frames, readings and anchors become hash partitions
// of serial. A database made by schema version 2 with real ingested rows in it
// is converted by nodes starting together, and every row, read, replay check
// and ingest still works afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { ANCHOR_BOOT, verifyAck } from '../../protocol/index.js';
import { MIGRATIONS, PG_PARTITIONS } from '../../server/storage/migrations.js';
import type { Storage } from '../../server/index.js';
import { SealingDevice, body, makeFleet, testDb, testServer, type Fleet, type TestDb } from '../helpers/server.js';

const TABLES = ['batches', 'devices', 'frames', 'anchors', 'boots', 'readings', 'gaps', 'api_tokens'];
const ORDER: Record<string, string> = {
  batches: 'batch', devices: 'serial', frames: 'serial, counter', anchors: 'serial, counter', boots: 'serial, boot',
  readings: 'serial, counter, idx', gaps: 'id', api_tokens: 'name',
};
const schemaOf = (url: string) => new URL(url).searchParams.get('schema')!;

/** Every row of every table, in key order, as JSON text: what must survive the conversion. */
async function snapshot(client: pg.Client, schema: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) out[t] = JSON.stringify((await client.query(`SELECT * FROM ${schema}.${t} ORDER BY ${ORDER[t]}`)).rows);
  return out;
}

describe('PostgreSQL partitioning (migration 3)', () => {
  let admin: pg.Client;
  let source: TestDb; // ingested by the current code, then copied into a version-2 schema
  let old: TestDb; // created by the version-2 DDL, holding the copied rows
  let fleet: Fleet;
  const devices: SealingDevice[] = [];
  let before: Record<string, string>;
  let storages: Storage[] = [];

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: process.env.SEALPOST_TEST_PG_URL });
    await admin.connect();
    source = await testDb('postgres');
    old = await testDb('postgres');
    fleet = makeFleet(12);
    // Real rows: anchors, samples over two boots, a reported gap, a power-loss gap, a token.
    const storage = await source.open();
    const s = await testServer(storage, fleet);
    for (const keys of fleet.devices) {
      const d = new SealingDevice(keys);
      devices.push(d);
      const t = s.clock.now;
      const frames = [d.anchor(1, 0, ANCHOR_BOOT)];
      for (let i = 1; i <= 20; i++) frames.push(d.sample(1, i * 60, [{ channel: 1, value: i + devices.length / 10 }]));
      d.counter += 2; // 22 and 23 dropped from the outbox: the gap record at 24 reports them
      frames.push(d.gap(22, 2));
      d.counter += 2; // 25 and 26 never sent: the boot anchor at 27 makes them a power-loss gap
      frames.push(d.anchor(2, 0, ANCHOR_BOOT), d.sample(2, 30, [{ channel: 1, value: -1 }]));
      const r = await s.post(body('relay-a', t, [{ serial: d.serial, frames: frames.map((frame) => ({ frame, rx: t - 1000 })) }]));
      expect(r.status).toBe(200);
    }
    await s.close();
    await storage.close();
    // A database as schema version 2 made it (its very DDL), with the same rows.
    const from = schemaOf(source.url);
    const to = schemaOf(old.url);
    await admin.query(`CREATE SCHEMA ${to}`);
    await admin.query(`SET search_path = ${to}`);
    await admin.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    for (const m of MIGRATIONS.slice(0, 2)) {
      await admin.query(m.postgres);
      await admin.query('INSERT INTO schema_migrations VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
    }
    for (const t of TABLES) await admin.query(`INSERT INTO ${to}.${t} SELECT * FROM ${from}.${t}`);
    await admin.query(`SELECT setval(pg_get_serial_sequence('${to}.gaps', 'id'), (SELECT MAX(id) FROM ${to}.gaps))`);
    await admin.query('RESET search_path');
    before = await snapshot(admin, to);
  }, 120_000);

  afterAll(async () => {
    for (const st of storages) await st.close();
    await source?.drop();
    await old?.drop();
    await admin?.end();
  });

  it('the version-2 database holds what the test meant: every kind of row', async () => {
    const to = schemaOf(old.url);
    const count = async (t: string) => Number((await admin.query(`SELECT COUNT(*) AS n FROM ${to}.${t}`)).rows[0].n);
    expect(await count('frames')).toBe(12 * 24); // 28 counters, 4 of them lost
    expect(await count('readings')).toBe(12 * 21);
    expect(await count('anchors')).toBe(12 * 2);
    expect((await admin.query(`SELECT DISTINCT kind FROM ${to}.gaps ORDER BY kind`)).rows.map((r) => r.kind)).toEqual(['outbox-overflow', 'power-loss']);
    expect((await admin.query(`SELECT relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND relname = 'frames'`, [to])).rows[0].relkind).toBe('r');
  });

  it('three nodes starting together convert it once, keeping every row', async () => {
    storages = await Promise.all([old.open(), old.open(), old.open()]);
    for (const st of storages) expect(await st.migrations()).toEqual(MIGRATIONS.map((m) => m.version));
    const to = schemaOf(old.url);
    const parted = await admin.query(
      `SELECT c.relname, p.partstrat, (SELECT COUNT(*) FROM pg_inherits i WHERE i.inhparent = c.oid) AS parts
       FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 ORDER BY c.relname`,
      [to],
    );
    expect(parted.rows.map((r) => [r.relname, r.partstrat, Number(r.parts)])).toEqual([
      ['anchors', 'h', PG_PARTITIONS],
      ['frames', 'h', PG_PARTITIONS],
      ['readings', 'h', PG_PARTITIONS],
    ]);
    expect(await snapshot(admin, to)).toEqual(before);
    // Rows really are spread over the partitions, and no copy was left behind.
    const spread = await admin.query(`SELECT COUNT(DISTINCT tableoid) AS n FROM ${to}.frames`);
    expect(Number(spread.rows[0].n)).toBeGreaterThan(1);
    const leftovers = await admin.query(`SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND relname LIKE '%_v2%'`, [to]);
    expect(leftovers.rows).toEqual([]);
    // The keys that make a frame, a reading and an anchor stored once are still enforced.
    const keys = await admin.query(
      `SELECT c.relname, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND k.contype = 'p' AND c.relname IN ('frames', 'readings', 'anchors') ORDER BY c.relname`,
      [to],
    );
    expect(keys.rows.map((r) => [r.relname, r.def])).toEqual([
      ['anchors', 'PRIMARY KEY (serial, counter)'],
      ['frames', 'PRIMARY KEY (serial, counter)'],
      ['readings', 'PRIMARY KEY (serial, counter, idx)'],
    ]);
    await expect(admin.query(`INSERT INTO ${to}.frames SELECT * FROM ${to}.frames LIMIT 1`)).rejects.toThrow(/duplicate key/);
    // And the columns' own rules came along (NOT NULL, CHECK).
    await expect(admin.query(`UPDATE ${to}.frames SET frame = NULL`)).rejects.toThrow(/null value/);
    await expect(admin.query(`UPDATE ${to}.readings SET time_source = 'guess'`)).rejects.toThrow(/check constraint/);
  });

  it('reads, replays and new frames work on the converted database', async () => {
    const storage = storages[0]!;
    const ref = await source.open();
    try {
      for (const d of devices) {
        expect(await storage.readings(d.serial, { limit: 1000 })).toEqual(await ref.readings(d.serial, { limit: 1000 }));
        expect(await storage.readings(d.serial, { limit: 5, after: { counter: 10, idx: 1 } })).toEqual(await ref.readings(d.serial, { limit: 5, after: { counter: 10, idx: 1 } }));
        expect(await storage.gaps(d.serial)).toEqual(await ref.gaps(d.serial));
        expect(await storage.frames(d.serial)).toEqual(await ref.frames(d.serial));
      }
      expect(await storage.devices()).toEqual(await ref.devices());
    } finally {
      await ref.close();
    }
    const s = await testServer(storage, fleet, { importFleet: false });
    try {
      const t = s.clock.now;
      for (const d of devices) {
        // A replay of an old frame is a duplicate (the partitioned key found it), and the next frames settle on.
        const replay = d.anchor(9, 0, ANCHOR_BOOT);
        const again = new SealingDevice(d.keys);
        const first = again.anchor(1, 0, ANCHOR_BOOT); // counter 1, byte-identical to the stored one
        const fresh = [replay, d.sample(9, 5, [{ channel: 1, value: 7 }])];
        const r = await s.post(body('relay-b', t, [{ serial: d.serial, frames: [first, ...fresh].map((frame) => ({ frame, rx: t })) }]));
        expect(r.status).toBe(200);
        expect(r.json.devices[0]).toMatchObject({ accepted: 2, duplicates: 1, rejected: [] });
        expect(verifyAck(d.keys, new Uint8Array(Buffer.from(r.json.devices[0].ack, 'base64')))).toBe(d.counter);
        const readings = await storage.readings(d.serial, { limit: 1000 });
        expect(readings.at(-1)).toMatchObject({ counter: d.counter, value: 7 });
      }
    } finally {
      await s.close();
    }
  });
});
