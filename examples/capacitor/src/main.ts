// The screen: a status line (the queue and the last upload) and the list of
// devices being relayed. The relay itself is in relay.ts.
import type { RelayStatus } from 'sealpost/relay';
import type { AdapterDeviceStatus } from 'sealpost/relay/capacitor';
import { startRelay, type AppRelay } from './relay';

/** Your ingest server. */
const SERVER = 'https://ingest.example.com';

const statusLine = document.getElementById('status')!;
const list = document.getElementById('devices')!;
const addButton = document.getElementById('add') as HTMLButtonElement;
let app: AppRelay | undefined;
let drawing = false;

const time = (ms: number) => new Date(ms).toLocaleTimeString();

function summary(s: RelayStatus): string {
  const last = s.lastUpload;
  if (s.failures > 0 && last) return `${s.queue} frames waiting; upload failed (${last.message}), next try ${s.retryAt ? time(s.retryAt) : 'soon'}`;
  if (s.uploading) return `${s.queue} frames waiting; uploading`;
  return `${s.queue} frames waiting; ${s.totals.accepted} stored; last upload ${last ? time(last.at) : 'none yet'}`;
}

function deviceLine(d: AdapterDeviceStatus, s: RelayStatus): string {
  const relayed = d.serial ? s.devices.find((r) => r.serial === d.serial) : undefined;
  const frames = relayed ? `, ${relayed.received} frames, acked to ${relayed.ackN}` : '';
  const problem = d.problem ? ` (${d.problem})` : '';
  return `${d.serial ?? d.name ?? d.id}: ${d.state}${frames}${problem}`;
}

function draw(): void {
  drawing = false;
  if (!app) return;
  const status = app.relay.status();
  statusLine.textContent = summary(status);
  list.replaceChildren(
    ...app.ble.devices().map((d) => {
      const item = document.createElement('li');
      item.textContent = deviceLine(d, status);
      return item;
    }),
  );
}

/** onChange fires per frame: draw once per animation frame at most. */
function redraw(): void {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(draw);
}

addButton.addEventListener('click', () => {
  // The browser's chooser, filtered to sealpost devices; it needs this tap.
  app?.ble.requestDevice().catch((e: unknown) => {
    if ((e as Error).name !== 'NotFoundError') statusLine.textContent = `Could not add the device: ${(e as Error).message}`;
  });
});

startRelay({ server: SERVER, onChange: redraw }).then(
  (started) => {
    app = started;
    addButton.hidden = started.scanning;
    draw();
  },
  (e: unknown) => {
    statusLine.textContent = `Bluetooth cannot be used: ${(e as Error).message}`;
  },
);
