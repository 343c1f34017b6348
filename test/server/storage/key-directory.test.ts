// The key directory (server/storage/key-directory.ts): a node's in-memory
// copy of registry key rows. Alone: it gives back exactly what it holds,
// never a row read before a forget, and keeps what it holds when full. On
// both backends, with a second node on the same database (SQLite: a second
// connection, as a CLI's; PostgreSQL: a second node): a revoke there stops the
// device here at once, even a revoke made by hand in SQL that no node hears
// of; a device registered there is accepted here at once.
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ANCHOR_BOOT, provisionDevice, verifyAck } from '../../../protocol/index.js';
import { checkConfig } from '../../../server/config.js';
import { importManifest, openStorage, revokeDevice, type Storage } from '../../../server/index.js';
import { REASON_UNWRAP, WRAPPED_LENGTH } from '../../../server/keys.js';
import { KeyDirectory } from '../../../server/storage/key-directory.js';
import type { DeviceKeyRow } from '../../../server/storage/types.js';
import { BACKENDS, SealingDevice, body, closeServerFixture, manifestFor, openServerFixture, type Fleet, type TestDb, type TestServer } from '../../helpers/server.js';

const WRAPPED = WRAPPED_LENGTH;

function keyRow(serial: string, n: number, over: Partial<DeviceKeyRow> = {}): DeviceKeyRow {
  return {
    serial,
    ingestKeyId: `ik-${n % 2 === 0 ? 'aaaa' : 'bbbb'}`,
    frameSize: 20 + (n % 3),
    status: 'active',
    settled: n * 1000,
    enc: new Uint8Array(32).fill(n),
    keysWrapped: new Uint8Array(WRAPPED).fill(255 - n),
    ...over,
  };
}

const plain = (r: DeviceKeyRow) => ({ ...r, enc: [...r.enc], keysWrapped: r.keysWrapped && [...r.keysWrapped] });

describe('KeyDirectory', () => {
  it('gives back exactly the rows it holds, as copies, and names every other serial as missing', () => {
    const dir = new KeyDirectory(10);
    const rows = [keyRow('SP-A', 1), keyRow('SP-B', 2, { status: 'revoked' }), keyRow('SP-C', 3, { keysWrapped: null }), keyRow('SP-D', 4, { enc: new Uint8Array(33) })];
    dir.admit(rows, dir.epoch);
    const got = dir.lookup(['SP-A', 'SP-B', 'SP-C', 'SP-D', 'SP-NONE']);
    // Rows without wrapped keys, or with an enc of another size, are not held: they are read every time.
    expect(got.missing).toEqual(['SP-C', 'SP-D', 'SP-NONE']);
    expect(got.rows.map(plain)).toEqual([plain(rows[0]!), plain(rows[1]!)]);
    got.rows[0]!.enc.fill(0);
    expect(plain(dir.lookup(['SP-A']).rows[0]!)).toEqual(plain(rows[0]!));
  });

  it('keeps nothing read before a forget, so a row read before a revoke cannot come back after it', () => {
    const dir = new KeyDirectory(10);
    const before = dir.epoch;
    dir.forget('SP-X'); // a revoke committed while the read was on its way
    dir.admit([keyRow('SP-A', 1)], before);
    expect(dir.lookup(['SP-A']).missing).toEqual(['SP-A']);
    dir.admit([keyRow('SP-A', 1)], dir.epoch);
    expect(dir.lookup(['SP-A']).missing).toEqual([]);
    dir.forget('SP-A');
    expect(dir.lookup(['SP-A']).missing).toEqual(['SP-A']);
    dir.admit([keyRow('SP-A', 1)], dir.epoch);
    dir.clear();
    expect(dir.size).toBe(0);
    expect(dir.lookup(['SP-A']).missing).toEqual(['SP-A']);
  });

  it('keeps what it holds when full (rows read beyond it are not held), across growth of its arrays', () => {
    const n = 3000;
    const dir = new KeyDirectory(2500);
    for (let i = 0; i < n; i++) dir.admit([keyRow(`SP-${i}`, i % 200)], dir.epoch);
    expect(dir.size).toBe(2500);
    const all = Array.from({ length: n }, (_, i) => `SP-${i}`);
    const { rows, missing } = dir.lookup(all);
    // A fleet larger than the directory: junk naming the rest (every one a miss) pushes none of the held rows out.
    expect(missing).toEqual(all.slice(2500));
    expect(rows.map(plain)).toEqual(all.slice(0, 2500).map((s, i) => plain(keyRow(s, i % 200))));
    // A held row read again is updated in place (its watermark moved).
    dir.admit([keyRow('SP-5', 5, { settled: 77 })], dir.epoch);
    expect(dir.lookup(['SP-5']).rows[0]!.settled).toBe(77);
    // A forgotten slot is reused by the next row read, without disturbing the others.
    dir.forget('SP-700');
    dir.admit([keyRow('SP-NEW', 7), keyRow('SP-NEWER', 8)], dir.epoch);
    expect(dir.size).toBe(2500);
    expect(dir.lookup(['SP-699', 'SP-700', 'SP-NEW', 'SP-NEWER', 'SP-701']).missing).toEqual(['SP-700', 'SP-NEWER']);
    expect(plain(dir.lookup(['SP-NEW']).rows[0]!)).toEqual(plain(keyRow('SP-NEW', 7)));
  });
});

describe('key_directory', () => {
  it('holds a million rows unless told otherwise, 0 turns it off, and a wrong value names the setting', () => {
    expect(checkConfig({}).keyDirectory).toBe(1_000_000);
    expect(checkConfig({ key_directory: 0 }).keyDirectory).toBe(0);
    expect(() => checkConfig({ key_directory: -1 })).toThrow(/^config: key_directory must be a whole number from 0 to 100000000, got -1$/);
  });
});

describe.each(BACKENDS)('the key directory on %s, with a second node on the database', (backend) => {
  let db: TestDb;
  let storage: Storage;
  let other: Storage;
  let fleet: Fleet;
  let s: TestServer;
  let next = 0;
  const fresh = () => new SealingDevice(fleet.devices[next++]!);
  const post = (serial: string, frames: Uint8Array[]) => s.post(body('relay-kd', s.clock.now, [{ serial, frames: frames.map((frame) => ({ frame, rx: s.clock.now })) }]));
  const junk = () => new Uint8Array(randomBytes(20));
  /** A device with one frame stored and its row held by this node (a junk request read it after the commit). */
  async function held(): Promise<SealingDevice> {
    const d = fresh();
    expect((await post(d.serial, [d.anchor(1, 0, ANCHOR_BOOT)])).json.devices[0]).toMatchObject({ accepted: 1 });
    expect((await post(d.serial, [junk()])).json.devices[0].rejected).toEqual([{ index: 0, reason: 'frame authentication failed' }]);
    return d;
  }
  /** Revokes behind sealpost's back: an UPDATE on the database, no notification. */
  async function revokeInSql(serial: string): Promise<void> {
    if (backend === 'sqlite') {
      const c = new Database(db.url);
      try {
        c.prepare("UPDATE devices SET status = 'revoked', revoked_at = 1 WHERE serial = ?").run(serial);
      } finally {
        c.close();
      }
      return;
    }
    const u = new URL(db.url);
    const c = new pg.Client({ connectionString: process.env.SEALPOST_TEST_PG_URL });
    await c.connect();
    try {
      await c.query(`UPDATE ${u.searchParams.get('schema')}.devices SET status = 'revoked', revoked_at = 1 WHERE serial = $1`, [serial]);
    } finally {
      await c.end();
    }
  }
  async function setBlobInSql(serial: string, blob: Uint8Array): Promise<void> {
    if (backend === 'sqlite') {
      const c = new Database(db.url);
      try {
        c.prepare('UPDATE devices SET keys_wrapped = ? WHERE serial = ?').run(Buffer.from(blob), serial);
      } finally {
        c.close();
      }
      return;
    }
    const c = new pg.Client({ connectionString: process.env.SEALPOST_TEST_PG_URL });
    await c.connect();
    try {
      await c.query(`UPDATE ${new URL(db.url).searchParams.get('schema')}.devices SET keys_wrapped = $1 WHERE serial = $2`, [Buffer.from(blob), serial]);
    } finally {
      await c.end();
    }
  }
  async function until(what: () => Promise<boolean>, ms = 3000): Promise<boolean> {
    const end = Date.now() + ms;
    for (;;) {
      if (await what()) return true;
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  beforeAll(async () => {
    ({ db, storage, fleet, s } = await openServerFixture(backend));
    other = await db.open();
  });
  afterAll(async () => {
    await other?.close();
    await closeServerFixture({ s, storage, db });
  });

  it('holds the registry from start: a request naming held devices reads no key row from the database', async () => {
    const d = fresh();
    const rows = await storage.deviceKeyRows([d.serial]);
    expect(rows.map((r) => [r.serial, r.status])).toEqual([[d.serial, 'active']]);
    expect(rows[0]!.keysWrapped?.length).toBe(WRAPPED);
    const internal = storage as unknown as { keyRowsFromDb(serials: string[]): Promise<DeviceKeyRow[]> };
    const spy = vi.spyOn(internal, 'keyRowsFromDb');
    try {
      await storage.deviceKeyRows([d.serial]);
      expect(spy).not.toHaveBeenCalled();
      await storage.deviceKeyRows([d.serial, 'SP-NOT-REGISTERED']);
      expect(spy.mock.calls).toEqual([[['SP-NOT-REGISTERED']]]);
    } finally {
      spy.mockRestore();
    }
  });

  it('reads every key row from the database when turned off (key_directory 0), with the same answers', async () => {
    const off = await openStorage(db.url, { keyDirectory: 0, poolSize: 2 });
    try {
      const d = fresh();
      const internal = off as unknown as { keyRowsFromDb(serials: string[]): Promise<DeviceKeyRow[]> };
      const spy = vi.spyOn(internal, 'keyRowsFromDb');
      expect(await off.loadKeyDirectory?.()).toBe(0);
      const rows = await off.deviceKeyRows([d.serial]);
      expect(rows.map(plain)).toEqual((await storage.deviceKeyRows([d.serial])).map(plain));
      await off.deviceKeyRows([d.serial]);
      expect(spy).toHaveBeenCalledTimes(2);
    } finally {
      await off.close();
    }
  });

  it('stops a device revoked on the other node at once: its next genuine frame is refused and nothing of it stored', async () => {
    const d = await held();
    expect(await revokeDevice(other, d.serial, s.clock.now)).toBe('revoked');
    const r = await post(d.serial, [d.sample(1, 5, [{ channel: 1, value: 3 }])]);
    expect(r.json.devices[0]).toEqual({ serial: d.serial, ack: null, accepted: 0, duplicates: 0, rejected: [{ index: 0, reason: 'device revoked' }] });
    expect((await storage.frames(d.serial)).map((f) => f.counter)).toEqual([1]);
    // And junk in its name is answered as the revoke, not as a failed authentication (PostgreSQL: once the NOTIFY arrived).
    expect(await until(async () => (await post(d.serial, [junk()])).json.devices[0].rejected[0].reason === 'device revoked')).toBe(true);
  });

  it('stores nothing of a device revoked by hand in SQL, which no node is told of', async () => {
    const d = await held();
    await revokeInSql(d.serial);
    // SQLite sees another connection's commit (PRAGMA data_version) and reads again; a PostgreSQL node has no way to know.
    expect((await storage.deviceKeyRows([d.serial]))[0]!.status).toBe(backend === 'sqlite' ? 'revoked' : 'active');
    const r = await post(d.serial, [d.sample(1, 5, [{ channel: 1, value: 3 }]), d.sample(1, 6, [{ channel: 1, value: 4 }])]);
    expect(r.json.devices[0]).toMatchObject({ ack: null, accepted: 0, rejected: [{ index: 0, reason: 'device revoked' }, { index: 1, reason: 'device revoked' }] });
    expect((await storage.frames(d.serial)).map((f) => f.counter)).toEqual([1]);
    if (backend === 'postgres') {
      // The operator's way to make every node read the registry again.
      const u = new URL(db.url);
      const c = new pg.Client({ connectionString: process.env.SEALPOST_TEST_PG_URL });
      await c.connect();
      try {
        await c.query('SELECT pg_notify($1, $2)', ['sealpost_key_rows', `${u.searchParams.get('schema')} *`]);
      } finally {
        await c.end();
      }
    }
    expect(await until(async () => (await post(d.serial, [junk()])).json.devices[0].rejected[0].reason === 'device revoked')).toBe(true);
  });

  it('never lets a blob moved into a held row by hand make another device\'s frames count', async () => {
    const victim = await held();
    const donor = fresh();
    const donorRow = (await storage.device(donor.serial))!;
    await setBlobInSql(victim.serial, donorRow.keysWrapped!);
    s.app.keyring.forget(victim.serial);
    const r = await post(victim.serial, [donor.anchor(1, 0, ANCHOR_BOOT)]);
    // SQLite reads the altered row again and finds its blob bound to another row; a PostgreSQL node still
    // holds the genuine blob, under which the donor's frame does not authenticate. Either way nothing counts.
    const reason = backend === 'sqlite' ? REASON_UNWRAP : 'frame authentication failed';
    expect(r.json.devices[0]).toEqual({ serial: victim.serial, ack: null, accepted: 0, duplicates: 0, rejected: [{ index: 0, reason }] });
    expect((await storage.frames(victim.serial)).map((f) => f.counter)).toEqual([1]);
  });

  it('accepts at once a device registered on the other node after this one loaded its directory', async () => {
    // Same ingest and factory keys as the running node's fleet, a new batch, imported through the other node.
    const late = [provisionDevice(fleet.ingest.publicFile.key, `SP-LATE-${backend}`)];
    await importManifest(other, manifestFor(fleet, late, `B-LATE-${backend}`), { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
    const d = new SealingDevice(late[0]!);
    const r = await post(d.serial, [d.anchor(1, 0, ANCHOR_BOOT)]);
    expect(r.json.devices[0]).toMatchObject({ accepted: 1, rejected: [] });
    expect(verifyAck(d.keys, new Uint8Array(Buffer.from(r.json.devices[0].ack, 'base64')))).toBe(1);
  });
});
