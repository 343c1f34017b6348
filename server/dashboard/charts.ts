// The dashboard's charts: a card per recently seen device with a uPlot chart
// per channel, gaps drawn as hatched bands and listed below. uPlot draws on
// canvas; every text goes in through dom.ts.
import uPlot from 'uplot';
import { READINGS_LIMIT, dataKey, fetchDevice, type Device, type DeviceData, type Gap, type Reading } from './api.js';
import { h, byId, replaceChildren, type Child } from './dom.js';
import { ago, fmtValue, intf, isoTime, nf, pretty, shortTime } from './format.js';

/** One device's card: header, a chart per channel, gap notes below. */
export interface Card {
  root: HTMLElement;
  meta: HTMLElement;
  grid: HTMLElement;
  foot: HTMLElement;
  charts: Map<string, { plot: uPlot; latest: HTMLElement; box: HTMLElement }>;
}

/** What the charts read and keep between refreshes (app.ts owns it). */
export interface ChartState {
  devices: Device[];
  /** Readings and gaps of the charted devices, by serial. */
  data: Map<string, DeviceData>;
  cards: Map<string, Card>;
  range: string;
}

/** Devices that get charts: the most recently seen ones. */
const CHART_DEVICES = 24;
const CHART_HEIGHT = 160;

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

function ensureCard(cards: Map<string, Card>, d: Device): Card {
  let card = cards.get(d.serial);
  if (card) return card;
  const meta = h('div', { class: 'card-meta' });
  const grid = h('div', { class: 'chart-grid' });
  const foot = h('div', { class: 'card-foot' });
  const root = h('article', { class: 'card', 'data-serial': d.serial }, h('header', { class: 'card-head' }, h('h3', {}, d.serial), meta), grid, foot);
  root.id = `device-${d.serial}`;
  card = { root, meta, grid, foot, charts: new Map() };
  cards.set(d.serial, card);
  return card;
}

function renderMeta(cards: Map<string, Card>, d: Device): Card {
  const card = ensureCard(cards, d);
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

function renderCard(cards: Map<string, Card>, d: Device, data: DeviceData): Card {
  const card = renderMeta(cards, d);
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

function chartDevices(devices: Device[]): Device[] {
  return devices
    .filter((d) => d.frames > 0)
    .sort((a, b) => (b.last_seen ?? 0) - (a.last_seen ?? 0) || (a.serial < b.serial ? -1 : 1))
    .slice(0, CHART_DEVICES);
}

/** Cards with charts for the most recently seen devices; fetches the data of those whose data changed. */
export async function renderCharts(state: ChartState): Promise<void> {
  const box = byId('charts');
  const ds = chartDevices(state.devices);
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
  const stale = ds.filter((d) => state.data.get(d.serial)?.key !== dataKey(d, state.range));
  for (let i = 0; i < stale.length; i += 4) {
    const batch = stale.slice(i, i + 4);
    const fetched = await Promise.all(batch.map((d) => fetchDevice(d, state.range).then((data) => [d, data] as const)));
    for (const [d, data] of fetched) state.data.set(d.serial, data);
  }
  ds.forEach((d, i) => {
    const data = state.data.get(d.serial);
    if (!data) return;
    const fresh = !state.cards.has(d.serial);
    // In the page before its charts are made: they take the width of their box.
    const card = ensureCard(state.cards, d);
    if (box.children[i] !== card.root) box.insertBefore(card.root, box.children[i] ?? null);
    if (fresh || stale.includes(d)) renderCard(state.cards, d, data);
    else renderMeta(state.cards, d);
  });
  if (ds.length < state.devices.filter((d) => d.frames > 0).length) {
    let more = box.querySelector<HTMLElement>(':scope > .more');
    if (!more) more = h('p', { class: 'more muted' });
    more.textContent = `Charts show the ${CHART_DEVICES} most recently seen devices; the JSON API has every device’s readings.`;
    box.append(more);
  }
}

export function resizeCharts(cards: Map<string, Card>): void {
  for (const card of cards.values()) {
    for (const c of card.charts.values()) {
      // Shrink first so the grid can narrow, then take the box's width.
      c.plot.setSize({ width: 200, height: CHART_HEIGHT });
      c.plot.setSize({ width: plotWidth(c.box.querySelector<HTMLElement>('.plot')!), height: CHART_HEIGHT });
    }
  }
}
