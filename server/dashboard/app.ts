// The dashboard page (served at `/` by server/plugins/dashboard.ts, bundled
// with uPlot by esbuild). It reads the JSON API of docs/api.md with relative
// URLs and builds the page with DOM calls only: every string from the server
// goes in as text (textContent, attributes), never as HTML.
//
// Reads need an API token (docs/api.md, "Authentication"). The page asks for
// one before it fetches anything, keeps it in sessionStorage only (this tab,
// gone when it closes), and sends it as `Authorization: Bearer` from the one
// fetch helper, getJson. A token may also arrive in the URL fragment
// (`#token=...`, as `sealpost demo` prints it): fragments never reach the
// server, and the page removes it from the address at once.
import uPlot from 'uplot';

interface Device {
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
}

interface Reading {
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

interface Gap {
  first: number;
  last: number;
  count: number;
  kind: string;
  detected_at: number;
}

interface DeviceData {
  /** What the data was fetched for: frames, last seen and range. */
  key: string;
  readings: Reading[];
  truncated: boolean;
  gaps: Gap[];
}

interface Card {
  root: HTMLElement;
  meta: HTMLElement;
  grid: HTMLElement;
  foot: HTMLElement;
  charts: Map<string, { plot: uPlot; latest: HTMLElement; box: HTMLElement }>;
}

const REFRESH_S = Math.max(2, Number(document.querySelector<HTMLMetaElement>('meta[name="sealpost-refresh"]')?.content) || 10);
/** Devices that get charts: the most recently seen ones. */
const CHART_DEVICES = 24;
const READINGS_LIMIT = 20_000;
const CHART_HEIGHT = 160;
const RANGES: Record<string, number | null> = { '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3, all: null };

const COLORS: Record<string, string> = {
  temperature: '#e4572e',
  battery: '#2a9d8f',
  battery_voltage: '#2a9d8f',
  humidity: '#3a86ff',
  pressure: '#8338ec',
  light: '#f4a259',
  magnetic_x: '#6c757d',
  magnetic_y: '#495057',
  magnetic_z: '#adb5bd',
  acceleration: '#d6336c',
};
const GAP_KIND: Record<string, string> = { 'outbox-overflow': 'outbox overflow', 'power-loss': 'power loss' };

const state = {
  devices: [] as Device[],
  data: new Map<string, DeviceData>(),
  cards: new Map<string, Card>(),
  range: '24h',
  timer: 0 as number | ReturnType<typeof setTimeout>,
  /** Whether the server publishes to MQTT (then GET v1/mqtt has its status). */
  mqtt: document.querySelector<HTMLMetaElement>('meta[name="sealpost-mqtt"]')?.content === 'on',
};

// ---- DOM helpers: text only ----

type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: { class?: string; title?: string; [attr: `data-${string}`]: string } = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

const byId = (id: string): HTMLElement => document.getElementById(id)!;

function replaceChildren(parent: HTMLElement, ...children: Child[]): void {
  parent.replaceChildren(...(children.filter((c) => c !== null && c !== undefined && c !== false) as (Node | string)[]));
}

// ---- formatting ----

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const intf = new Intl.NumberFormat();

function fmtValue(v: number | null, unit: string): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const n = Math.abs(v) >= 100 ? Math.round(v * 10) / 10 : v;
  return unit === '' || unit === 'ratio' ? nf.format(n) : `${nf.format(n)} ${unit}`;
}

function ago(t: number | null, now = Date.now()): string {
  if (t === null) return 'never';
  const s = Math.round((now - t) / 1000);
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

const isoTime = (t: number): string => new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const shortTime = (t: number): string => new Date(t).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
const pretty = (name: string): string => (name.charAt(0).toUpperCase() + name.slice(1)).replace(/_/g, ' ');

// ---- session ----

const TOKEN_KEY = 'sealpost.token';

/** The server refused the token (401): the page signs out and asks again. */
class SignedOut extends Error {}

const session = {
  token: null as string | null,
};

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage blocked: the token lives in this page only
  }
}

function keepToken(token: string | null): void {
  session.token = token;
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage blocked: session.token still holds it until the page closes
  }
}

/** Takes `#token=...` out of the address (history.replaceState: no reload, no history entry) and returns it. */
function tokenFromFragment(): string | null {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search);
  const t = decodeURIComponent(m[1]!).trim();
  return t === '' ? null : t;
}

// ---- data ----

async function getJson<T>(path: string): Promise<T> {
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
async function getAll<T>(path: string, key: string, params: Record<string, string> = {}, max = Infinity): Promise<{ items: T[]; more: boolean }> {
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

async function fetchDevice(d: Device): Promise<DeviceData> {
  const span = RANGES[state.range] ?? null;
  const [r, g] = await Promise.all([
    getAll<Reading>(`${devicePath(d.serial)}/readings`, 'readings', span !== null ? { from: String(Date.now() - span) } : {}, READINGS_LIMIT),
    getAll<Gap>(`${devicePath(d.serial)}/gaps`, 'gaps'),
  ]);
  return { key: dataKey(d), readings: r.items, truncated: r.more, gaps: g.items };
}

const dataKey = (d: Device) => `${d.frames}/${d.last_seen}/${d.gaps}/${state.range}`;

/** The latest battery figure: the server's % when there is one, else the latest battery_voltage reading. */
function battery(d: Device): { text: string; pct: number | null } {
  if (d.battery !== null) return { text: fmtValue(d.battery, '%'), pct: d.battery };
  const rs = state.data.get(d.serial)?.readings ?? [];
  for (let i = rs.length - 1; i >= 0; i--) {
    const r = rs[i]!;
    if (r.name === 'battery_voltage' && r.value !== null) return { text: fmtValue(r.value, r.unit), pct: null };
  }
  return { text: '–', pct: null };
}

// ---- summary and table ----

function renderSummary(): void {
  const ds = state.devices;
  const active = ds.filter((d) => d.status === 'active').length;
  const now = Date.now();
  const recent = ds.filter((d) => d.last_seen !== null && now - d.last_seen < 3600e3).length;
  const frames = ds.reduce((a, d) => a + d.frames, 0);
  const gaps = ds.reduce((a, d) => a + d.gaps, 0);
  const lost = ds.reduce((a, d) => a + d.lost, 0);
  const tile = (label: string, value: string, note: string) =>
    h('div', { class: 'tile' }, h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value' }, value), h('div', { class: 'tile-note' }, note));
  replaceChildren(
    byId('summary'),
    tile('Devices', intf.format(ds.length), `${intf.format(active)} active, ${intf.format(ds.length - active)} revoked`),
    tile('Seen in the last hour', intf.format(recent), `of ${intf.format(ds.length)} devices`),
    tile('Frames stored', intf.format(frames), 'over all devices'),
    tile('Frames lost', intf.format(lost), `in ${intf.format(gaps)} gap${gaps === 1 ? '' : 's'}`),
  );
}

function renderTable(): void {
  const box = byId('devices');
  if (state.devices.length === 0) {
    replaceChildren(
      box,
      h(
        'div',
        { class: 'empty' },
        h('strong', {}, 'No devices yet.'),
        ' Import a signed batch manifest with ',
        h('code', {}, 'sealpost registry import MANIFEST'),
        '; devices appear here at once and fill in as relays deliver their frames.',
      ),
    );
    return;
  }
  const head = h(
    'thead',
    {},
    h(
      'tr',
      {},
      ...['Serial', 'Board', 'Status', 'Last seen', 'Battery', 'Frames', 'Gaps'].map((t, i) => {
        const th = h('th', { class: i >= 5 ? 'num' : '' }, t);
        th.scope = 'col';
        return th;
      }),
    ),
  );
  const now = Date.now();
  const rows = state.devices.map((d) => {
    const link = h('a', { class: 'serial' }, d.serial);
    link.href = `#device-${d.serial}`;
    const b = battery(d);
    const bar = b.pct !== null ? h('span', { class: 'bar', title: b.text }, h('span', { class: b.pct < 20 ? 'fill low' : 'fill' })) : null;
    if (bar) (bar.firstChild as HTMLElement).style.width = `${Math.max(0, Math.min(100, b.pct!))}%`;
    const gaps = d.gaps === 0 ? h('span', { class: 'muted' }, '0') : h('span', { class: 'warn' }, `${intf.format(d.gaps)}`, h('span', { class: 'muted' }, ` · ${intf.format(d.lost)} lost`));
    return h(
      'tr',
      { 'data-serial': d.serial, class: d.status === 'revoked' ? 'revoked' : '' },
      h('td', { 'data-col': 'serial' }, link),
      h('td', { 'data-col': 'board' }, d.board),
      h('td', { 'data-col': 'status' }, h('span', { class: `badge ${d.status === 'active' ? 'ok' : 'off'}` }, d.status)),
      h('td', { 'data-col': 'last-seen', ...(d.last_seen !== null ? { title: isoTime(d.last_seen) } : {}) }, ago(d.last_seen, now)),
      h('td', { 'data-col': 'battery' }, h('span', { class: 'battery' }, bar, h('span', {}, b.text))),
      h('td', { 'data-col': 'frames', class: 'num' }, intf.format(d.frames)),
      h('td', { 'data-col': 'gaps', class: 'num' }, gaps),
    );
  });
  replaceChildren(box, h('table', { class: 'devices' }, head, h('tbody', {}, ...rows)));
}

// ---- charts ----

/** Counter ranges of gaps as time bands, from the readings on either side. */
function gapBands(readings: Reading[], gaps: Gap[]): { from: number; to: number; gap: Gap }[] {
  const timed = readings.filter((r) => r.time !== null);
  if (timed.length === 0) return [];
  const lo = Math.min(...timed.map((r) => r.time!));
  const hi = Math.max(...timed.map((r) => r.time!));
  const bands: { from: number; to: number; gap: Gap }[] = [];
  for (const g of gaps) {
    let before: number | null = null;
    let after: number | null = null;
    for (const r of timed) {
      if (r.counter < g.first && (before === null || r.time! > before)) before = r.time!;
      if (r.counter > g.last && (after === null || r.time! < after)) after = r.time!;
    }
    if (before === null && after === null) continue;
    const from = before ?? lo;
    const to = after ?? hi;
    if (to > from) bands.push({ from, to, gap: g });
  }
  return bands;
}

function chartData(readings: Reading[], name: string, bands: { from: number; to: number }[]): uPlot.AlignedData {
  const pts = readings.filter((r) => r.name === name && r.time !== null).map((r) => [r.time! / 1000, r.value] as [number, number | null]);
  // A null in the middle of each gap breaks the line there (uPlot does not span nulls).
  for (const b of bands) pts.push([(b.from + b.to) / 2000, null]);
  pts.sort((a, b) => a[0] - b[0]);
  return [pts.map((p) => p[0]), pts.map((p) => p[1])];
}

const plotWidth = (box: HTMLElement): number => Math.max(200, box.clientWidth);

let hatch: CanvasPattern | string | null = null;

/** Grey diagonal hatching for gap bands, unlike any series colour. */
function gapPattern(ctx: CanvasRenderingContext2D): CanvasPattern | string {
  if (hatch) return hatch;
  const tile = document.createElement('canvas');
  tile.width = tile.height = 8;
  const t = tile.getContext('2d');
  if (!t) return (hatch = 'rgba(107, 114, 128, 0.12)');
  t.fillStyle = 'rgba(107, 114, 128, 0.07)';
  t.fillRect(0, 0, 8, 8);
  t.strokeStyle = 'rgba(107, 114, 128, 0.38)';
  t.lineWidth = 1;
  t.beginPath();
  t.moveTo(0, 8);
  t.lineTo(8, 0);
  t.moveTo(-2, 2);
  t.lineTo(2, -2);
  t.moveTo(6, 10);
  t.lineTo(10, 6);
  t.stroke();
  return (hatch = ctx.createPattern(tile, 'repeat') ?? 'rgba(107, 114, 128, 0.12)');
}

function makeChart(box: HTMLElement, name: string, unit: string, data: uPlot.AlignedData, bands: { from: number; to: number }[]): uPlot {
  const color = COLORS[name] ?? '#4361ee';
  const axis: uPlot.Axis = {
    stroke: '#6b7280',
    font: '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    grid: { stroke: '#eef0f3', width: 1 },
    ticks: { stroke: '#e5e7eb', width: 1, size: 4 },
  };
  const opts: uPlot.Options = {
    width: plotWidth(box),
    height: CHART_HEIGHT,
    cursor: { drag: { x: true, y: false }, points: { size: 6 } },
    scales: { x: { time: true } },
    legend: { show: true, live: true },
    series: [
      {},
      {
        label: unit && unit !== 'ratio' ? `${pretty(name)} (${unit})` : pretty(name),
        stroke: color,
        width: 1.6,
        fill: `${color}14`,
        spanGaps: false,
        points: { show: data[0].length <= 30, size: 4 },
        // The legend reads "at <time>" for the hovered point, the latest reading otherwise.
        value: (u, v, _s, idx) => {
          if (idx !== null && idx !== undefined) return v === null ? 'gap' : `${fmtValue(v, unit)} at ${shortTime(u.data[0][idx]! * 1000)}`;
          const xs = u.data[0];
          const ys = u.data[1]!;
          for (let i = xs.length - 1; i >= 0; i--) if (ys[i] !== null && ys[i] !== undefined) return `latest at ${shortTime(xs[i]! * 1000)}`;
          return '–';
        },
      },
    ],
    axes: [axis, { ...axis, size: 52, space: 24, values: (_u, vals) => vals.map((v) => nf.format(v)) }],
    hooks: {
      drawClear: [
        (u) => {
          const ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = gapPattern(ctx);
          for (const b of bands) {
            const x0 = Math.max(u.bbox.left, u.valToPos(b.from / 1000, 'x', true));
            const x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(b.to / 1000, 'x', true));
            if (x1 > x0) ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
          }
          ctx.restore();
        },
      ],
    },
  };
  return new uPlot(opts, data, box);
}

function ensureCard(d: Device): Card {
  let card = state.cards.get(d.serial);
  if (card) return card;
  const meta = h('div', { class: 'card-meta' });
  const grid = h('div', { class: 'chart-grid' });
  const foot = h('div', { class: 'card-foot' });
  const root = h('article', { class: 'card', 'data-serial': d.serial }, h('header', { class: 'card-head' }, h('h3', {}, d.serial), meta), grid, foot);
  root.id = `device-${d.serial}`;
  card = { root, meta, grid, foot, charts: new Map() };
  state.cards.set(d.serial, card);
  return card;
}

function renderMeta(d: Device): Card {
  const card = ensureCard(d);
  replaceChildren(
    card.meta,
    h('span', {}, d.board),
    h('span', { class: 'sep' }, '·'),
    h('span', {}, `last seen ${ago(d.last_seen)}`),
    h('span', { class: 'sep' }, '·'),
    h('span', {}, `${intf.format(d.frames)} frames`),
    d.status !== 'active' ? h('span', { class: 'badge off' }, d.status) : null,
  );
  return card;
}

function renderCard(d: Device, data: DeviceData): Card {
  const card = renderMeta(d);
  const names = [...new Set(data.readings.filter((r) => r.time !== null).sort((a, b) => a.channel - b.channel).map((r) => r.name))];
  const bands = gapBands(data.readings, data.gaps);
  for (const [name, c] of card.charts) {
    if (!names.includes(name)) {
      c.plot.destroy();
      c.box.remove();
      card.charts.delete(name);
    }
  }
  if (names.length === 0) {
    replaceChildren(card.grid, h('div', { class: 'empty small' }, data.readings.length > 0 ? 'Readings without a time yet: waiting for the device’s time anchor.' : 'No readings in this range.'));
    for (const c of card.charts.values()) c.plot.destroy();
    card.charts.clear();
  } else {
    for (const el of Array.from(card.grid.children)) if (!(el as HTMLElement).dataset.channel) el.remove();
    names.forEach((name, i) => {
      const rs = data.readings.filter((r) => r.name === name);
      const unit = rs[0]!.unit;
      const cd = chartData(data.readings, name, bands);
      let latest: Reading | undefined;
      for (const r of rs) if (r.time !== null && r.value !== null && (!latest || r.time >= latest.time!)) latest = r;
      let c = card.charts.get(name);
      if (!c) {
        const latestEl = h('span', { class: 'latest' });
        const plotBox = h('div', { class: 'plot' });
        const box = h('figure', { class: 'chart', 'data-channel': name }, h('figcaption', {}, h('span', { class: 'chart-title' }, pretty(name)), latestEl), plotBox);
        const before = card.grid.children[i] ?? null;
        card.grid.insertBefore(box, before);
        c = { plot: makeChart(plotBox, name, unit, cd, bands), latest: latestEl, box };
        card.charts.set(name, c);
      } else {
        // New data, new gap bands (the draw hook holds them): a fresh plot is simplest and cheap.
        c.plot.destroy();
        const plotBox = c.box.querySelector<HTMLElement>('.plot')!;
        plotBox.replaceChildren();
        c.plot = makeChart(plotBox, name, unit, cd, bands);
      }
      c.latest.textContent = latest ? fmtValue(latest.value, unit) : '–';
      if (latest) c.latest.title = `at ${isoTime(latest.time!)}`;
    });
  }

  const notes: Child[] = [];
  if (data.gaps.length > 0) {
    notes.push(
      h(
        'div',
        { class: 'gaps' },
        h('span', { class: 'gaps-label' }, 'Gaps'),
        ...data.gaps.map((g) =>
          h(
            'span',
            { class: 'gap-chip', title: `detected ${isoTime(g.detected_at)}` },
            g.first === g.last ? `frame ${g.first}` : `frames ${g.first}–${g.last}`,
            h('span', { class: 'muted' }, ` · ${intf.format(g.count)} lost, ${GAP_KIND[g.kind] ?? g.kind}`),
          ),
        ),
      ),
    );
  }
  const untimed = data.readings.filter((r) => r.time === null).length;
  if (untimed > 0) notes.push(h('div', { class: 'muted' }, `${intf.format(untimed)} readings wait for a time anchor and are not charted.`));
  if (data.truncated) notes.push(h('div', { class: 'muted' }, `Showing the first ${intf.format(READINGS_LIMIT)} readings of this range; choose a shorter range for the rest.`));
  replaceChildren(card.foot, ...notes);
  return card;
}

function chartDevices(): Device[] {
  return state.devices
    .filter((d) => d.frames > 0)
    .sort((a, b) => (b.last_seen ?? 0) - (a.last_seen ?? 0) || (a.serial < b.serial ? -1 : 1))
    .slice(0, CHART_DEVICES);
}

async function renderCharts(): Promise<void> {
  const box = byId('charts');
  const ds = chartDevices();
  const wanted = new Set(ds.map((d) => d.serial));
  for (const [serial, card] of state.cards) {
    if (wanted.has(serial)) continue;
    for (const c of card.charts.values()) c.plot.destroy();
    card.root.remove();
    state.cards.delete(serial);
    state.data.delete(serial);
  }
  if (ds.length === 0) {
    replaceChildren(
      box,
      h('div', { class: 'empty' }, state.devices.length === 0 ? 'Charts appear here once devices are registered and send readings.' : 'No readings yet: charts appear once a relay delivers frames from a device.'),
    );
    return;
  }
  box.querySelector(':scope > .empty')?.remove();
  // Fetch what changed, a few devices at a time.
  const stale = ds.filter((d) => state.data.get(d.serial)?.key !== dataKey(d));
  for (let i = 0; i < stale.length; i += 4) {
    const batch = stale.slice(i, i + 4);
    const fetched = await Promise.all(batch.map((d) => fetchDevice(d).then((data) => [d, data] as const)));
    for (const [d, data] of fetched) state.data.set(d.serial, data);
  }
  ds.forEach((d, i) => {
    const data = state.data.get(d.serial);
    if (!data) return;
    const fresh = !state.cards.has(d.serial);
    // In the page before its charts are made: they take the width of their box.
    const card = ensureCard(d);
    if (box.children[i] !== card.root) box.insertBefore(card.root, box.children[i] ?? null);
    if (fresh || stale.includes(d)) renderCard(d, data);
    else renderMeta(d);
  });
  if (ds.length < state.devices.filter((d) => d.frames > 0).length) {
    let more = box.querySelector<HTMLElement>(':scope > .more');
    if (!more) more = h('p', { class: 'more muted' });
    more.textContent = `Charts show the ${CHART_DEVICES} most recently seen devices; the JSON API has every device’s readings.`;
    box.append(more);
  }
}

// ---- status, footer, loop ----

function setStatus(ok: boolean, text: string): void {
  const s = byId('status');
  s.className = ok ? 'status ok' : 'status down';
  s.querySelector('.text')!.textContent = text;
}

async function renderFooter(): Promise<void> {
  // The API needs the token in a header, which a plain link cannot send.
  const parts: Child[] = [`Refreshes every ${REFRESH_S} s`, ' · ', 'API: ', h('code', {}, 'v1/devices'), ' with ', h('code', {}, 'Authorization: Bearer TOKEN')];
  if (state.mqtt) {
    try {
      const m = await getJson<{ connected: boolean; broker: string; published: number; queued: number; dropped: number }>('v1/mqtt');
      parts.push(' · ', `MQTT ${m.connected ? 'connected to' : 'not connected to'} ${m.broker}: ${intf.format(m.published)} published, ${intf.format(m.queued)} queued, ${intf.format(m.dropped)} dropped`);
    } catch {
      parts.push(' · ', 'MQTT status unavailable');
    }
  }
  replaceChildren(byId('footer'), ...parts);
}

async function refresh(): Promise<void> {
  clearTimeout(state.timer);
  if (session.token === null) return;
  try {
    state.devices = (await getAll<Device>('v1/devices', 'devices')).items;
    renderSummary();
    await renderCharts();
    renderTable(); // after the charts: battery in volts comes from the readings
    await renderFooter();
    setStatus(true, `updated ${new Date().toLocaleTimeString()}`);
    document.body.dataset.loaded = 'true';
  } catch (e) {
    if (e instanceof SignedOut) {
      signOut(`Signed out: ${e.message}`);
      return;
    }
    setStatus(false, `cannot reach the server (${(e as Error).message}); retrying`);
  }
  state.timer = setTimeout(() => void refresh(), REFRESH_S * 1000);
}

/** Forgets the data shown, so nothing of it stays on screen after signing out. */
function clearData(): void {
  for (const card of state.cards.values()) for (const c of card.charts.values()) c.plot.destroy();
  state.cards.clear();
  state.data.clear();
  state.devices = [];
  for (const id of ['summary', 'devices', 'charts', 'footer']) replaceChildren(byId(id));
  delete document.body.dataset.loaded;
}

function showSignIn(message: string): void {
  byId('data').hidden = true;
  byId('who').hidden = true;
  byId('signin').hidden = false;
  byId('signin-message').textContent = message;
  setStatus(false, 'not signed in');
  document.body.dataset.signedIn = 'false';
  (byId('token-input') as HTMLInputElement).focus();
}

function signOut(message: string): void {
  clearTimeout(state.timer);
  keepToken(null);
  clearData();
  showSignIn(message);
}

/** Checks the token with GET v1/session, then shows who is signed in and starts the refresh loop. */
async function signIn(token: string): Promise<void> {
  keepToken(token);
  try {
    const who = await getJson<{ name: string; role: string }>('v1/session');
    byId('who-name').textContent = who.name;
    byId('who-role').textContent = who.role;
  } catch (e) {
    if (e instanceof SignedOut) signOut(`That token was refused: ${e.message}`);
    else {
      keepToken(null);
      showSignIn(`Cannot reach the server (${(e as Error).message}); try again.`);
    }
    return;
  }
  byId('signin').hidden = true;
  byId('signin-message').textContent = '';
  byId('who').hidden = false;
  byId('data').hidden = false;
  document.body.dataset.signedIn = 'true';
  void refresh();
}

function resizeCharts(): void {
  for (const card of state.cards.values()) {
    for (const c of card.charts.values()) {
      // Shrink first so the grid can narrow, then take the box's width.
      c.plot.setSize({ width: 200, height: CHART_HEIGHT });
      c.plot.setSize({ width: plotWidth(c.box.querySelector<HTMLElement>('.plot')!), height: CHART_HEIGHT });
    }
  }
}

function start(): void {
  const select = byId('range') as HTMLSelectElement;
  const fromUrl = new URLSearchParams(location.search).get('range');
  if (fromUrl !== null && fromUrl in RANGES) select.value = fromUrl;
  state.range = select.value;
  select.addEventListener('change', () => {
    state.range = select.value;
    const u = new URL(location.href);
    u.searchParams.set('range', state.range);
    history.replaceState(null, '', u);
    void refresh();
  });
  let pending = 0 as number | ReturnType<typeof setTimeout>;
  window.addEventListener('resize', () => {
    clearTimeout(pending);
    pending = setTimeout(resizeCharts, 150);
  });

  const input = byId('token-input') as HTMLInputElement;
  byId('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault(); // nothing is submitted anywhere (the CSP has form-action 'none')
    const token = input.value.trim();
    input.value = '';
    if (token === '') showSignIn('Paste a token first.');
    else void signIn(token);
  });
  byId('signout').addEventListener('click', () => signOut('Signed out. The token is forgotten in this tab.'));

  const token = tokenFromFragment() ?? storedToken();
  if (token === null) showSignIn('');
  else void signIn(token);
}

start();
