// The JSON API as the dashboard reads it (docs/api.md): the shapes of
// devices, readings and gaps, and the one fetch helper, getJson, which sends
// the token as `Authorization: Bearer` and turns a 401 into SignedOut. URLs
// are relative, so the page also works behind a proxy under a prefix.
import { SignedOut, session } from './session.js';

export interface Device {
  serial: string;
  board: string;
  batch: string;
  status: string;
  frame_size: number;
  registered_at: number;
  last_seen: number | null;
  battery: number | null;
  frames: number;
  settled: number;
  gaps: number;
  lost: number;
  /** Key renewal: the epoch the device is on, and none / pending / committed / frozen. */
  epoch?: number;
  renewal?: string;
}

/** GET v1/fleet (key renewal): active devices per epoch, pending and frozen. */
export interface FleetEpochs {
  latest_epoch: number;
  epochs: { epoch: number; devices: number }[];
  pending: number;
  frozen: number;
}

export interface Reading {
  counter: number;
  idx: number;
  time: number | null;
  boot: number | null;
  uptime: number | null;
  channel: number;
  name: string;
  unit: string;
  value: number | null;
}

export interface Gap {
  first: number;
  last: number;
  count: number;
  kind: string;
  detected_at: number;
}

export interface DeviceData {
  /** What the data was fetched for: frames, last seen and range. */
  key: string;
  readings: Reading[];
  truncated: boolean;
  gaps: Gap[];
}

/** The most readings fetched for one device's charts. */
export const READINGS_LIMIT = 20_000;
/** The time ranges the page offers, in ms back from now (null: everything). */
export const RANGES: Record<string, number | null> = { '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3, all: null };

export async function getJson<T>(path: string): Promise<T> {
  if (session.token === null) throw new SignedOut('not signed in');
  const r = await fetch(path, { headers: { accept: 'application/json', authorization: `Bearer ${session.token}` }, cache: 'no-store' });
  if (r.status === 401) {
    let why = 'the server refused the token';
    try {
      why = ((await r.json()) as { message?: string }).message ?? why;
    } catch {
      // not JSON: keep the plain reason
    }
    throw new SignedOut(why);
  }
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

const devicePath = (serial: string) => `v1/devices/${encodeURIComponent(serial)}`;

/**
 * Every item of a paged list (docs/api.md, "Paging"), following next_cursor
 * with the server's default page size, up to `max` items; `more` says items
 * were left.
 */
export async function getAll<T>(path: string, key: string, params: Record<string, string> = {}, max = Infinity): Promise<{ items: T[]; more: boolean }> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const q: URLSearchParams = new URLSearchParams(params);
    if (cursor !== null) q.set('cursor', cursor);
    const page: Record<string, unknown> = await getJson<Record<string, unknown>>(`${path}?${q}`);
    items.push(...(page[key] as T[]));
    cursor = page.next_cursor as string | null;
  } while (cursor !== null && items.length < max);
  return { items: items.slice(0, max), more: cursor !== null || items.length > max };
}

/** A device's readings in `range` (up to READINGS_LIMIT) and all its gaps. */
export async function fetchDevice(d: Device, range: string): Promise<DeviceData> {
  const span = RANGES[range] ?? null;
  const [r, g] = await Promise.all([
    getAll<Reading>(`${devicePath(d.serial)}/readings`, 'readings', span !== null ? { from: String(Date.now() - span) } : {}, READINGS_LIMIT),
    getAll<Gap>(`${devicePath(d.serial)}/gaps`, 'gaps'),
  ]);
  return { key: dataKey(d, range), readings: r.items, truncated: r.more, gaps: g.items };
}

/** Changes when the device's data for `range` may have: new frames, newly seen, new gaps. */
export const dataKey = (d: Device, range: string) => `${d.frames}/${d.last_seen}/${d.gaps}/${range}`;
