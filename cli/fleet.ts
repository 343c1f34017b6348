// `sealpost fleet status`: how much of the fleet is on the latest epoch, from
// GET /v1/fleet (docs/api.md; docs/decisions.md "Key renewal, item 4" chose the
// API, this is its command-line face). Thin (style.md rule 12): parse, fetch,
// check the answer's shape, print. The token comes from the environment or a
// file, never a flag: a flag shows in the process list (as for `sealpost sim`).
import { readFileSync } from 'node:fs';
import { parseFlags, stringOption, UsageError } from './args.js';

export interface FleetStatus {
  latest_epoch: number;
  epochs: { epoch: number; devices: number }[];
  pending: number;
  frozen: number;
}

const count = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** The body of GET /v1/fleet, checked; throws naming what is not as expected. */
export function parseFleetStatus(body: unknown): FleetStatus {
  const b = body as Partial<Record<keyof FleetStatus, unknown>> | null;
  const bad = (what: string) => new Error(`the server's GET /v1/fleet answer ${what}; is --server a sealpost server of this version?`);
  if (typeof b !== 'object' || b === null) throw bad('is not a JSON object');
  if (!count(b.latest_epoch)) throw bad('has no latest_epoch');
  if (!count(b.pending) || !count(b.frozen)) throw bad('has no pending or frozen count');
  if (!Array.isArray(b.epochs) || !b.epochs.every((e: { epoch?: unknown; devices?: unknown }) => count(e?.epoch) && count(e?.devices))) {
    throw bad('has no epochs list of {epoch, devices}');
  }
  return { latest_epoch: b.latest_epoch, epochs: b.epochs as FleetStatus['epochs'], pending: b.pending, frozen: b.frozen };
}

/** The table an operator reads. */
export function formatFleetStatus(s: FleetStatus): string {
  const total = s.epochs.reduce((a, e) => a + e.devices, 0);
  const there = s.epochs.filter((e) => e.epoch >= s.latest_epoch).reduce((a, e) => a + e.devices, 0);
  const pct = (n: number) => (total === 0 ? '-' : `${((100 * n) / total).toFixed(1)}%`);
  const rows = [...s.epochs].sort((a, b) => a.epoch - b.epoch).map((e) => [String(e.epoch), String(e.devices), pct(e.devices)]);
  const head = ['epoch', 'devices', 'share'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join('  ');
  return [
    `latest epoch ${s.latest_epoch}: ${there} of ${total} devices on it (${pct(there)}); renewals pending ${s.pending}, frozen ${s.frozen}`,
    '',
    line(head),
    ...rows.map(line),
    ...(s.frozen > 0 ? ['', `${s.frozen} device(s) frozen: a second, different key for one epoch; see GET /v1/devices/SERIAL and revoke a captured device`] : []),
  ].join('\n');
}

function tokenFrom(file: string | undefined): string {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`--token-file ${file} cannot be read (${(e as Error).message}); give the file holding a read token`);
    }
    const t = text.trim();
    if (!t) throw new UsageError(`--token-file ${file} is empty; put a token from sealpost token create --role read in it`);
    return t;
  }
  const env = process.env.SEALPOST_TOKEN?.trim();
  if (!env) throw new UsageError('a read token is needed: set SEALPOST_TOKEN or give --token-file FILE (sealpost token create --role read --name NAME makes one)');
  return env;
}

export async function runFleet(args: string[], f: typeof fetch = fetch): Promise<number> {
  const { values, positionals } = parseFlags(args, { server: { type: 'string' }, 'token-file': { type: 'string' }, json: { type: 'boolean' }, token: { type: 'string' } }, 1);
  const sub = positionals[0];
  if (sub !== 'status') throw new UsageError(sub === undefined ? 'say what to do: status' : `unknown fleet command ${JSON.stringify(sub)}; the one there is: status`);
  if (values.token !== undefined) throw new UsageError('--token would show the token in the process list; set SEALPOST_TOKEN or give --token-file FILE instead');
  const server = stringOption(values, 'server');
  if (!server) throw new UsageError('--server URL is required (the ingest server, e.g. http://127.0.0.1:8080)');
  let url: URL;
  try {
    url = new URL('/v1/fleet', server);
  } catch {
    throw new UsageError(`--server must be a URL such as http://127.0.0.1:8080, got ${JSON.stringify(server)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--server must be http:// or https://, got ${url.protocol}`);
  const token = tokenFrom(stringOption(values, 'token-file'));
  let res: Response;
  try {
    res = await f(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach ${url.origin} (${cause?.code ?? cause?.message ?? (e as Error).message}); is the server running there?`);
  }
  if (res.status === 401 || res.status === 403) {
    throw new Error(`${url.origin} refused the token (${res.status}); make a read token with sealpost token create --role read --name NAME`);
  }
  if (!res.ok) throw new Error(`${url.origin} answered GET /v1/fleet with ${res.status} ${res.statusText}; see the server's log`);
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new Error(`${url.origin} answered GET /v1/fleet with something that is not JSON; is --server a sealpost server?`);
  }
  const status = parseFleetStatus(body);
  console.log(values.json ? JSON.stringify(status) : formatFleetStatus(status));
  return 0;
}
