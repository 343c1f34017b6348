// SQLite's key rows index (migrations.ts, version 7; server/storage/sqlite.ts,
// KEY_ROWS_SQL): a request's key rows are read from devices_key_rows alone,
// and what they say is what the table says, after every kind of write a row
// gets (import with or without wrapped keys, wrapping later, settles,
// revoke), on a fresh database and on one migrated from version 6 with rows
// in it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openStorage, revokeDevice, type Storage } from '../../../server/index.js';
import { WRAPPED_LENGTH } from '../../../server/keys.js';
import { MIGRATIONS } from '../../../server/storage/migrations.js';
import { KEY_ROWS_SQL } from '../../../server/storage/sqlite.js';
import type { DeviceKeyRow, NewDevice } from '../../../server/storage/types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dbFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-keyrows-'));
  dirs.push(dir);
  return join(dir, 'k.db');
}

const plain = (r: DeviceKeyRow) => ({ ...r, enc: Buffer.from(r.enc).toString('hex'), keysWrapped: r.keysWrapped && Buffer.from(r.keysWrapped).toString('hex') });

function device(i: number, wrapped: boolean): NewDevice {
  const enc = new Uint8Array(32).fill(i);
  const row: NewDevice = { serial: `SP-K${String(i).padStart(4, '0')}`, enc, ingestKeyId: i % 2 ? 'ik-00000000000000aa' : 'ik-00000000000000bb', board: 'puckjs', frameSize: 20 + (i % 3), batch: 'KB', registeredAt: 1 };
  return wrapped ? { ...row, keysWrapped: new Uint8Array(WRAPPED_LENGTH).fill(255 - i) } : row;
}

async function fill(storage: Storage, n: number): Promise<string[]> {
  await storage.transaction(async (tx) => {
    await tx.insertBatch({ batch: 'KB', factoryKeyId: 'fk-0000000000000000', ingestKeyId: 'ik-00000000000000aa', board: 'puckjs', frameSize: 20, created: new Date(0).toISOString(), manifestSha256: '0'.repeat(64), devices: n, importedAt: 1 });
    await tx.insertDevices(Array.from({ length: n }, (_, i) => device(i, i % 4 !== 3)));
  });
  return Array.from({ length: n }, (_, i) => device(i, false).serial);
}

/** The key rows as the table says them, row by row (no index involved). */
async function fromTable(storage: Storage, serials: string[]): Promise<DeviceKeyRow[]> {
  const out: DeviceKeyRow[] = [];
  for (const serial of serials) {
    const d = await storage.device(serial);
    if (d) out.push({ serial: d.serial, ingestKeyId: d.ingestKeyId, frameSize: d.frameSize, status: d.status, settled: d.settled, enc: d.enc, keysWrapped: d.keysWrapped });
  }
  return out;
}

async function writeEveryKind(storage: Storage, serials: string[]): Promise<void> {
  // Settles (the watermark moves), a revoke, and keys wrapped later for rows imported without them.
  await storage.transaction(async (tx) => {
    for (const d of await tx.lockDevices(serials.slice(0, 10))) await tx.updateDevice({ ...d, settled: d.settled + 17, maxCounter: 40, frames: 3, lastSeen: 5 });
    await tx.setKeysWrapped([{ serial: serials[3]!, keysWrapped: new Uint8Array(WRAPPED_LENGTH).fill(9) }]);
  });
  expect(await revokeDevice(storage, serials[5]!, 7)).toBe('revoked');
}

describe('SQLite key rows index', () => {
  it("answers a request's key rows from the index alone, a covering search per serial", async () => {
    const file = dbFile();
    const storage = await openStorage(file, { keyDirectory: 0 });
    await storage.close();
    const db = new Database(file, { readonly: true });
    try {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${KEY_ROWS_SQL}`).all('[]') as { detail: string }[]).map((r) => r.detail);
      expect(plan).toContainEqual(expect.stringMatching(/^SEARCH devices USING COVERING INDEX devices_key_rows \(serial=\?\)$/));
    } finally {
      db.close();
    }
  });

  it('says what the table says after imports, settles, a revoke and keys wrapped later; unknown serials give no row', async () => {
    const storage = await openStorage(dbFile(), { keyDirectory: 0 });
    try {
      const serials = await fill(storage, 40);
      const asked = [...serials, 'SP-NOT-REGISTERED'].sort();
      expect((await storage.deviceKeyRows(asked)).map(plain)).toEqual((await fromTable(storage, asked)).map(plain));
      await writeEveryKind(storage, serials);
      const rows = await storage.deviceKeyRows(asked);
      expect(rows.map(plain)).toEqual((await fromTable(storage, asked)).map(plain));
      const bySerial = new Map(rows.map((r) => [r.serial, r]));
      expect(bySerial.get(serials[0]!)!.settled).toBe(17);
      expect(bySerial.get(serials[5]!)!.status).toBe('revoked');
      expect(bySerial.get(serials[7]!)!.keysWrapped).toBeNull();
      expect(Buffer.from(bySerial.get(serials[3]!)!.keysWrapped!).toString('hex')).toBe('09'.repeat(WRAPPED_LENGTH));
      expect(bySerial.has('SP-NOT-REGISTERED')).toBe(false);
    } finally {
      await storage.close();
    }
  });

  it('indexes the rows a database already had when it migrates from version 6', async () => {
    const file = dbFile();
    let storage = await openStorage(file, { keyDirectory: 0 });
    const serials = await fill(storage, 30);
    await writeEveryKind(storage, serials);
    const before = (await fromTable(storage, serials)).map(plain);
    await storage.close();
    // Back to version 6: the index and its record gone, as on a database of the release before.
    const version = MIGRATIONS.find((m) => m.name === 'key rows index (SQLite)')!.version;
    const db = new Database(file);
    db.exec('DROP INDEX devices_key_rows');
    db.prepare('DELETE FROM schema_migrations WHERE version >= ?').run(version);
    db.close();
    storage = await openStorage(file, { keyDirectory: 0 });
    try {
      expect((await storage.deviceKeyRows(serials)).map(plain)).toEqual(before);
    } finally {
      await storage.close();
    }
  });
});
