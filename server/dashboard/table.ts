// The summary tiles and the device table of the dashboard.
import type { Device, DeviceData, FleetEpochs } from './api.js';
import { h, byId, replaceChildren } from './dom.js';
import { ago, fmtValue, intf, isoTime } from './format.js';

/** The latest battery figure: the server's % when there is one, else the latest battery_voltage reading. */
function battery(d: Device, data: ReadonlyMap<string, DeviceData>): { text: string; pct: number | null } {
  if (d.battery !== null) return { text: fmtValue(d.battery, '%'), pct: d.battery };
  const rs = data.get(d.serial)?.readings ?? [];
  for (let i = rs.length - 1; i >= 0; i--) {
    const r = rs[i]!;
    if (r.name === 'battery_voltage' && r.value !== null) return { text: fmtValue(r.value, r.unit), pct: null };
  }
  return { text: '–', pct: null };
}

/** The tiles above the table: devices, seen in the last hour, frames stored, frames lost; and key renewal when the fleet has renewed. */
export function renderSummary(ds: Device[], fleet?: FleetEpochs): void {
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
    ...(fleet && fleet.latest_epoch > 0 ? [renewalTile(fleet, tile)] : []),
  );
}

/** Key renewal: how many active devices are on the latest epoch, the rest by epoch, and frozen devices (an operator must look). */
function renewalTile(f: FleetEpochs, tile: (label: string, value: string, note: string) => HTMLElement): HTMLElement {
  const total = f.epochs.reduce((a, e) => a + e.devices, 0);
  const onLatest = f.epochs.find((e) => e.epoch === f.latest_epoch)?.devices ?? 0;
  const rest = f.epochs.filter((e) => e.epoch !== f.latest_epoch).map((e) => `${intf.format(e.devices)} on ${e.epoch}`);
  const note = [...rest, ...(f.pending > 0 ? [`${intf.format(f.pending)} renewing`] : []), ...(f.frozen > 0 ? [`${intf.format(f.frozen)} FROZEN`] : [])].join(', ');
  const t = tile(`On key epoch ${f.latest_epoch}`, `${intf.format(onLatest)} of ${intf.format(total)}`, note || 'the whole fleet');
  t.dataset.tile = 'renewal';
  if (f.frozen > 0) t.classList.add('warn');
  return t;
}

/** The device table; `data` (the charts' readings) gives battery voltages when the server has no %. */
export function renderTable(devices: Device[], data: ReadonlyMap<string, DeviceData>): void {
  const box = byId('devices');
  if (devices.length === 0) {
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
  // Key renewal: an epoch column once any device has renewed (or tried to).
  const renewed = devices.some((d) => (d.epoch ?? 0) > 0 || (d.renewal ?? 'none') !== 'none');
  const head = h(
    'thead',
    {},
    h(
      'tr',
      {},
      ...['Serial', 'Board', 'Status', 'Last seen', 'Battery', 'Frames', 'Gaps', ...(renewed ? ['Key epoch'] : [])].map((t, i) => {
        const th = h('th', { class: i >= 5 ? 'num' : '' }, t);
        th.scope = 'col';
        return th;
      }),
    ),
  );
  const now = Date.now();
  const rows = devices.map((d) => {
    const renewal = d.renewal ?? 'none';
    const epochCell = renewed
      ? [h('td', { 'data-col': 'epoch', class: 'num' }, String(d.epoch ?? 0), ...(renewal === 'frozen' || renewal === 'pending' ? [' ', h('span', { class: `badge ${renewal === 'frozen' ? 'off' : 'ok'}` }, renewal)] : []))]
      : [];
    const link = h('a', { class: 'serial' }, d.serial);
    link.href = `#device-${d.serial}`;
    const b = battery(d, data);
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
      ...epochCell,
    );
  });
  replaceChildren(box, h('table', { class: 'devices' }, head, h('tbody', {}, ...rows)));
}
