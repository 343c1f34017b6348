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
 * The key columns only (KEY_ROW_COLUMNS, or SQLITE_KEY_ROW_COLUMNS with the
 * blobs as hex). The request path reads 100 rows per request, so nothing is
 * copied: a driver's Buffer is a Uint8Array already, and hex decodes into
 * Node's pooled small buffers, cheaper than the separate allocation
 * better-sqlite3 makes per blob.
 */
export function keyRowFromRow(r: Row): DeviceKeyRow {
  return {
    serial: r.serial as string,
    enc: bytesOf(r.enc)!,
    ingestKeyId: r.ingest_key_id as string,
    frameSize: Number(r.frame_size),
    status: r.status as DeviceStatus,
    settled: Number(r.settled),
    keysWrapped: bytesOf(r.keys_wrapped),
  };
}

const bytesOf = (v: unknown): Uint8Array | null => (v === null || v === undefined ? null : typeof v === 'string' ? Buffer.from(v, 'hex') : (v as Buffer));

/** The columns of keyRowFromRow. */
export const KEY_ROW_COLUMNS = 'serial, enc, ingest_key_id, frame_size, status, settled, keys_wrapped';
/** The same for SQLite, blobs as hex; NULL stays NULL (hex(NULL) would be '', which an empty blob also gives). */
export const SQLITE_KEY_ROW_COLUMNS =
  'serial, hex(enc) AS enc, ingest_key_id, frame_size, status, settled, CASE WHEN keys_wrapped IS NULL THEN NULL ELSE hex(keys_wrapped) END AS keys_wrapped';

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
