// Row mappers shared by both backends: snake_case columns to the typed rows of
// types.ts. Numbers go through Number() because PostgreSQL's driver hands
// some aggregates over as strings unless told otherwise.
import type { BatchRow, DeviceKeyRow, DeviceRow, DeviceStatus, DeviceSummary, GapKind, GapRow, StoredFrame, StoredReading, TimeSource, TokenInfo, TokenRole } from './types.js';

export type Row = Record<string, unknown>;

export function deviceFromRow(r: Row): DeviceRow {
  return {
    serial: r.serial as string,
    enc: new Uint8Array(r.enc as Buffer),
    ingestKeyId: r.ingest_key_id as string,
    board: r.board as string,
    frameSize: Number(r.frame_size),
    batch: r.batch as string,
    status: r.status as DeviceStatus,
    registeredAt: Number(r.registered_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    frames: Number(r.frames),
    lastSeen: r.last_seen === null ? null : Number(r.last_seen),
    settled: Number(r.settled),
    maxCounter: Number(r.max_counter),
    bootFloor: Number(r.boot_floor),
    gapHi: Number(r.gap_hi),
    battery: r.battery === null ? null : Number(r.battery),
    batteryCounter: Number(r.battery_counter),
    keysWrapped: r.keys_wrapped === null || r.keys_wrapped === undefined ? null : new Uint8Array(r.keys_wrapped as Buffer),
  };
}

/**
 * The key rows of a request as two values: `t`, per row serial, key id,
 * frame size, status, settled, the length of enc and of keys_wrapped (-1:
 * NULL), joined by spaces (none of them can hold one: serials are
 * [A-Za-z0-9._-], key ids ik-hex); and `b`, one blob of every row's enc then
 * keys_wrapped, in the same row order (both aggregates run over the same
 * scan, row by row). Turning a hundred result rows into JavaScript values
 * cost more than finding them (bench/junk-uplink.ts); a string and a blob
 * cost a fraction, and the rows view the one buffer the driver made.
 * SQLite concatenates blobs as text of the same bytes (a UTF-8 database
 * converts nothing; sqlite.ts refuses any other encoding) and the CAST gives
 * those bytes back as a blob; PostgreSQL has string_agg over bytea.
 * `from` names the rows: a FROM clause and its WHERE, if any. On SQLite the
 * two per-row expressions are exactly those the index KEY_ROWS_INDEX stores
 * (migrations.ts, version 7), so a search of it reads them from the index.
 */
/** SQLite's index of the key rows' two per-row values (migrations.ts, version 7). */
export const KEY_ROWS_INDEX = 'devices_key_rows';

export function keyRowsQuery(dialect: 'sqlite' | 'postgres', from: string): string {
  const len = (col: string) => (dialect === 'sqlite' ? `length(${col})` : `octet_length(${col})`);
  const fields = ['serial', 'ingest_key_id', 'frame_size', 'status', 'settled', len('enc'), `COALESCE(${len('keys_wrapped')}, -1)`];
  const meta = fields.join(` || ' ' || `);
  const blobs =
    dialect === 'sqlite'
      ? `CAST(group_concat(enc || COALESCE(keys_wrapped, x''), '') AS BLOB)`
      : `string_agg(enc || COALESCE(keys_wrapped, ''::bytea), ''::bytea)`;
  const agg = dialect === 'sqlite' ? 'group_concat' : 'string_agg';
  return `SELECT ${agg}(${meta}, ' ') AS t, ${blobs} AS b ${from}`;
}

/** keyRowsQuery plus `last`, the greatest serial of the rows (the next page starts after it), in the database's own order. */
export function keyRowsPageQuery(dialect: 'sqlite' | 'postgres', from: string): string {
  return keyRowsQuery(dialect, from).replace(/ AS b FROM /, ' AS b, max(serial) AS last FROM ');
}

/** The rows of keyRowsQuery's two values (t null: no row). */
export function keyRowsFromText(t: string | null, b: Uint8Array | null): DeviceKeyRow[] {
  if (!t) return [];
  const p = t.split(' ');
  if (p.length % 7 !== 0) throw new Error(`key rows text has ${p.length} fields, not a multiple of 7`);
  const blobs = b ?? new Uint8Array(0);
  const rows: DeviceKeyRow[] = new Array(p.length / 7);
  let at = 0;
  for (let i = 0, r = 0; i < p.length; i += 7, r++) {
    const enc = blobs.subarray(at, (at += Number(p[i + 5])));
    const wrapped = Number(p[i + 6]);
    const keysWrapped = wrapped < 0 ? null : blobs.subarray(at, (at += wrapped));
    rows[r] = { serial: p[i]!, ingestKeyId: p[i + 1]!, frameSize: Number(p[i + 2]), status: p[i + 3] as DeviceStatus, settled: Number(p[i + 4]), enc, keysWrapped };
  }
  if (at !== blobs.length) throw new Error(`key rows carry ${blobs.length} bytes of enc and keys_wrapped, their lengths say ${at}`);
  return rows;
}

export function summaryFromRow(r: Row): DeviceSummary {
  return {
    serial: r.serial as string,
    board: r.board as string,
    batch: r.batch as string,
    status: r.status as DeviceStatus,
    frameSize: Number(r.frame_size),
    ingestKeyId: r.ingest_key_id as string,
    registeredAt: Number(r.registered_at),
    frames: Number(r.frames),
    lastSeen: r.last_seen === null ? null : Number(r.last_seen),
    settled: Number(r.settled),
    battery: r.battery === null ? null : Number(r.battery),
    gaps: Number(r.gaps ?? 0),
    lost: Number(r.lost ?? 0),
    epoch: Number(r.epoch ?? 0),
    renewal: (r.renewal as DeviceSummary['renewal'] | undefined) ?? 'none',
  };
}

export function gapFromRow(r: Row): GapRow {
  return {
    id: Number(r.id),
    serial: r.serial as string,
    first: Number(r.first),
    count: Number(r.count),
    kind: r.kind as GapKind,
    detectedAt: Number(r.detected_at),
  };
}

export function batchFromRow(r: Row): BatchRow {
  return {
    batch: r.batch as string,
    factoryKeyId: r.factory_key_id as string,
    ingestKeyId: r.ingest_key_id as string,
    board: r.board as string,
    frameSize: Number(r.frame_size),
    created: r.created as string,
    manifestSha256: r.manifest_sha256 as string,
    devices: Number(r.devices),
    importedAt: Number(r.imported_at),
  };
}

export function readingFromRow(r: Row): StoredReading {
  return {
    serial: r.serial as string,
    counter: Number(r.counter),
    idx: Number(r.idx),
    channel: Number(r.channel),
    name: r.name as string,
    unit: r.unit as string,
    value: r.value === null ? null : Number(r.value),
    boot: r.boot === null ? null : Number(r.boot),
    uptime: r.uptime === null ? null : Number(r.uptime),
    time: r.time === null ? null : Number(r.time),
    timeSource: r.time === null ? null : ((r.time_source ?? 'relay') as TimeSource),
  };
}

export function frameFromRow(r: Row): StoredFrame {
  return {
    serial: r.serial as string,
    counter: Number(r.counter),
    frame: new Uint8Array(r.frame as Buffer),
    type: Number(r.type),
    content: r.content as string,
    relay: r.relay as string,
    relayTime: Number(r.relay_time),
    rx: Number(r.rx),
    received: Number(r.received),
  };
}

export function tokenFromRow(r: Row): TokenInfo {
  return { name: r.name as string, role: r.role as TokenRole, createdAt: Number(r.created_at), lastUsed: r.last_used === null ? null : Number(r.last_used) };
}
