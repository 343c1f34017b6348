// The Web Bluetooth relay page (served at /relay by
// server/plugins/relay-page.ts, bundled with the relay core by esbuild).
//
// It opens the platform-neutral relay core (relay/index.ts) with an IndexedDB
// queue (idb-queue.ts), the fetch uploader pointed at the server that served
// the page, and the browser clock; each device the user picks becomes a
// DeviceSession (session.ts) that hands GATT links (ble-link.ts) to the core
// and reconnects them. Everything else here is wiring and the page.
import { NAME_PREFIX, SERVICE_UUID } from '../../protocol/wire/ble.js';
import { MemoryQueueStore, Relay, fetchUploader, type LogLevel, type QueueStore } from '../index.js';
import { GattLink } from './ble-link.js';
import { IdbQueueStore } from './idb-queue.js';
import { MESSAGES, isAdapterMissing, isChooserCancelled, plainError } from './messages.js';
import { DeviceSession, type SessionHost } from './session.js';
import { View, type ActivityEntry, type PageModel } from './view.js';
import { bluetoothOf, type Bluetooth, type BluetoothDevice } from './web-bluetooth.js';

const RELAY_ID_KEY = 'sealpost-relay-id';
const TAB_LOCK = 'sealpost-relay';
const MAX_ACTIVITY = 40;

/** A random relay id, kept in localStorage so the server sees one relay per phone and browser. */
function relayIdentity(): { id: string; kept: boolean } {
  try {
    const stored = localStorage.getItem(RELAY_ID_KEY);
    if (stored && /^[\x21-\x7e]{1,64}$/.test(stored)) return { id: stored, kept: true };
  } catch {
    // Storage disabled: a new id per visit.
  }
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  const id = 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  try {
    localStorage.setItem(RELAY_ID_KEY, id);
    return { id, kept: true };
  } catch {
    return { id, kept: false };
  }
}

/**
 * One relay per browser: two tabs would upload the same queue and pick the
 * same frame ids. The Web Locks API hands the relay to the next tab when the
 * holder closes (a reload releases it too).
 */
function holdTabLock(onWaiting: () => void): Promise<void> {
  if (!('locks' in navigator) || !navigator.locks) return Promise.resolve();
  return new Promise((acquired) => {
    const slow = setTimeout(onWaiting, 800);
    const go = () => {
      clearTimeout(slow);
      acquired();
    };
    try {
      navigator.locks
        .request(TAB_LOCK, () => {
          go();
          return new Promise<void>(() => undefined); // held until the page goes away
        })
        .catch(go);
    } catch {
      go();
    }
  });
}

async function openStore(): Promise<{ store: QueueStore; words: string; durable: boolean }> {
  try {
    const store = await IdbQueueStore.open();
    let persistent = false;
    try {
      persistent = (await navigator.storage?.persisted?.()) || (await navigator.storage?.persist?.()) || false;
    } catch {
      // Not offered here: best effort storage.
    }
    return { store, durable: true, words: persistent ? 'queue in IndexedDB (persistent storage)' : 'queue in IndexedDB' };
  } catch (e) {
    return { store: new MemoryQueueStore(), durable: false, words: `queue in memory only: IndexedDB failed (${plainError(e)})` };
  }
}

async function main(): Promise<void> {
  const view = new View();
  const bluetooth = bluetoothOf(navigator);
  // Uploads go to the server that served the page, relative to it (a proxy may serve it under a prefix).
  const server = new URL('.', location.href);
  const sessions = new Map<string, DeviceSession>();
  const activity: ActivityEntry[] = [];
  let relay: Relay | undefined;
  let storageWords = '';
  let waitingForTab = false;
  let renderTimer: number | undefined;

  const model = (): PageModel => ({
    now: Date.now(),
    ready: relay !== undefined,
    bluetooth: bluetooth !== undefined,
    status: relay?.status(),
    sessions: [...sessions.values()],
    server,
    storage: storageWords,
    activity,
    waitingForTab,
  });
  const render = () => {
    if (renderTimer !== undefined) window.clearTimeout(renderTimer);
    renderTimer = undefined;
    view.render(model());
  };
  const changed = () => {
    if (renderTimer === undefined) renderTimer = window.setTimeout(render, 40);
  };
  const log = (level: LogLevel, text: string) => {
    const last = activity[activity.length - 1];
    if (last && last.text === text && last.level === level) {
      last.repeats++;
      last.at = Date.now();
    } else {
      activity.push({ at: Date.now(), level, text, repeats: 1 });
      if (activity.length > MAX_ACTIVITY) activity.shift();
    }
    changed();
  };

  if (!bluetooth) view.notice(window.isSecureContext ? MESSAGES.noWebBluetooth : `${MESSAGES.noWebBluetooth} ${MESSAGES.insecure}`);
  const availability = bluetooth ? new Availability(bluetooth, view) : undefined;
  render();

  await holdTabLock(() => {
    waitingForTab = true;
    render();
  });
  waitingForTab = false;

  const opened = await openStore();
  storageWords = opened.words;
  if (!opened.durable) log('warn', 'The queue cannot be saved in this browser: frames waiting for the server are lost if the page closes (the devices keep them until confirmed, so they are sent again).');
  const identity = relayIdentity();
  if (!identity.kept) log('warn', 'This browser does not keep the relay id; the server sees a new relay on every visit.');

  relay = await Relay.open({
    relayId: identity.id,
    clock: { now: () => Date.now(), setTimeout: (fn, ms) => window.setTimeout(fn, ms), clearTimeout: (h) => window.clearTimeout(h as number) },
    upload: fetchUploader(server.href),
    store: opened.store,
    onChange: changed,
    log,
  });
  const core = relay;

  const host: SessionHost = {
    connect: (link) => core.connect(link),
    openLink: (device, onEnd) => GattLink.open(device, { onEnd }),
    now: () => Date.now(),
    setTimeout: (fn, ms) => window.setTimeout(fn, ms),
    clearTimeout: (h) => window.clearTimeout(h),
    changed,
    log,
  };

  const adopt = (device: BluetoothDevice) => {
    view.notice(undefined);
    const known = sessions.get(device.id);
    if (known) {
      log('info', `${known.label} is already in the list`);
      known.reconnect();
      return;
    }
    const session = new DeviceSession(device, host);
    sessions.set(device.id, session);
    log('info', `connecting to ${session.label}`);
    session.start();
  };

  const choose = () => {
    if (!bluetooth) return;
    let request: Promise<BluetoothDevice>;
    try {
      request = bluetooth.requestDevice({
        // Devices advertise the service UUID; the name prefix also finds one whose UUID did not fit the advertisement.
        filters: [{ services: [SERVICE_UUID] }, { namePrefix: NAME_PREFIX }],
        optionalServices: [SERVICE_UUID],
      });
    } catch (e) {
      view.notice(sentence(plainError(e)));
      return;
    }
    request.then(adopt, (e: unknown) => {
      if (isChooserCancelled(e)) {
        view.notice('No device was chosen. Tap Connect again to pick one.', 'info');
      } else if (isAdapterMissing(e)) {
        // The adapter went away between the last check and this tap.
        availability?.show(false);
        log('warn', 'Bluetooth is off or missing: no device can be connected');
      } else {
        view.notice(sentence(plainError(e)));
        log('error', plainError(e));
      }
    });
  };
  view.connect.addEventListener('click', () => {
    if (!bluetooth || !availability) return;
    // Each Connect checks again: Chromium says nothing when the adapter comes back or goes.
    if (availability.on !== false) {
      // Believed on: the chooser opens inside the click (transient user activation), and the check runs beside it.
      choose();
      void availability.check();
      return;
    }
    // Believed off: no chooser unless it is back. Chromium's user activation
    // lasts seconds, not one task, so the chooser may still open after this
    // await (measured on Chromium 156's own stack: test/relay/page.test.ts).
    void availability.check().then((on) => {
      if (on) choose();
      else log('warn', 'Bluetooth is off or missing: no device can be connected');
    });
  });

  const retryUploads = () => {
    if (core.status().queue > 0) core.flush();
  };
  window.addEventListener('online', () => {
    log('info', 'back online');
    retryUploads();
  });
  window.addEventListener('offline', () => log('warn', 'this device is offline: frames wait in the queue'));
  setupWakeLock(view.wake, log);
  // Chrome drops Web Bluetooth connections of a hidden page; retries made while
  // hidden fail, so a device that ran out of retries is tried again on return.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    void availability?.check();
    retryUploads();
    for (const s of sessions.values()) if (s.gaveUp) s.reconnect();
  });
  // Back from another window or the system's Bluetooth settings: the adapter may have changed with no event.
  window.addEventListener('focus', () => {
    void availability?.check();
    for (const s of sessions.values()) if (s.gaveUp) s.reconnect();
  });

  const queued = core.status().queue;
  log('info', queued > 0 ? `relay ${identity.id} started; ${queued} frame(s) from an earlier visit are queued` : `relay ${identity.id} started`);
  render();
  window.setInterval(render, 1000);
}

/**
 * Whether the browser can use a Bluetooth adapter, shown before the user taps
 * Connect, and the note gone when it is back. getAvailability() is asked at
 * start, on focus, when the page becomes visible and at each Connect:
 * Chromium fires `availabilitychanged` only on some platforms and not when an
 * adapter comes back (issue #16, measured on Chromium 156). It answers false
 * for an absent adapter or a browser denied Bluetooth; a powered-off adapter
 * counts as available (Web Bluetooth, "Overall Bluetooth availability": the
 * powered state is not considered), so that one only Chrome's own chooser
 * can report (docs/relay.md, "What it shows and does").
 */
class Availability {
  /** The last answer; undefined before the first, or where the browser cannot say. */
  on: boolean | undefined;
  readonly #bluetooth: Bluetooth;
  readonly #view: View;
  #shown = false;

  constructor(bluetooth: Bluetooth, view: View) {
    this.#bluetooth = bluetooth;
    this.#view = view;
    bluetooth.addEventListener?.('availabilitychanged', (e) => {
      if (typeof e.value === 'boolean') this.show(e.value);
    });
    void this.check();
  }

  /** Asks the browser now; resolves to the answer (true where the browser cannot say). */
  async check(): Promise<boolean> {
    if (typeof this.#bluetooth.getAvailability !== 'function') return true;
    try {
      const on = await this.#bluetooth.getAvailability();
      this.show(on);
      return on;
    } catch {
      return true;
    }
  }

  show(on: boolean): void {
    this.on = on;
    if (!on) this.#view.notice(MESSAGES.bluetoothOff, 'info');
    else if (this.#shown) this.#view.notice(undefined);
    this.#shown = !on;
  }
}

function sentence(text: string): string {
  const t = text[0]!.toUpperCase() + text.slice(1);
  return /[.!?]$/.test(t) ? t : t + '.';
}

/** "Keep the screen on": a screen wake lock, taken again when the page becomes visible (the browser drops it when hidden). */
function setupWakeLock(box: HTMLInputElement, log: (level: LogLevel, text: string) => void): void {
  const label = box.closest('label');
  if (!('wakeLock' in navigator) || !navigator.wakeLock) {
    if (label) label.hidden = true;
    return;
  }
  let sentinel: WakeLockSentinel | undefined;
  const take = async () => {
    if (sentinel || document.visibilityState !== 'visible') return;
    try {
      sentinel = await navigator.wakeLock.request('screen');
      sentinel.addEventListener('release', () => {
        sentinel = undefined;
      });
    } catch (e) {
      box.checked = false;
      log('warn', `the screen cannot be kept on: ${plainError(e)}`);
    }
  };
  box.addEventListener('change', () => {
    if (box.checked) void take();
    else void sentinel?.release();
  });
  document.addEventListener('visibilitychange', () => {
    if (box.checked) void take();
  });
}

main().catch((e: unknown) => {
  const notice = document.getElementById('notice');
  if (notice) {
    notice.hidden = false;
    notice.textContent = `The relay could not start: ${plainError(e)}. Reload the page to try again.`;
  }
});
