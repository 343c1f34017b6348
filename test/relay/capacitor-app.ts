// The smallest Capacitor relay, bundled by test/relay/capacitor.test.ts with esbuild for Chromium: the
// @capacitor-community/bluetooth-le plugin's own web build (its BleClient on navigator.bluetooth) under
// sealpost/relay/capacitor, queue in IndexedDB, uploads to the page's origin. window.sealpostTest drives it.
import { BleClient } from '@capacitor-community/bluetooth-le';
import { Relay, fetchUploader } from '../../relay/index.js';
import { IdbQueueStore } from '../../relay/web/idb-queue.js';
import { CapacitorRelay } from '../../relay/adapters/capacitor.js';

declare global {
  interface Window {
    sealpostTest: {
      start(relayId: string): Promise<void>;
      devices(): ReturnType<CapacitorRelay['devices']>;
      status(): ReturnType<Relay['status']>;
      stop(): Promise<void>;
      logs: string[];
      errors: string[];
    };
  }
}

let relay: Relay | undefined;
let adapter: CapacitorRelay | undefined;
const logs: string[] = [];
const errors: string[] = [];

window.sealpostTest = {
  async start(relayId) {
    relay = await Relay.open({
      relayId,
      clock: { now: () => Date.now(), setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as number) },
      upload: fetchUploader(location.origin),
      store: await IdbQueueStore.open('sealpost-capacitor-test'),
      flushDelayMs: 200,
      log: (level, message) => logs.push(`${level}: ${message}`),
    });
    adapter = new CapacitorRelay({ ble: BleClient, relay, reconnectBaseMs: 200, reconnectCapMs: 1000, log: (level, message) => logs.push(`${level}: ${message}`) });
    await adapter.start();
    // requestDevice needs a user gesture: the test clicks this button once per device.
    document.getElementById('add')!.addEventListener('click', () => {
      adapter!.requestDevice().catch((e: unknown) => errors.push(String(e)));
    });
  },
  devices: () => adapter!.devices(),
  status: () => relay!.status(),
  async stop() {
    await adapter?.stop();
    await relay?.close();
  },
  logs,
  errors,
};
