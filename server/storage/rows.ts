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
 * The key rows of a request as TWO text values, `t` and `b`: per row in `t`
 * serial, key id, frame size, status, settled, the length of enc and of
 * keys_wrapped (-1: NULL), joined by spaces (none of them can hold one:
 * serials are [A-Za-z0-9._-], key ids ik-hex); in `b`, in the same row
 * order, hex(enc) then hex(keys_wrapped). Turning a hundred result rows into
 * JavaScript values cost more than finding them (bench/junk-uplink.ts); two
 * strings cost a fraction, and all the blobs decode in one call into one
 * buffer that the rows view. `where` picks the rows.
 */
export function keyRowsQuery(dialect: 'sqlite' | 'postgres', where: string): string {
  const hex = (col: string) => (dialect === 'sqlite' ? `hex(${col})` : `encode(${col}, 'hex')`);
  const len = (col: string) => (dialect === 'sqlite' ? `length(${col})` : `octet_length(${col})`);
  const fields = ['serial', 'ingest_key_id', 'frame_size', 'status', 'settled', len('enc'), `COALESCE(${len('keys_wrapped')}, -1)`];
  const meta = fields.join(` || ' ' || `);
  const blobs = `${hex('enc')} || COALESCE(${hex('keys_wrapped')}, '')`;
  const agg = dialect === 'sqlite' ? 'group_concat' : 'string_agg';
  // Both aggregates take the rows in the same order: they run over the same scan, row by row.
  return `SELECT ${agg}(${meta}, ' ') AS t, ${agg}(${blobs}, '') AS b FROM devices WHERE ${where}`;
}

/** The rows of keyRowsQuery's two values (t null: no row). */
export function keyRowsFromText(t: string | null, b: string | null): DeviceKeyRow[] {
  if (!t) return [];
  const p = t.split(' ');
  if (p.length % 7 !== 0) throw new Error(`key rows text has ${p.length} fields, not a multiple of 7`);
  const blobs = Buffer.from(b ?? '', 'hex');
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
