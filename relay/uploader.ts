// The Uploader for browsers and Node 20: fetch POSTs to /v1/uplink and reads
// the answer up to a size limit (docs/relay.md, "Using the core").
import { RelayError, type Uploader } from './contracts.js';
import { errorText } from './log.js';

export interface FetchUploaderOptions {
  /** Defaults to globalThis.fetch. */
  fetch?: typeof fetch;
  /** Answers longer than this are not read (their json() rejects). Default 1 MiB. */
  maxResponseBytes?: number;
  headers?: Record<string, string>;
  /** Sent as X-Sealpost-Relay-Key, for a server that lists relay keys (docs/api.md, "Relay keys"). */
  relayKey?: string;
}

/**
 * POSTs to `${base}/v1/uplink`. `base` may be a function so the server can
 * move (the chaos test restarts it on a new port).
 */
export function fetchUploader(base: string | (() => string), options: FetchUploaderOptions = {}): Uploader {
  const max = options.maxResponseBytes ?? 1_048_576;
  return async (body, signal) => {
    const f = options.fetch ?? globalThis.fetch;
    const root = (typeof base === 'function' ? base() : base).replace(/\/+$/, '');
    const res = await f(`${root}/v1/uplink`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...options.headers, ...(options.relayKey !== undefined ? { 'x-sealpost-relay-key': options.relayKey } : {}) },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    let text: string | undefined;
    let problem: string | undefined;
    try {
      text = await readLimited(res, max);
    } catch (e) {
      problem = errorText(e);
    }
    return {
      status: res.status,
      headers: res.headers,
      json: async () => {
        if (text === undefined) throw new RelayError(problem ?? 'no body');
        return JSON.parse(text) as unknown;
      },
    };
  };
}

async function readLimited(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new RelayError(`answer of ${declared} bytes is larger than ${max}`);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw new RelayError(`answer larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return new TextDecoder().decode(all);
}
