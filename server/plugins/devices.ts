// sealpost-devices: the read API (docs/api.md): GET /v1/devices,
// /v1/devices/:serial, /v1/devices/:serial/readings (JSON or CSV),
// /v1/devices/:serial/gaps.
import fp from 'fastify-plugin';
import { HttpError } from '../http-error.js';
import { MAX_TIME_MS, readingsQuery, serialParams } from '../schemas.js';
import type { DeviceSummary, StoredReading } from '../storage/types.js';

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
  };
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

const readingSchema = {
  type: 'object',
  properties: {
    counter: { type: 'integer' },
    idx: { type: 'integer' },
    time: { type: ['integer', 'null'] },
    time_source: { type: ['string', 'null'] },
    boot: { type: ['integer', 'null'] },
    uptime: { type: ['integer', 'null'] },
    channel: { type: 'integer' },
    name: { type: 'string' },
    unit: { type: 'string' },
    value: { type: ['number', 'null'] },
  },
} as const;

const CSV_HEADER = 'serial,counter,idx,time,time_ms,boot,uptime,channel,name,unit,value,time_source\n';

function csvField(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function toCsv(rows: StoredReading[]): string {
  let out = CSV_HEADER;
  for (const r of rows) {
    const iso = r.time === null ? '' : new Date(r.time).toISOString();
    out += `${r.serial},${r.counter},${r.idx},${iso},${r.time ?? ''},${r.boot ?? ''},${r.uptime ?? ''},${r.channel},${csvField(r.name)},${csvField(r.unit)},${r.value ?? ''},${r.timeSource ?? ''}\n`;
  }
  return out;
}

export default fp(
  async (app) => {
    const known = async (serial: string) => {
      const d = await app.storage.device(serial);
      if (!d) throw new HttpError(404, `no device with serial ${JSON.stringify(serial)} is registered`);
      return d;
    };

    app.get('/v1/devices', { schema: { response: { 200: { type: 'object', properties: { devices: { type: 'array', items: deviceSchema } } } } } }, async () => ({
      devices: (await app.storage.devices()).map(deviceJson),
    }));

    app.get<{ Params: { serial: string } }>('/v1/devices/:serial', { schema: { params: serialParams, response: { 200: deviceSchema } } }, async (request) => {
      const [d] = await app.storage.devices(request.params.serial);
      if (!d) throw new HttpError(404, `no device with serial ${JSON.stringify(request.params.serial)} is registered`);
      return deviceJson(d);
    });

    app.get<{ Params: { serial: string }; Querystring: { from?: string; to?: string; format?: 'json' | 'csv'; limit?: string } }>(
      '/v1/devices/:serial/readings',
      {
        schema: {
          params: serialParams,
          querystring: readingsQuery,
          response: {
            200: {
              type: 'object',
              properties: { serial: { type: 'string' }, truncated: { type: 'boolean' }, readings: { type: 'array', items: readingSchema } },
            },
          },
        },
      },
      async (request, reply) => {
        const { serial } = request.params;
        const q = request.query;
        const from = q.from !== undefined ? parseQueryTime(q.from, 'from') : undefined;
        const to = q.to !== undefined ? parseQueryTime(q.to, 'to') : undefined;
        if (from !== undefined && to !== undefined && from > to) throw new HttpError(400, 'querystring/from must not be later than querystring/to');
        const max = app.config.limits.readingsPerQuery;
        const limit = q.limit !== undefined ? Number(q.limit) : max;
        if (limit < 1 || limit > max) throw new HttpError(400, `querystring/limit must be from 1 to ${max}`);
        await known(serial);
        const rows = await app.storage.readings(serial, { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), limit });
        if (q.format === 'csv') {
          return reply
            .type('text/csv; charset=utf-8')
            .header('content-disposition', `attachment; filename="${serial}-readings.csv"`)
            .send(toCsv(rows));
        }
        return {
          serial,
          truncated: rows.length === limit,
          readings: rows.map((r) => ({
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
          })),
        };
      },
    );

    app.get<{ Params: { serial: string } }>('/v1/devices/:serial/gaps', { schema: { params: serialParams } }, async (request) => {
      const { serial } = request.params;
      await known(serial);
      return {
        serial,
        gaps: (await app.storage.gaps(serial)).map((g) => ({
          first: g.first,
          last: g.first + g.count - 1,
          count: g.count,
          kind: g.kind,
          detected_at: g.detectedAt,
        })),
      };
    });
  },
  { name: 'sealpost-devices', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors', 'sealpost-storage'] },
);
