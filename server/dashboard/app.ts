// The dashboard page (served at `/` by server/plugins/dashboard.ts, bundled
// with uPlot by esbuild from this entry). It reads the JSON API of
// docs/api.md with relative URLs (api.ts) and builds the page with DOM calls
// only (dom.ts): every string from the server goes in as text (textContent,
// attributes), never as HTML.
//
// This module is the page's life: sign-in and sign-out, the refresh loop,
// the status line and the footer. Reads need an API token (docs/api.md,
// "Authentication"); the page asks for one before it fetches anything
// (session.ts keeps it). The tiles and table are table.ts, the charts
// charts.ts.
import { RANGES, getAll, getJson, type Device, type DeviceData, type FleetEpochs } from './api.js';
import { renderCharts, resizeCharts, type Card } from './charts.js';
import { h, byId, replaceChildren, type Child } from './dom.js';
import { intf } from './format.js';
import { SignedOut, keepToken, session, storedToken, tokenFromFragment } from './session.js';
import { renderSummary, renderTable } from './table.js';

const REFRESH_S = Math.max(2, Number(document.querySelector<HTMLMetaElement>('meta[name="sealpost-refresh"]')?.content) || 10);

const state = {
  devices: [] as Device[],
  data: new Map<string, DeviceData>(),
  cards: new Map<string, Card>(),
  range: '24h',
  timer: 0 as number | ReturnType<typeof setTimeout>,
  /** Whether the server publishes to MQTT (then GET v1/mqtt has its status). */
  mqtt: document.querySelector<HTMLMetaElement>('meta[name="sealpost-mqtt"]')?.content === 'on',
};

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
    const [devices, fleet] = await Promise.all([getAll<Device>('v1/devices', 'devices'), getJson<FleetEpochs>('v1/fleet')]);
    state.devices = devices.items;
    renderSummary(state.devices, fleet);
    await renderCharts(state);
    renderTable(state.devices, state.data); // after the charts: battery in volts comes from the readings
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
    pending = setTimeout(() => resizeCharts(state.cards), 150);
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