// sealpost-devices: the read API (docs/api.md): GET /v1/devices,
// /v1/devices/:serial, /v1/devices/:serial/readings (JSON or CSV),
// /v1/devices/:serial/gaps.
//
// Lists are paged by keyset (server/reads/cursor.ts) and each page is read and
// encoded by the storage's readPage, which SQLite runs on its read worker and
// PostgreSQL on its read pool: the event loop that answers uplinks only
// copies the encoded bytes to the socket. CSV streams every matching reading
// page by page as the client takes them (a Readable with backpressure).
// Query parsing and the bodies are server/reads/api.ts; this is the routes.
import { Readable } from 'node:stream';
import fp from 'fastify-plugin';
import { devicesCursor, gapsCursor, parseDevicesCursor, parseGapsCursor, parseReadingsCursor, readingsCursor, type CursorScope } from '../reads/cursor.js';
import { HttpError } from '../errors.js';
import { csvStream, listJson, pageLimit, parseQueryTime } from '../reads/api.js';
import { pageQuery, readingsQuery, serialParams } from '../schemas.js';
import type { GapKey, ReadingKey, ReadingsQuery } from '../storage/types.js';
import { deviceJson } from '../reads/wire.js';
import { epochView } from '../storage/epochs.js';

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
    epoch: { type: 'integer' },
    renewal: { type: 'string' },
  },
} as const;

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
      const limit = pageLimit(app.config.limits.pageMax, request.query.limit);
      const after = request.query.cursor !== undefined ? parseDevicesCursor(request.query.cursor, scope) : undefined;
      const page = await app.storage.readPage({ kind: 'devices', query: { limit, ...(after !== undefined ? { after } : {}) } });
      const next = page.next === null ? null : devicesCursor(scope, page.next as string);
      return reply.type(JSON_TYPE).send(listJson({}, 'devices', page.body, next));
    });

    app.get<{ Params: { serial: string } }>('/v1/devices/:serial', { schema: { params: serialParams, response: { 200: deviceSchema } } }, async (request) => {
      const [d] = await app.storage.devices(request.params.serial);
      if (!d) throw new HttpError(404, `no device with serial ${JSON.stringify(request.params.serial)} is registered`);
      // Key renewal (docs/api.md): the epoch the device is on and its renewal state.
      return { ...deviceJson(d), ...epochView(await app.storage.epochs.rows([d.serial])) };
    });

    // Key renewal across the fleet (docs/api.md, GET /v1/fleet): active devices per epoch, pending and frozen.
    app.get('/v1/fleet', async () => {
      const c = await app.storage.epochs.census();
      return { latest_epoch: app.renewal?.latest ?? 0, epochs: c.epochs, pending: c.pending, frozen: c.frozen };
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
            .send(Readable.from(csvStream(app.storage, serial, filter, after, cap), { objectMode: false, highWaterMark: 1 }));
        }
        const limit = pageLimit(app.config.limits.pageMax, q.limit);
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
        const limit = pageLimit(app.config.limits.pageMax, request.query.limit);
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
