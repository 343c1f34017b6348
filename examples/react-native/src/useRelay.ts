// The relay of this app as a React hook: Android's Bluetooth permissions, one
// sealpost Relay (its queue in AsyncStorage through KvQueueStore) and the React
// Native adapter over react-native-ble-plx, which scans for sealpost devices
// and relays every one it finds, reconnecting with backoff and waiting while
// Bluetooth is off. docs/relay.md, "App adapters", in the sealpost repository.
import { createAsyncStorage } from '@react-native-async-storage/async-storage';
import { useEffect, useState } from 'react';
import { PermissionsAndroid, Platform, type Permission } from 'react-native';
import { BleManager } from 'react-native-ble-plx';
import { Relay, fetchUploader, type RelayStatus } from 'sealpost/relay';
import { KvQueueStore, ReactNativeRelay, type AdapterDeviceStatus, type KeyValueStore } from 'sealpost/relay/react-native';

export interface RelayView {
  /** The queue, uploads and the relay's view of each device; undefined until the relay is open. */
  status: RelayStatus | undefined;
  /** Every device found: state, serial once known, why it waits. */
  devices: AdapterDeviceStatus[];
  /** Why nothing is relayed now (Bluetooth off, a permission refused), or undefined. */
  problem: string | undefined;
}

/** Android 12+ asks for BLUETOOTH_SCAN and BLUETOOTH_CONNECT at run time, older Android for location; iOS asks by itself. */
async function bluetoothAllowed(): Promise<boolean> {
  if (Platform.OS !== 'android') return true;
  const wanted: Permission[] =
    Platform.Version >= 31
      ? [PermissionsAndroid.PERMISSIONS.BLUETOOTH_SCAN, PermissionsAndroid.PERMISSIONS.BLUETOOTH_CONNECT]
      : [PermissionsAndroid.PERMISSIONS.ACCESS_FINE_LOCATION];
  const answers = await PermissionsAndroid.requestMultiple(wanted);
  return wanted.every((p) => answers[p] === PermissionsAndroid.RESULTS.GRANTED);
}

/** This install's relay id (sent with every upload): made once, kept in storage. */
async function relayId(storage: KeyValueStore): Promise<string> {
  const key = 'sealpost-relay-id';
  let id = await storage.getItem(key);
  if (!id) {
    id = `app-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    await storage.setItem(key, id);
  }
  return id;
}

export function useRelay(server: string, relayKey?: string): RelayView {
  const [view, setView] = useState<RelayView>({ status: undefined, devices: [], problem: undefined });

  useEffect(() => {
    let stopped = false;
    let relay: Relay | undefined;
    let ble: ReactNativeRelay | undefined;
    let pending: ReturnType<typeof setTimeout> | undefined;
    const manager = new BleManager();
    const draw = () => {
      pending = undefined;
      if (!stopped && relay && ble) setView({ status: relay.status(), devices: ble.devices(), problem: ble.problem });
    };
    // onChange fires per frame: redraw at most five times a second.
    const redraw = () => {
      pending ??= setTimeout(draw, 200);
    };
    const fail = (problem: string) => setView((v) => ({ ...v, problem }));

    (async () => {
      if (!(await bluetoothAllowed())) return fail('Bluetooth permission refused: allow it in the settings');
      const storage = createAsyncStorage('sealpost-relay');
      relay = await Relay.open({
        relayId: await relayId(storage),
        clock: { now: () => Date.now(), setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) },
        upload: fetchUploader(server, { relayKey }),
        store: new KvQueueStore(storage),
        onChange: redraw,
      });
      if (stopped) return relay.close();
      ble = new ReactNativeRelay({ ble: manager, relay, onChange: redraw });
      ble.start(); // follows the adapter: attempts wait while Bluetooth is off, and go on when it is on
      // Refused while Bluetooth is off: the adapter scans again once it is on, and ble.problem says why.
      await ble.scan().catch(() => undefined);
      draw();
    })().catch((e: unknown) => fail(`the relay could not start: ${(e as Error).message}`));

    return () => {
      stopped = true;
      if (pending !== undefined) clearTimeout(pending);
      void (async () => {
        await ble?.stop();
        await relay?.close();
        await manager.destroy();
      })();
    };
  }, [server, relayKey]);

  return view;
}
