// The relay page's DOM: fills in the static skeleton of index.html from the
// relay core's status and the device sessions. Text only (textContent and
// attributes, never HTML), and device cards are kept and updated in place so
// a button under the user's finger or the screen reader's focus stays put.
import type { RelayDeviceStatus, RelayStatus } from '../index.js';
import { ago, clockTime, describeUpload, inSeconds, plural, uploadHealth } from './messages.js';
import { RECONNECT_DELAYS_MS, type DeviceSession, type SessionState } from './session.js';

export interface ActivityEntry {
  at: number;
  level: 'info' | 'warn' | 'error';
  text: string;
  repeats: number;
}

export interface PageModel {
  now: number;
  ready: boolean;
  /** False when the browser has no Web Bluetooth (or the page is not secure). */
  bluetooth: boolean;
  status: RelayStatus | undefined;
  sessions: DeviceSession[];
  /** Where uploads go: the server that served the page. */
  server: URL;
  storage: string;
  activity: ActivityEntry[];
  /** Set while another tab holds the relay. */
  waitingForTab: boolean;
}

const STATE_LABEL: Record<SessionState, string> = {
  connecting: 'connecting',
  connected: 'connected',
  reconnecting: 'reconnecting',
  disconnected: 'disconnected',
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`relay page: #${id} is missing from index.html`);
  return e as T;
}

/** Assigns only on change: screen readers announce every write to a live region. */
function setText(e: HTMLElement, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

interface Card {
  root: HTMLLIElement;
  serial: HTMLElement;
  meta: HTMLElement;
  badge: HTMLElement;
  values: Map<string, HTMLElement>;
  problem: HTMLElement;
  button: HTMLButtonElement;
}

const FIELDS: [key: string, label: string][] = [
  ['received', 'Received'],
  ['queued', 'Waiting'],
  ['accepted', 'Delivered'],
  ['ack', 'Confirmed up to'],
  ['last', 'Last frame'],
  ['connections', 'Connections'],
];

export class View {
  readonly connect = byId<HTMLButtonElement>('connect');
  readonly wake = byId<HTMLInputElement>('wake');
  readonly #status = byId('status');
  readonly #statusText = this.#status.querySelector<HTMLElement>('.text')!;
  readonly #hint = byId('hint');
  readonly #notice = byId('notice');
  readonly #queueTile = byId('queue-tile');
  readonly #queue = byId('queue');
  readonly #queueNote = byId('queue-note');
  readonly #uploadTile = byId('upload-tile');
  readonly #uploadTime = byId('upload-time');
  readonly #uploadResult = byId('upload-result');
  readonly #server = byId('server');
  readonly #serverNote = byId('server-note');
  readonly #relayId = byId('relay-id');
  readonly #storage = byId('storage');
  readonly #devices = byId<HTMLUListElement>('devices');
  readonly #noDevices = byId('no-devices');
  readonly #activity = byId<HTMLOListElement>('activity');
  readonly #cards = new Map<DeviceSession, Card>();
  #activityShown = '';

  /** A problem the user must see (role=alert); `info` for a calm note. */
  notice(text: string | undefined, kind: 'error' | 'info' = 'error'): void {
    this.#notice.hidden = !text;
    this.#notice.classList.toggle('info', kind === 'info');
    setText(this.#notice, text ?? '');
  }

  render(m: PageModel): void {
    const s = m.status;
    document.body.dataset.ready = String(m.ready);
    this.connect.disabled = !m.ready || !m.bluetooth;
    this.#hint.hidden = !m.bluetooth;
    this.#renderStatus(m);

    const queue = s?.queue ?? 0;
    setText(this.#queue, plural(queue, 'frame'));
    this.#queue.dataset.count = String(queue);
    this.#queueTile.classList.toggle('waiting', queue > 0);
    let note = queue === 0 ? 'nothing waiting for the server' : 'kept on this phone until the server confirms them';
    if (s && queue > 0 && s.uploading) note = 'sending now…';
    else if (s && queue > 0 && s.retryAt !== null && s.retryAt > m.now) note = `kept on this phone; next try ${inSeconds(s.retryAt, m.now)}`;
    setText(this.#queueNote, note);

    const u = s?.lastUpload ?? null;
    this.#uploadTile.classList.toggle('ok', u?.ok === true);
    this.#uploadTile.classList.toggle('failing', u !== null && !u.ok);
    this.#uploadTile.dataset.ok = u ? String(u.ok) : '';
    setText(this.#uploadTime, u ? `${clockTime(u.at)}` : 'none yet');
    setText(this.#uploadResult, u ? `${u.ok ? 'OK' : 'Failed'}, ${ago(u.at, m.now)}: ${describeUpload(u)}` : '\u00a0');

    setText(this.#server, m.server.host);
    setText(this.#serverNote, `${m.server.protocol.replace(':', '').toUpperCase()}, POST ${m.server.pathname.replace(/\/$/, '')}/v1/uplink`);
    setText(this.#relayId, s?.relayId ?? '–');
    setText(this.#storage, m.storage);

    this.#renderDevices(m);
    this.#renderActivity(m);
  }

  #renderStatus(m: PageModel): void {
    let text: string;
    let tone: 'ok' | 'wait' | 'down' | '' = '';
    const s = m.status;
    if (m.waitingForTab) {
      text = 'The relay is open in another tab of this browser; it starts here when that tab closes.';
      tone = 'wait';
    } else if (!m.ready || !s) {
      text = 'Starting…';
    } else {
      const n = m.sessions.length;
      const up = m.sessions.filter((x) => x.state === 'connected').length;
      const devices = !m.bluetooth ? 'No Web Bluetooth in this browser' : n === 0 ? 'No device connected' : `${up} of ${plural(n, 'device')} connected`;
      const health = uploadHealth(s);
      const uploads = health === 'failing' ? 'uploads failing, frames kept on this phone' : s.queue > 0 ? 'uploading' : health === 'ok' ? 'everything delivered' : 'nothing to upload yet';
      text = `${devices} · ${uploads}`;
      tone = health === 'failing' || !m.bluetooth ? 'down' : n > 0 && up === n ? 'ok' : n > 0 ? 'wait' : '';
    }
    setText(this.#statusText, text);
    this.#status.className = `status ${tone}`.trim();
  }

  #renderDevices(m: PageModel): void {
    const bySerial = new Map<string, RelayDeviceStatus>();
    for (const d of m.status?.devices ?? []) bySerial.set(d.serial, d);
    this.#noDevices.hidden = m.sessions.length > 0;
    for (const [session, card] of this.#cards) {
      if (!m.sessions.includes(session)) {
        card.root.remove();
        this.#cards.delete(session);
      }
    }
    for (const session of m.sessions) {
      let card = this.#cards.get(session);
      if (!card) {
        card = this.#card(session);
        this.#cards.set(session, card);
        this.#devices.append(card.root);
      }
      const d = session.serial ? bySerial.get(session.serial) : undefined;
      card.root.dataset.state = session.state;
      if (session.serial) card.root.dataset.serial = session.serial;
      setText(card.serial, session.label);
      setText(card.meta, d ? [d.board, d.firmware && `firmware ${d.firmware}`, `${d.frameSize}-byte frames`].filter(Boolean).join(' · ') : session.device.name ?? '');
      setText(card.badge, STATE_LABEL[session.state]);
      card.badge.className = `badge ${session.state}`;
      const values: Record<string, string> = {
        received: d ? d.received.toLocaleString('en-US') : '–',
        queued: d ? d.queued.toLocaleString('en-US') : '–',
        accepted: d ? d.accepted.toLocaleString('en-US') : '–',
        ack: d && d.ackN > 0 ? `frame ${d.ackN.toLocaleString('en-US')}` : '–',
        last: d?.lastFrameAt ? ago(d.lastFrameAt, m.now) : '–',
        connections: d ? String(d.connections) : '–',
      };
      for (const [key] of FIELDS) setText(card.values.get(key)!, values[key]!);
      let problem = session.problem ?? '';
      if (session.state === 'reconnecting') {
        const when = session.retryAt !== null ? inSeconds(session.retryAt, m.now) : 'now';
        problem = `Trying again ${when} (try ${session.failures} of ${RECONNECT_DELAYS_MS.length})${session.problem ? `: ${session.problem}` : ''}.`;
      } else if (problem) problem = problem[0]!.toUpperCase() + problem.slice(1) + (/[.!]$/.test(problem) ? '' : '.');
      if (d?.ackPending && session.state !== 'connected') problem += `${problem ? ' ' : ''}Its latest confirmation is written when it is back.`;
      setText(card.problem, problem);
      card.problem.hidden = problem === '';
      card.problem.classList.toggle('wait', session.state === 'reconnecting');
      const label = session.state === 'disconnected' ? 'Reconnect' : 'Disconnect';
      setText(card.button, label);
      card.button.setAttribute('aria-label', `${label} ${session.label}`);
      card.button.dataset.action = label.toLowerCase();
    }
  }

  #card(session: DeviceSession): Card {
    const root = el('li', 'device');
    root.dataset.deviceId = session.device.id;
    const head = el('div', 'head');
    const title = el('div', 'title');
    const serial = el('div', 'serial');
    const meta = el('div', 'meta');
    title.append(serial, meta);
    const badge = el('span', 'badge');
    head.append(title, badge);
    const dl = el('dl');
    const values = new Map<string, HTMLElement>();
    for (const [key, label] of FIELDS) {
      const box = el('div');
      const dd = el('dd');
      dd.dataset.col = key;
      box.append(el('dt', undefined, label), dd);
      dl.append(box);
      values.set(key, dd);
    }
    const problem = el('p', 'problem');
    const actions = el('div', 'actions');
    const button = el('button');
    button.type = 'button';
    button.addEventListener('click', () => (session.state === 'disconnected' ? session.reconnect() : session.disconnect()));
    actions.append(button);
    root.append(head, dl, problem, actions);
    return { root, serial, meta, badge, values, problem, button };
  }

  #renderActivity(m: PageModel): void {
    const key = m.activity.map((a) => `${a.at}/${a.repeats}`).join(',');
    if (key === this.#activityShown) return;
    this.#activityShown = key;
    const items = m.activity
      .slice()
      .reverse()
      .map((a) => {
        const li = el('li', a.level);
        const time = el('time', undefined, clockTime(a.at));
        time.dateTime = new Date(a.at).toISOString();
        li.append(time, el('span', undefined, a.repeats > 1 ? `${a.text} (×${a.repeats})` : a.text));
        return li;
      });
    this.#activity.replaceChildren(...items);
  }
}
