// sealpost-devices: the read API (docs/api.md): GET /v1/devices,
// /v1/devices/:serial, /v1/devices/:serial/readings (JSON or CSV),
// /v1/devices/:serial/gaps.
//
// Lists are paged by keyset (server/cursor.ts) and each page is read and
// encoded by the storage's readPage, which SQLite runs on its read worker and
// PostgreSQL on its read pool: the event loop that answers uplinks only
// copies the encoded bytes to the socket. CSV streams every matching reading
// page by page as the client takes them (a Readable with backpressure).
import { Readable } from 'node:stream';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { devicesCursor, gapsCursor, parseDevicesCursor, parseGapsCursor, parseReadingsCursor, readingsCursor, type CursorScope } from '../cursor.js';
import { HttpError } from '../errors.js';
import { MAX_TIME_MS, pageQuery, readingsQuery, serialParams } from '../schemas.js';
import type { GapKey, ReadingKey, ReadingsQuery } from '../storage/types.js';
import { CSV_HEADER, deviceJson } from '../wire.js';

export { deviceJson } from '../wire.js';

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

const deviceSchema = {
  type: 'object',
  properties: {
    serial: { type: 'string' },
    board: { type: 'string' },
    batch: { type: 'string' },
    status: { type: 'string' },
    frame_size: { type: 'integer' },
    ingest_key_id: { type: 'string' },
    registered_at: { type: 'integer' },
    last_seen: { type: ['integer', 'null'] },
    battery: { type: ['number', 'null'] },
    frames: { type: 'integer' },
    settled: { type: 'integer' },
    gaps: { type: 'integer' },
    lost: { type: 'integer' },
  },
} as const;

/** Rows of one CSV read from storage at a time: about 70 kB, the most a slow client makes the server hold per stream. */
export const CSV_PAGE = 1_000;

/** The page size asked for: `limit`, 1 to limits.page_max; without it 1,000 (or page_max if lower). */
function pageLimit(app: FastifyInstance, limit: string | undefined): number {
  const max = app.config.limits.pageMax;
  if (limit === undefined) return Math.min(1_000, max);
  const n = Number(limit);
  if (n < 1 || n > max) throw new HttpError(400, `querystring/limit must be from 1 to ${max} (limits.page_max); follow next_cursor for the next page`);
  return n;
}

/** A JSON list response: head, the page's items, and next_cursor. */
function listJson(head: Record<string, unknown>, key: string, items: Uint8Array, next: string | null, extra: Record<string, unknown> = {}): Buffer {
  const open = JSON.stringify({ ...head, next_cursor: next, ...extra }).slice(0, -1);
  return Buffer.concat([Buffer.from(`${open},${JSON.stringify(key)}:[`), items, Buffer.from(']}')]);
}

const JSON_TYPE = 'application/json; charset=utf-8';

export default fp(
  async (app) => {
    const known = async (serial: string) => {
      const d = await app.storage.device(serial);
      if (!d) throw new HttpError(404, `no device with serial ${JSON.stringify(serial)} is registered`);
      return d;
    };

    app.get<{ Querystring: { limit?: string; cursor?: string } }>('/v1/devices', { schema: { querystring: pageQuery } }, async (request, reply) => {
      const scope: CursorScope = { list: 'devices' };
      const limit = pageLimit(app, request.query.limit);
      const after = request.query.cursor !== undefined ? parseDevicesCursor(request.query.cursor, scope) : undefined;
      const page = await app.storage.readPage({ kind: 'devices', query: { limit, ...(after !== undefined ? { after } : {}) } });
      const next = page.next === null ? null : devicesCursor(scope, page.next as string);
      return reply.type(JSON_TYPE).send(listJson({}, 'devices', page.body, next));
    });

    app.get<{ Params: { serial: string } }>('/v1/devices/:serial', { schema: { params: serialParams, response: { 200: deviceSchema } } }, async (request) => {
      const [d] = await app.storage.devices(request.params.serial);
      if (!d) throw new HttpError(404, `no device with serial ${JSON.stringify(request.params.serial)} is registered`);
      return deviceJson(d);
    });

    app.get<{ Params: { serial: string }; Querystring: { from?: string; to?: string; format?: 'json' | 'csv'; limit?: string; cursor?: string } }>(
      '/v1/devices/:serial/readings',
      { schema: { params: serialParams, querystring: readingsQuery } },
      async (request, reply) => {
        const { serial } = request.params;
        const q = request.query;
        const from = q.from !== undefined ? parseQueryTime(q.from, 'from') : undefined;
        const to = q.to !== undefined ? parseQueryTime(q.to, 'to') : undefined;
        if (from !== undefined && to !== undefined && from > to) throw new HttpError(400, 'querystring/from must not be later than querystring/to');
        const scope: CursorScope = { list: 'readings', serial, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
        const after = q.cursor !== undefined ? parseReadingsCursor(q.cursor, scope) : undefined;
        const filter = { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
        if (q.format === 'csv') {
          // CSV is every matching reading (from the cursor on, when given), or the first `limit` of them.
          const cap = q.limit !== undefined ? Number(q.limit) : Infinity;
          if (cap < 1) throw new HttpError(400, 'querystring/limit must be at least 1');
          await known(serial);
          return reply
            .type('text/csv; charset=utf-8')
            .header('content-disposition', `attachment; filename="${serial}-readings.csv"`)
            .send(Readable.from(csvStream(app, serial, filter, after, cap), { objectMode: false, highWaterMark: 1 }));
        }
        const limit = pageLimit(app, q.limit);
        await known(serial);
        const query: ReadingsQuery = { ...filter, limit, ...(after ? { after } : {}) };
        const page = await app.storage.readPage({ kind: 'readings', serial, query, format: 'json' });
        const next = page.next === null ? null : readingsCursor(scope, page.next as ReadingKey);
        // `truncated` (true when more follow) is kept for clients written before next_cursor.
        return reply.type(JSON_TYPE).send(listJson({ serial }, 'readings', page.body, next, { truncated: next !== null }));
      },
    );

    app.get<{ Params: { serial: string }; Querystring: { limit?: string; cursor?: string } }>(
      '/v1/devices/:serial/gaps',
      { schema: { params: serialParams, querystring: pageQuery } },
      async (request, reply) => {
        const { serial } = request.params;
        const scope: CursorScope = { list: 'gaps', serial };
        const limit = pageLimit(app, request.query.limit);
        const after = request.query.cursor !== undefined ? parseGapsCursor(request.query.cursor, scope) : undefined;
        await known(serial);
        const page = await app.storage.readPage({ kind: 'gaps', serial, query: { limit, ...(after ? { after } : {}) } });
        const next = page.next === null ? null : gapsCursor(scope, page.next as GapKey);
        return reply.type(JSON_TYPE).send(listJson({ serial }, 'gaps', page.body, next));
      },
    );
  },
  { name: 'sealpost-devices', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors', 'sealpost-storage'] },
);

/**
 * The CSV body: the header, then one storage page of CSV_PAGE rows at a
 * time. Readable.from pulls the next page only when the socket took the
 * previous one, so a slow client holds at most a page or two in memory. A
 * read error after the header went out cannot become an error status: the
 * stream fails, the server cuts the connection without the final chunk, and
 * the client sees an incomplete response (docs/api.md, "CSV").
 */
async function* csvStream(app: FastifyInstance, serial: string, filter: { from?: number; to?: number }, start: ReadingKey | undefined, cap: number) {
  yield Buffer.from(CSV_HEADER);
  let after = start;
  let sent = 0;
  while (sent < cap) {
    const limit = Math.min(CSV_PAGE, cap - sent);
    const page = await app.storage.readPage({ kind: 'readings', serial, query: { ...filter, limit, ...(after ? { after } : {}) }, format: 'csv' });
    if (page.count > 0) yield page.body;
    sent += page.count;
    if (page.next === null) return;
    after = page.next as ReadingKey;
  }
}
