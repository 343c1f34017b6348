// The read API's wire format in one place (docs/api.md): how a stored device,
// reading or gap becomes a JSON object or a CSV line, and how one page of
// them is encoded. Both the HTTP plugin and the SQLite read worker
// (server/storage/read-worker.ts) use it, so a field added to readings is
// added here once and shows up in JSON, CSV and every backend alike.
import type { DeviceSummary, EncodedPage, GapRow, PageRequest, ReadingsQuery, StoredReading } from '../storage/types.js';

export function deviceJson(d: DeviceSummary) {
  return {
    serial: d.serial,
    board: d.board,
    batch: d.batch,
    status: d.status,
    frame_size: d.frameSize,
    ingest_key_id: d.ingestKeyId,
    registered_at: d.registeredAt,
    last_seen: d.lastSeen,
    battery: d.battery,
    frames: d.frames,
    settled: d.settled,
    gaps: d.gaps,
    lost: d.lost,
    epoch: d.epoch,
    renewal: d.renewal,
  };
}

export function readingJson(r: StoredReading) {
  return {
    counter: r.counter,
    idx: r.idx,
    time: r.time,
    time_source: r.timeSource,
    boot: r.boot,
    uptime: r.uptime,
    channel: r.channel,
    name: r.name,
    unit: r.unit,
    value: r.value,
  };
}

export function gapJson(g: GapRow) {
  return { first: g.first, last: g.first + g.count - 1, count: g.count, kind: g.kind, detected_at: g.detectedAt };
}

export const CSV_HEADER = 'serial,counter,idx,time,time_ms,boot,uptime,channel,name,unit,value,time_source\n';

function csvField(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export function readingCsv(r: StoredReading): string {
  const iso = r.time === null ? '' : new Date(r.time).toISOString();
  return `${r.serial},${r.counter},${r.idx},${iso},${r.time ?? ''},${r.boot ?? ''},${r.uptime ?? ''},${r.channel},${csvField(r.name)},${csvField(r.unit)},${r.value ?? ''},${r.timeSource ?? ''}\n`;
}

/** The storage reads encodePage needs (the in-process methods of a backend). */
export interface PageSource {
  readings(serial: string, query: ReadingsQuery): Promise<StoredReading[]>;
  devicesPage(query: { after?: string; limit: number }): Promise<DeviceSummary[]>;
  gaps(serial: string, query: { after?: { first: number; id: number }; limit: number }): Promise<GapRow[]>;
}

const joinJson = (items: unknown[]): Buffer => Buffer.from(JSON.stringify(items).slice(1, -1));

/**
 * Reads one page and encodes it. Asks for one row more than the limit: when
 * it comes, there is a next page and `next` is the position of the last row
 * kept, so the last page says so itself (no empty page to fetch).
 */
export async function encodePage(source: PageSource, request: PageRequest): Promise<EncodedPage> {
  const limit = request.query.limit;
  if (request.kind === 'readings') {
    const rows = await source.readings(request.serial, { ...request.query, limit: limit + 1 });
    const page = rows.length > limit ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    const body = request.format === 'csv' ? Buffer.from(page.map(readingCsv).join('')) : joinJson(page.map(readingJson));
    return { body, count: page.length, next: rows.length > limit && last ? { counter: last.counter, idx: last.idx } : null };
  }
  if (request.kind === 'devices') {
    const rows = await source.devicesPage({ ...request.query, limit: limit + 1 });
    const page = rows.length > limit ? rows.slice(0, limit) : rows;
    return { body: joinJson(page.map(deviceJson)), count: page.length, next: rows.length > limit ? page[page.length - 1]!.serial : null };
  }
  const rows = await source.gaps(request.serial, { ...request.query, limit: limit + 1 });
  const page = rows.length > limit ? rows.slice(0, limit) : rows;
  const last = page[page.length - 1];
  return { body: joinJson(page.map(gapJson)), count: page.length, next: rows.length > limit && last ? { first: last.first, id: last.id } : null };
}
