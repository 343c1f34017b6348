// One upload and its answer (docs/relay.md, "What the core does"): sending
// a request under a timeout, reading the response, the server's message,
// each device's entry of a 200, and Retry-After.
import { ACK_LEN, MAX_COUNTER } from '../protocol/wire/constants.js';
import { readU32BE } from '../protocol/wire/be.js';
import { fromBase64 } from '../protocol/base64.js';
import { RelayError, type RelayClock, type UplinkRequest, type Uploader } from './contracts.js';
import { clip, errorText } from './log.js';
import { MAX_DOWNLINK_WRITE } from './downlink.js';

/** What the relay keeps of a response: read once, never throwing. */
export interface Answer {
  /** NaN when the response had no numeric status. */
  status: number;
  retryAfter: string | null;
  json: unknown;
  /** Why the body could not be read as JSON, if it could not. */
  jsonError: string | undefined;
}

/** A device's entry in a 200 answer. */
export interface DeviceAnswer {
  ack: Uint8Array | undefined;
  ackN: number;
  accepted: number;
  duplicates: number;
  /** Index of the frame in the device's list -> the server's reason. */
  rejected: Map<number, string>;
  /**
   * Key renewal: the writes of the answer's `downlink` besides the ack (RENEW_ACK, the six parts of
   * ANNOUNCE), in order, each 1..20 bytes; written to the device after the ack (docs/api.md).
   */
  extra: Uint8Array[];
}

/** Most writes a downlink may carry: the ack, RENEW_ACK and six ANNOUNCE parts, with room to spare. */
const MAX_DOWNLINK_WRITES = 16;

/** The writes of `downlink` that are not the 12-byte ack, when every one is base64 of 1..20 bytes; else none. */
function extraWrites(downlink: unknown): Uint8Array[] {
  if (!Array.isArray(downlink) || downlink.length > MAX_DOWNLINK_WRITES) return [];
  const out: Uint8Array[] = [];
  for (const w of downlink) {
    const bytes = typeof w === 'string' && w.length <= 28 ? fromBase64(w) : undefined;
    if (!bytes || bytes.length < 1 || bytes.length > MAX_DOWNLINK_WRITE) return [];
    if (bytes.length !== ACK_LEN) out.push(bytes);
  }
  return out;
}

/**
 * Sends `body` and reads the answer. Rejects on network failure, or with a
 * RelayError when no answer came within `timeoutMs` (aborting the request).
 */
export async function sendRequest(upload: Uploader, body: UplinkRequest, abort: AbortController | undefined, clock: RelayClock, timeoutMs: number): Promise<Answer> {
  let timer: unknown;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => {
      abort?.abort();
      reject(new RelayError(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const exchange = (async (): Promise<Answer> => {
    const res = await upload(body, abort?.signal);
    const status = typeof res?.status === 'number' ? res.status : NaN;
    let retryAfter: string | null = null;
    try {
      retryAfter = res.headers?.get('retry-after') ?? null;
    } catch {
      retryAfter = null;
    }
    let json: unknown;
    let jsonError: string | undefined;
    try {
      json = await res.json();
    } catch (e) {
      jsonError = errorText(e);
    }
    return { status, retryAfter, json, jsonError };
  })();
  // The loser of the race must not surface as an unhandled rejection.
  exchange.catch(() => undefined);
  try {
    return await Promise.race([exchange, timeout]);
  } finally {
    clock.clearTimeout(timer);
  }
}

/** The server's own words for a failed request, clipped, else the status. */
export function serverMessage(a: Answer): string {
  const j = a.json as { message?: unknown; error?: unknown } | null | undefined;
  if (j && typeof j === 'object' && typeof j.message === 'string') return clip(j.message);
  if (j && typeof j === 'object' && typeof j.error === 'string') return clip(j.error);
  return a.jsonError !== undefined ? `HTTP ${a.status}, body not JSON` : `HTTP ${a.status}`;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0;
}

/**
 * Reads a 200 answer to a request that carried `batch` (one group per
 * device, in request order). A device's entry is used only if it is well
 * formed; a device without one keeps its frames queued. An answer that is not
 * an object with a devices array is a string (the reason).
 */
export function parseAnswer(json: unknown, batch: readonly { serial: string; entries: readonly unknown[] }[]): (DeviceAnswer | undefined)[] | string {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return 'not a JSON object';
  const list = (json as { devices?: unknown }).devices;
  if (!Array.isArray(list)) return 'no devices array';
  const bySerial = new Map<string, unknown>();
  for (const item of list.slice(0, 10_000)) {
    const s = (item as { serial?: unknown } | null)?.serial;
    if (typeof s === 'string' && !bySerial.has(s)) bySerial.set(s, item);
  }
  return batch.map((g, i) => {
    const same = (list[i] as { serial?: unknown } | null)?.serial === g.serial ? list[i] : undefined;
    const item = (same ?? bySerial.get(g.serial)) as Record<string, unknown> | undefined;
    if (!item || typeof item !== 'object') return undefined;
    if (!Array.isArray(item.rejected)) return undefined;
    const rejected = new Map<number, string>();
    for (const r of item.rejected.slice(0, 10_000) as { index?: unknown; reason?: unknown }[]) {
      if (r === null || typeof r !== 'object') continue;
      if (typeof r.index !== 'number' || !Number.isInteger(r.index) || r.index < 0 || r.index >= g.entries.length) continue;
      rejected.set(r.index, clip(typeof r.reason === 'string' ? r.reason : 'no reason given'));
    }
    let ack: Uint8Array | undefined;
    let ackN = 0;
    if (typeof item.ack === 'string' && item.ack.length <= 24) {
      const bytes = fromBase64(item.ack);
      if (bytes && bytes.length === ACK_LEN) {
        const n = readU32BE(bytes, 0);
        if (n >= 1 && n <= MAX_COUNTER) {
          ack = bytes;
          ackN = n;
        }
      }
    }
    return { ack, ackN, accepted: count(item.accepted), duplicates: count(item.duplicates), rejected, extra: extraWrites(item.downlink) };
  });
}

/**
 * Retry-After (RFC 9110 section 10.2.3): delay-seconds or an HTTP-date, in ms
 * from `now`; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
