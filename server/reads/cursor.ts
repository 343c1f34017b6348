// Page cursors of the read API (docs/api.md, "Paging"): keyset positions,
// opaque to clients. A cursor is base64url (RFC 4648 section 5, no padding) of
//
//   version (1) = 1 | list (1) | query tag (6) | position
//
// list: 1 readings, position = counter (float64) || idx (uint32);
//       2 devices,  position = serial (UTF-8, 1 to 64 bytes);
//       3 gaps,     position = first (float64) || id (float64).
// The query tag is the first 6 bytes of SHA-256 over the list and the query
// that made the cursor (serial, from, to), so a cursor handed to another
// device or time range is refused instead of silently skipping rows. It is
// not a secret and needs none: a client that edits a position only moves
// within results it may read anyway.
import { createHash } from 'node:crypto';
import { HttpError } from '../errors.js';
import type { GapKey, ReadingKey } from '../storage/types.js';

const VERSION = 1;
const LISTS = { readings: 1, devices: 2, gaps: 3 } as const;
export type CursorList = keyof typeof LISTS;
const TAG = 6;
const HEAD = 2 + TAG;

/** What binds a cursor to its query. */
export interface CursorScope {
  list: CursorList;
  serial?: string;
  from?: number;
  to?: number;
}

function tag(scope: CursorScope): Buffer {
  const text = [scope.list, scope.serial ?? '', scope.from ?? '', scope.to ?? ''].join('\n');
  return createHash('sha256').update(text).digest().subarray(0, TAG);
}

const START_AGAIN = 'start again without a cursor';

function encode(scope: CursorScope, position: Buffer): string {
  const head = Buffer.alloc(HEAD);
  head[0] = VERSION;
  head[1] = LISTS[scope.list];
  tag(scope).copy(head, 2);
  return Buffer.concat([head, position]).toString('base64url');
}

export function readingsCursor(scope: CursorScope, key: ReadingKey): string {
  const p = Buffer.alloc(12);
  p.writeDoubleBE(key.counter, 0);
  p.writeUInt32BE(key.idx, 8);
  return encode(scope, p);
}

export function devicesCursor(scope: CursorScope, serial: string): string {
  return encode(scope, Buffer.from(serial, 'utf8'));
}

export function gapsCursor(scope: CursorScope, key: GapKey): string {
  const p = Buffer.alloc(16);
  p.writeDoubleBE(key.first, 0);
  p.writeDoubleBE(key.id, 8);
  return encode(scope, p);
}

/** The position in `cursor`, checked against the query it is used with; 400 naming the problem otherwise. */
function decode(cursor: string, scope: CursorScope): Buffer {
  const bytes = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url') : Buffer.alloc(0);
  if (bytes.length <= HEAD || bytes[0] !== VERSION) {
    throw new HttpError(400, `querystring/cursor is not a cursor this server gave out (copy next_cursor exactly); ${START_AGAIN}`);
  }
  if (bytes[1] !== LISTS[scope.list]) {
    throw new HttpError(400, `querystring/cursor belongs to another list than ${scope.list}; ${START_AGAIN}`);
  }
  if (!bytes.subarray(2, HEAD).equals(tag(scope))) {
    throw new HttpError(400, `querystring/cursor belongs to another query (a different device, from or to); ${START_AGAIN}`);
  }
  return bytes.subarray(HEAD);
}

const damaged = (): never => {
  throw new HttpError(400, `querystring/cursor is damaged; ${START_AGAIN}`);
};

const position = (v: number): number => (Number.isSafeInteger(v) && v >= 0 ? v : damaged());

export function parseReadingsCursor(cursor: string, scope: CursorScope): ReadingKey {
  const p = decode(cursor, scope);
  if (p.length !== 12) damaged();
  return { counter: position(p.readDoubleBE(0)), idx: p.readUInt32BE(8) };
}

export function parseDevicesCursor(cursor: string, scope: CursorScope): string {
  const p = decode(cursor, scope);
  const serial = p.toString('utf8');
  if (p.length > 64 || !Buffer.from(serial, 'utf8').equals(p)) damaged();
  return serial;
}

export function parseGapsCursor(cursor: string, scope: CursorScope): GapKey {
  const p = decode(cursor, scope);
  if (p.length !== 16) damaged();
  return { first: position(p.readDoubleBE(0)), id: position(p.readDoubleBE(8)) };
}
