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
import { MESSAGES, isChooserCancelled, plainError } from './messages.js';
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
  else watchAvailability(bluetooth, view);
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

  view.connect.addEventListener('click', () => {
    if (!bluetooth) return;
    // requestDevice must run inside the click (transient user activation): no await before it.
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
      } else {
        view.notice(sentence(plainError(e)));
        log('error', plainError(e));
      }
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
    retryUploads();
    for (const s of sessions.values()) if (s.gaveUp) s.reconnect();
  });

  const queued = core.status().queue;
  log('info', queued > 0 ? `relay ${identity.id} started; ${queued} frame(s) from an earlier visit are queued` : `relay ${identity.id} started`);
  render();
  window.setInterval(render, 1000);
}

/** Says when Bluetooth is off, before the user taps Connect; the note goes when it comes back. */
function watchAvailability(bluetooth: Bluetooth, view: View): void {
  if (typeof bluetooth.getAvailability !== 'function') return;
  let shown = false;
  const show = (on: boolean) => {
    if (!on) view.notice(MESSAGES.bluetoothOff, 'info');
    else if (shown) view.notice(undefined);
    shown = !on;
  };
  bluetooth.getAvailability().then(show, () => undefined);
  bluetooth.addEventListener?.('availabilitychanged', (e) => {
    if (typeof e.value === 'boolean') show(e.value);
  });
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
