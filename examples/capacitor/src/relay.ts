// The relay of this app: one sealpost Relay (its queue in IndexedDB, which the
// app's web view keeps across restarts) and the Capacitor adapter over
// @capacitor-community/bluetooth-le. On iOS and Android it scans and relays
// every sealpost device in range; on the web there is no scanning, so the user
// picks each device in the browser's chooser (requestDevice, from a tap).
// docs/relay.md, "App adapters", in the sealpost repository.
import { BleClient } from '@capacitor-community/bluetooth-le';
import { Capacitor } from '@capacitor/core';
import { Relay, fetchUploader } from 'sealpost/relay';
import { CapacitorRelay } from 'sealpost/relay/capacitor';
import { IdbQueueStore } from 'sealpost/relay/indexeddb';

export interface AppRelayOptions {
  /** The ingest server's base URL (frames go to `${server}/v1/uplink`). */
  server: string;
  /** For a server that lists relay keys (`sealpost relay-key new NAME`). */
  relayKey?: string;
  /** Something worth redrawing changed: devices, the queue, an upload. */
  onChange: () => void;
}

export interface AppRelay {
  relay: Relay;
  ble: CapacitorRelay;
  /** True on iOS and Android (every device found is relayed); false on the web (add devices with ble.requestDevice()). */
  scanning: boolean;
  stop(): Promise<void>;
}

export async function startRelay(options: AppRelayOptions): Promise<AppRelay> {
  const relay = await Relay.open({
    relayId: relayId(),
    clock: { now: () => Date.now(), setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as number) },
    upload: fetchUploader(options.server, { relayKey: options.relayKey }),
    store: await IdbQueueStore.open(),
    onChange: options.onChange,
  });
  const ble = new CapacitorRelay({ ble: BleClient, relay, onChange: options.onChange });
  try {
    await ble.start(); // asks for the Bluetooth permissions; on the web, fails without an adapter
    const scanning = Capacitor.isNativePlatform();
    if (scanning) await ble.scan();
    return {
      relay,
      ble,
      scanning,
      async stop() {
        await ble.stop();
        await relay.close();
      },
    };
  } catch (e) {
    await relay.close();
    throw e;
  }
}

/** This install's relay id (sent with every upload): made once, kept in localStorage. */
function relayId(): string {
  const key = 'sealpost-relay-id';
  let id = localStorage.getItem(key);
  if (!id) {
    id = `app-${crypto.randomUUID().slice(0, 13)}`;
    localStorage.setItem(key, id);
  }
  return id;
}
