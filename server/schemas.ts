// JSON schemas of the HTTP API (fastify validates with ajv and rejects with
// 400 before a handler runs) and the formatter that turns ajv's errors into
// one message naming the bad field by its path, e.g.
// "body/devices/0/frames/3/data must be a base64 string".
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { SERIAL_RULE, SERIAL_SOURCE } from '../protocol/serial.js';
import type { Limits } from './config.js';

/** Largest base64 text of one frame: 244 bytes -> 328 characters, with room. */
export const MAX_FRAME_BASE64 = 400;
/** Largest time accepted (ms): the end of the ECMAScript Date range. */
export const MAX_TIME_MS = 8_640_000_000_000_000;

const TIME = { type: 'integer', minimum: 0, maximum: MAX_TIME_MS } as const;

export function uplinkSchema(limits: Limits) {
  return {
    body: {
      type: 'object',
      required: ['relay', 'devices'],
      additionalProperties: false,
      properties: {
        relay: {
          type: 'object',
          required: ['id', 'time'],
          additionalProperties: false,
          properties: {
            id: { type: 'string', pattern: '^[\\x21-\\x7e]{1,64}$' },
            time: TIME,
          },
        },
        devices: {
          type: 'array',
          maxItems: limits.devicesPerRequest,
          items: {
            type: 'object',
            required: ['serial', 'frames'],
            additionalProperties: false,
            properties: {
              serial: { type: 'string', minLength: 1, maxLength: 64 },
              frames: {
                type: 'array',
                maxItems: limits.framesPerDevice,
                items: {
                  type: 'object',
                  required: ['data', 'rx'],
                  additionalProperties: false,
                  properties: {
                    data: { type: 'string', maxLength: MAX_FRAME_BASE64 },
                    rx: TIME,
                  },
                },
              },
            },
          },
        },
      },
    },
    response: {
      200: {
        type: 'object',
        properties: {
          devices: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                serial: { type: 'string' },
                ack: { type: ['string', 'null'] },
                downlink: { type: 'array', items: { type: 'string' } },
                accepted: { type: 'integer' },
                duplicates: { type: 'integer' },
                rejected: {
                  type: 'array',
                  items: { type: 'object', properties: { index: { type: 'integer' }, reason: { type: 'string' } } },
                },
              },
            },
          },
        },
      },
    },
  };
}

export const serialParams = {
  type: 'object',
  required: ['serial'],
  properties: { serial: { type: 'string', pattern: SERIAL_SOURCE } },
} as const;

/** Paging of the read API (docs/api.md, "Paging"): the limit is checked against limits.page_max in the handler. */
const PAGE = {
  limit: { type: 'string', pattern: '^[0-9]{1,7}$' },
  cursor: { type: 'string', maxLength: 200 },
} as const;

export const pageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: PAGE,
} as const;

export const readingsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'string', maxLength: 40 },
    to: { type: 'string', maxLength: 40 },
    format: { type: 'string', enum: ['json', 'csv'] },
    ...PAGE,
  },
} as const;

const TIME_MESSAGE = 'must be a time in milliseconds since 1970 (an integer from 0 to 8640000000000000)';

/** Messages by field name, for the keywords that say a value has the wrong shape. */
const FIELD_MESSAGES: Record<string, (e: FastifySchemaValidationError) => string | undefined> = {
  data: (e) =>
    e.keyword === 'maxLength' ? `must be a base64 string of at most ${MAX_FRAME_BASE64} characters (a frame is at most 244 bytes)` : 'must be a base64 string',
  rx: () => TIME_MESSAGE,
  time: () => TIME_MESSAGE,
  id: () => 'must be 1 to 64 printable ASCII characters without spaces',
  serial: (e) =>
    e.keyword === 'pattern' ? `must be a serial: ${SERIAL_RULE}` : 'must be a serial string of 1 to 64 characters',
  devices: (e) => (e.keyword === 'maxItems' ? `must hold at most ${String(e.params.limit)} devices` : 'must be an array of devices'),
  frames: (e) => (e.keyword === 'maxItems' ? `must hold at most ${String(e.params.limit)} frames` : 'must be an array of frames'),
  relay: () => 'must be an object {"id": string, "time": ms}',
  format: () => 'must be "json" or "csv"',
  limit: () => 'must be a whole number',
  cursor: () => 'is not a cursor this server gave out (copy next_cursor exactly); start again without a cursor',
};

/** One message for the first error, naming the field by its path. */
export function formatSchemaError(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const e = errors[0]!;
  const path = `${dataVar}${e.instancePath ?? ''}`;
  let message: string;
  if (e.keyword === 'required') {
    message = `${path}/${String(e.params.missingProperty)} is required`;
  } else if (e.keyword === 'additionalProperties') {
    message = `${path}/${String(e.params.additionalProperty)} is not allowed`;
  } else {
    const field = path.slice(path.lastIndexOf('/') + 1);
    const specific = FIELD_MESSAGES[field]?.(e);
    const generic = e.keyword === 'type' ? `must be ${/^[aeiou]/.test(String(e.params.type)) ? 'an' : 'a'} ${String(e.params.type)}` : e.message;
    message = `${path} ${specific ?? generic}`;
  }
  return Object.assign(new Error(message), { statusCode: 400, validation: errors, validationContext: dataVar });
}
