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
 * The key rows of a request as ONE text value: per row serial, key id, frame
 * size, status, settled, hex(enc), hex(keys_wrapped) or '-' for NULL, all
 * joined by spaces (none of them can hold one: serials are [A-Za-z0-9._-],
 * key ids ik-hex). Turning a hundred result rows into JavaScript values cost
 * more than finding them (bench/junk-uplink.ts); one string costs half, and
 * hex decodes into Node's pooled small buffers, cheaper than the separate
 * allocation a driver makes per blob.
 * `where` picks the rows.
 */
export function keyRowsQuery(dialect: 'sqlite' | 'postgres', where: string): string {
  const hex = (col: string) => (dialect === 'sqlite' ? `hex(${col})` : `encode(${col}, 'hex')`);
  const fields = ['serial', 'ingest_key_id', 'frame_size', 'status', 'settled', hex('enc'), `CASE WHEN keys_wrapped IS NULL THEN '-' ELSE ${hex('keys_wrapped')} END`];
  const row = fields.join(` || ' ' || `);
  return dialect === 'sqlite' ? `SELECT group_concat(${row}, ' ') AS t FROM devices WHERE ${where}` : `SELECT string_agg(${row}, ' ') AS t FROM devices WHERE ${where}`;
}

/** The rows of keyRowsQuery's value (null: no row). */
export function keyRowsFromText(text: string | null): DeviceKeyRow[] {
  if (!text) return [];
  const p = text.split(' ');
  if (p.length % 7 !== 0) throw new Error(`key rows text has ${p.length} fields, not a multiple of 7`);
  const rows: DeviceKeyRow[] = new Array(p.length / 7);
  for (let i = 0, r = 0; i < p.length; i += 7, r++) {
    rows[r] = {
      serial: p[i]!,
      ingestKeyId: p[i + 1]!,
      frameSize: Number(p[i + 2]),
      status: p[i + 3] as DeviceStatus,
      settled: Number(p[i + 4]),
      enc: Buffer.from(p[i + 5]!, 'hex'),
      keysWrapped: p[i + 6] === '-' ? null : Buffer.from(p[i + 6]!, 'hex'),
    };
  }
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
