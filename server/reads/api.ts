// What the read API (server/plugins/devices.ts, docs/api.md) computes apart
// from fastify: query times, the page size asked for, a JSON list around an
// encoded page, and the CSV body streamed page by page from storage.
import { HttpError } from '../errors.js';
import { MAX_TIME_MS } from '../schemas.js';
import type { ReadingKey, Storage } from '../storage/types.js';
import { CSV_HEADER } from './wire.js';

const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** A query time: milliseconds since 1970, or ISO 8601 (a date, or a date-time with a zone). */
export function parseQueryTime(value: string, name: string): number {
  if (/^\d{1,16}$/.test(value) && Number(value) <= MAX_TIME_MS) return Number(value);
  if (ISO.test(value)) {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return t;
  }
  throw new HttpError(
    400,
    `querystring/${name} must be an ISO 8601 time with a zone (e.g. 2026-11-27T10:00:00Z), a date (2026-11-27) or milliseconds since 1970`,
  );
}

/** The page size asked for: `limit`, 1 to limits.page_max; without it 1,000 (or page_max if lower). */
export function pageLimit(max: number, limit: string | undefined): number {
  if (limit === undefined) return Math.min(1_000, max);
  const n = Number(limit);
  if (n < 1 || n > max) throw new HttpError(400, `querystring/limit must be from 1 to ${max} (limits.page_max); follow next_cursor for the next page`);
  return n;
}

/** A JSON list response: head, the page's items, and next_cursor. */
export function listJson(head: Record<string, unknown>, key: string, items: Uint8Array, next: string | null, extra: Record<string, unknown> = {}): Buffer {
  const open = JSON.stringify({ ...head, next_cursor: next, ...extra }).slice(0, -1);
  return Buffer.concat([Buffer.from(`${open},${JSON.stringify(key)}:[`), items, Buffer.from(']}')]);
}

/** Rows of one CSV read from storage at a time: about 70 kB, the most a slow client makes the server hold per stream. */
export const CSV_PAGE = 1_000;

/**
 * The CSV body: the header, then one storage page of CSV_PAGE rows at a
 * time. Readable.from pulls the next page only when the socket took the
 * previous one, so a slow client holds at most a page or two in memory. A
 * read error after the header went out cannot become an error status: the
 * stream fails, the server cuts the connection without the final chunk, and
 * the client sees an incomplete response (docs/api.md, "CSV").
 */
export async function* csvStream(storage: Pick<Storage, 'readPage'>, serial: string, filter: { from?: number; to?: number }, start: ReadingKey | undefined, cap: number) {
  yield Buffer.from(CSV_HEADER);
  let after = start;
  let sent = 0;
  while (sent < cap) {
    const limit = Math.min(CSV_PAGE, cap - sent);
    const page = await storage.readPage({ kind: 'readings', serial, query: { ...filter, limit, ...(after ? { after } : {}) }, format: 'csv' });
    if (page.count > 0) yield page.body;
    sent += page.count;
    if (page.next === null) return;
    after = page.next as ReadingKey;
  }
}
