// The per-device epoch rows of key renewal (migration 5, table device_epochs;
// docs/server.md, "Key renewal"), on both backends. Kept in their own table and
// their own statements, beside the ingest path: an uplink reads them only when
// the server has renewal configured, and writes them in short transactions of
// their own after the request's frames committed (server/renewal.ts).
import type pg from 'pg';
import type { Row } from './rows.js';

export type EpochState = 'pending' | 'committed' | 'frozen';

export interface EpochRow {
  serial: string;
  epoch: number;
  /** The epoch whose key sealed the REKEY frames (and whose chain secret was the PSK). */
  fromEpoch: number;
  ingestKeyId: string;
  enc: Uint8Array;
  /** Seal key and nonce salt, wrapped as devices.keys_wrapped (server/keys.ts). */
  keysWrapped: Uint8Array;
  /** chain_e, wrapped under the same KEK with its own label (server/keys.ts, wrapChain). */
  chainWrapped: Uint8Array;
  state: EpochState;
  /** Counter of the REKEY set's part 0. */
  rekeyCounter: number;
  /** c_e: the first counter under this epoch's key (block start of the first frame it opened). */
  commitCounter: number | null;
  createdAt: number;
  committedAt: number | null;
  /** When the key of fromEpoch stopped opening frames. */
  prevDroppedAt: number | null;
  frozenAt: number | null;
}

/** Devices per epoch, for `sealpost fleet status` and GET /v1/fleet. */
export interface EpochCount {
  epoch: number;
  devices: number;
}

export interface EpochStore {
  /** Every epoch row of these serials (no lock), by serial then epoch. */
  rows(serials: readonly string[]): Promise<EpochRow[]>;
  /** Inserts a pending row; false when (serial, epoch) exists (nothing changed). */
  insertPending(row: EpochRow): Promise<boolean>;
  /** Deletes a pending row (a newer renewal of the device replaced it). */
  deletePending(serial: string, epoch: number): Promise<void>;
  /** pending -> committed with c_e, or a committed row's c_e lowered; no-op for a frozen row. */
  commit(serial: string, epoch: number, commitCounter: number, at: number): Promise<void>;
  /** Any state -> frozen (a second enc for the epoch). */
  freeze(serial: string, epoch: number, at: number): Promise<void>;
  /** Records that the key before this epoch stopped opening frames. */
  dropPrevious(serial: string, epoch: number, at: number): Promise<void>;
  /** The stored REKEY parts of a device with counters in [lo, hi] (frames of type 0x30..0x34; their content names part, bytes and key epoch). */
  rekeyParts(serial: string, lo: number, hi: number): Promise<RekeyPart[]>;
  /** Active devices by the epoch they are on (0: never renewed), and frozen devices. */
  census(): Promise<{ epochs: EpochCount[]; frozen: number; pending: number }>;
}

export interface RekeyPart {
  counter: number;
  part: number;
  bytes: Uint8Array;
  /** The epoch of the key that opened the frame. */
  epoch: number;
}

/** The content JSON the ingest path stores for a REKEY frame (server/ingest/open.ts). */
export function rekeyContent(part: number, bytes: Uint8Array, epoch: number): string {
  return JSON.stringify({ type: 'rekey', part, bytes: Buffer.from(bytes).toString('hex'), key_epoch: epoch });
}

function partsFromRows(rows: Row[]): RekeyPart[] {
  const out: RekeyPart[] = [];
  for (const r of rows) {
    let c: { type?: unknown; part?: unknown; bytes?: unknown; key_epoch?: unknown };
    try {
      c = JSON.parse(r.content as string);
    } catch {
      continue;
    }
    if (c.type !== 'rekey' || typeof c.part !== 'number' || typeof c.bytes !== 'string' || typeof c.key_epoch !== 'number') continue;
    out.push({ counter: Number(r.counter), part: c.part, bytes: new Uint8Array(Buffer.from(c.bytes, 'hex')), epoch: c.key_epoch });
  }
  return out;
}

export function epochFromRow(r: Row): EpochRow {
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    serial: r.serial as string,
    epoch: Number(r.epoch),
    fromEpoch: Number(r.from_epoch),
    ingestKeyId: r.ingest_key_id as string,
    enc: new Uint8Array(r.enc as Buffer),
    keysWrapped: new Uint8Array(r.keys_wrapped as Buffer),
    chainWrapped: new Uint8Array(r.chain_wrapped as Buffer),
    state: r.state as EpochState,
    rekeyCounter: Number(r.rekey_counter),
    commitCounter: n(r.commit_counter),
    createdAt: Number(r.created_at),
    committedAt: n(r.committed_at),
    prevDroppedAt: n(r.prev_dropped_at),
    frozenAt: n(r.frozen_at),
  };
}

const COLUMNS = 'serial, epoch, from_epoch, ingest_key_id, enc, keys_wrapped, chain_wrapped, state, rekey_counter, commit_counter, created_at, committed_at, prev_dropped_at, frozen_at';
const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const values = (r: EpochRow) => [r.serial, r.epoch, r.fromEpoch, r.ingestKeyId, buf(r.enc), buf(r.keysWrapped), buf(r.chainWrapped), r.state, r.rekeyCounter, r.commitCounter, r.createdAt, r.committedAt, r.prevDroppedAt, r.frozenAt];

// The epoch a device is on: its highest committed epoch, 0 without one.
const CENSUS = (serialIn: string) => `
  SELECT COALESCE(e.epoch, 0) AS epoch, COUNT(*) AS devices FROM devices d
  LEFT JOIN (SELECT serial, MAX(epoch) AS epoch FROM device_epochs WHERE state = 'committed' GROUP BY serial) e ON e.serial = d.serial
  WHERE d.status = 'active'${serialIn} GROUP BY COALESCE(e.epoch, 0) ORDER BY 1`;
// Parameters: at, c_e, c_e, serial, epoch.
const COMMIT_SQL = (p: (i: number) => string) => `UPDATE device_epochs SET state = 'committed', committed_at = COALESCE(committed_at, ${p(1)}),
  commit_counter = CASE WHEN commit_counter IS NULL OR commit_counter > ${p(2)} THEN ${p(3)} ELSE commit_counter END
  WHERE serial = ${p(4)} AND epoch = ${p(5)} AND state <> 'frozen'`;

interface SqliteLike {
  prepare(sql: string): { all(...args: unknown[]): unknown[]; run(...args: unknown[]): { changes: number }; get(...args: unknown[]): unknown };
}

/** SQLite: statements on the storage's connection; writes inside its transaction() so they join a group commit. */
export class SqliteEpochs implements EpochStore {
  private readonly s: Record<string, ReturnType<SqliteLike['prepare']>>;

  constructor(
    db: SqliteLike,
    private readonly write: <T>(fn: () => T) => Promise<T>,
    private readonly settle: () => Promise<void>,
  ) {
    const q = () => '?';
    this.s = {
      rows: db.prepare(`SELECT ${COLUMNS} FROM device_epochs WHERE serial IN (SELECT value FROM json_each(?)) ORDER BY serial, epoch`),
      insert: db.prepare(`INSERT INTO device_epochs (${COLUMNS}) VALUES (${Array.from({ length: 14 }, () => '?').join(', ')}) ON CONFLICT (serial, epoch) DO NOTHING`),
      deletePending: db.prepare(`DELETE FROM device_epochs WHERE serial = ? AND epoch = ? AND state = 'pending'`),
      commit: db.prepare(COMMIT_SQL(q)),
      freeze: db.prepare(`UPDATE device_epochs SET state = 'frozen', frozen_at = COALESCE(frozen_at, ?) WHERE serial = ? AND epoch = ?`),
      drop: db.prepare('UPDATE device_epochs SET prev_dropped_at = COALESCE(prev_dropped_at, ?) WHERE serial = ? AND epoch = ?'),
      census: db.prepare(CENSUS('')),
      parts: db.prepare('SELECT counter, content FROM frames WHERE serial = ? AND counter BETWEEN ? AND ? AND type BETWEEN 48 AND 52'),
      frozen: db.prepare(`SELECT COUNT(DISTINCT e.serial) AS n FROM device_epochs e JOIN devices d ON d.serial = e.serial WHERE e.state = 'frozen' AND d.status = 'active'`),
      pending: db.prepare(`SELECT COUNT(DISTINCT e.serial) AS n FROM device_epochs e JOIN devices d ON d.serial = e.serial WHERE e.state = 'pending' AND d.status = 'active'`),
    };
  }

  async rows(serials: readonly string[]): Promise<EpochRow[]> {
    if (serials.length === 0) return [];
    await this.settle();
    return (this.s.rows!.all(JSON.stringify(serials)) as Row[]).map(epochFromRow);
  }
  insertPending(row: EpochRow): Promise<boolean> {
    return this.write(() => this.s.insert!.run(...values(row)).changes === 1);
  }
  async deletePending(serial: string, epoch: number): Promise<void> {
    await this.write(() => this.s.deletePending!.run(serial, epoch));
  }
  async commit(serial: string, epoch: number, commitCounter: number, at: number): Promise<void> {
    await this.write(() => this.s.commit!.run(at, commitCounter, commitCounter, serial, epoch));
  }
  async freeze(serial: string, epoch: number, at: number): Promise<void> {
    await this.write(() => this.s.freeze!.run(at, serial, epoch));
  }
  async dropPrevious(serial: string, epoch: number, at: number): Promise<void> {
    await this.write(() => this.s.drop!.run(at, serial, epoch));
  }
  async rekeyParts(serial: string, lo: number, hi: number): Promise<RekeyPart[]> {
    await this.settle();
    return partsFromRows(this.s.parts!.all(serial, lo, hi) as Row[]);
  }
  async census(): Promise<{ epochs: EpochCount[]; frozen: number; pending: number }> {
    await this.settle();
    const epochs = (this.s.census!.all() as Row[]).map((r) => ({ epoch: Number(r.epoch), devices: Number(r.devices) }));
    return { epochs, frozen: Number((this.s.frozen!.get() as Row).n), pending: Number((this.s.pending!.get() as Row).n) };
  }
}

/** PostgreSQL: single statements on the ingest pool (each its own transaction). */
export class PostgresEpochs implements EpochStore {
  constructor(private readonly pool: pg.Pool) {}

  async rows(serials: readonly string[]): Promise<EpochRow[]> {
    if (serials.length === 0) return [];
    const r = await this.pool.query(`SELECT ${COLUMNS} FROM device_epochs WHERE serial = ANY($1) ORDER BY serial, epoch`, [serials]);
    return (r.rows as Row[]).map(epochFromRow);
  }
  async insertPending(row: EpochRow): Promise<boolean> {
    const r = await this.pool.query(
      `INSERT INTO device_epochs (${COLUMNS}) VALUES (${Array.from({ length: 14 }, (_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (serial, epoch) DO NOTHING`,
      values(row),
    );
    return r.rowCount === 1;
  }
  async deletePending(serial: string, epoch: number): Promise<void> {
    await this.pool.query(`DELETE FROM device_epochs WHERE serial = $1 AND epoch = $2 AND state = 'pending'`, [serial, epoch]);
  }
  async commit(serial: string, epoch: number, commitCounter: number, at: number): Promise<void> {
    await this.pool.query(COMMIT_SQL((i) => `$${i}`), [at, commitCounter, commitCounter, serial, epoch]);
  }
  async freeze(serial: string, epoch: number, at: number): Promise<void> {
    await this.pool.query(`UPDATE device_epochs SET state = 'frozen', frozen_at = COALESCE(frozen_at, $1) WHERE serial = $2 AND epoch = $3`, [at, serial, epoch]);
  }
  async dropPrevious(serial: string, epoch: number, at: number): Promise<void> {
    await this.pool.query('UPDATE device_epochs SET prev_dropped_at = COALESCE(prev_dropped_at, $1) WHERE serial = $2 AND epoch = $3', [at, serial, epoch]);
  }
  async rekeyParts(serial: string, lo: number, hi: number): Promise<RekeyPart[]> {
    const r = await this.pool.query('SELECT counter, content FROM frames WHERE serial = $1 AND counter BETWEEN $2 AND $3 AND type BETWEEN 48 AND 52', [serial, lo, hi]);
    return partsFromRows(r.rows as Row[]);
  }
  async census(): Promise<{ epochs: EpochCount[]; frozen: number; pending: number }> {
    const epochs = ((await this.pool.query(CENSUS(''))).rows as Row[]).map((r) => ({ epoch: Number(r.epoch), devices: Number(r.devices) }));
    const count = async (state: string) =>
      Number(((await this.pool.query(`SELECT COUNT(DISTINCT e.serial) AS n FROM device_epochs e JOIN devices d ON d.serial = e.serial WHERE e.state = $1 AND d.status = 'active'`, [state])).rows[0] as Row).n);
    return { epochs, frozen: await count('frozen'), pending: await count('pending') };
  }
}

/** What a device's epoch rows say for people (API, registry list, dashboard): the epoch it is on and its renewal state. */
export interface EpochView {
  epoch: number;
  /** none: never renewed; pending: RENEW_ACK sent, no frame under the new key yet; committed; frozen: a second enc came. */
  renewal: 'none' | 'pending' | 'committed' | 'frozen';
}

export function epochView(rows: readonly EpochRow[]): EpochView {
  let epoch = 0;
  for (const r of rows) if (r.state === 'committed' && r.epoch > epoch) epoch = r.epoch;
  const renewal = rows.some((r) => r.state === 'frozen') ? 'frozen' : rows.some((r) => r.state === 'pending' && r.fromEpoch === epoch) ? 'pending' : epoch > 0 ? 'committed' : 'none';
  return { epoch, renewal };
}
