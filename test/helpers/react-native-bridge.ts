// The module 'react-native' as react-native-ble-plx's JavaScript layer sees it, for tests: NativeModules.BlePlx (the
// native module, here peripherals in memory that notify frames and take ack writes), NativeEventEmitter and
// Platform. test/relay/react-native.test.ts bundles the library's real compiled JS with this in place of
// 'react-native', so everything above the bridge (BleManager, BleError parsing, transactions, subscriptions) is the
// library's own. Failures are the native side's: a rejection whose message is the JSON the library parses
// (errorCode, androidErrorCode...), or an event with an error.

type Listener = (payload: unknown) => void;
const listeners = new Map<string, Set<Listener>>();

export class NativeEventEmitter {
  constructor(_module?: unknown) {}
  addListener(event: string, listener: Listener): { remove(): void } {
    const set = listeners.get(event) ?? new Set();
    listeners.set(event, set);
    set.add(listener);
    return { remove: () => void set.delete(listener) };
  }
}

export const Platform = { OS: 'android', select: <T>(o: { android?: T; default?: T }) => o.android ?? o.default };

export interface NativeFailure {
  errorCode: number;
  androidErrorCode?: number | null;
  reason?: string;
}

export interface FakePeripheral {
  id: string;
  name: string;
  info: string;
  /** Offers the sealpost service on discovery. */
  service: boolean;
  connected: boolean;
  /** Base64 values written to the ack characteristic, in order. */
  writes: string[];
  /** The transaction of the frames subscription, while subscribed. */
  monitor: string | undefined;
}

const SERVICE = '7a1d0001-5ea1-4f05-9b2e-2d0c1e5a7f10';
const CHARS = { frames: '7a1d0002-5ea1-4f05-9b2e-2d0c1e5a7f10', ack: '7a1d0003-5ea1-4f05-9b2e-2d0c1e5a7f10', info: '7a1d0004-5ea1-4f05-9b2e-2d0c1e5a7f10' };
const enc = (s: string) => btoa(s);

export const bridge = {
  state: 'PoweredOn',
  peripherals: new Map<string, FakePeripheral>(),
  /** The next calls of a method fail with these (first first). */
  failures: new Map<string, NativeFailure[]>(),
  /** Every native call, by method and device. */
  calls: [] as string[],
  /** GATT operations of one device under way at once, at most (one at a time is the contract). */
  maxInFlight: 0,
  inFlight: new Map<string, number>(),
  add(id: string, serial: string): FakePeripheral {
    const p: FakePeripheral = { id, name: `sealpost ${serial.slice(-6)}`, info: JSON.stringify({ serial, v: 1, f: 20, b: 'sim', fw: '0.1.0' }), service: true, connected: false, writes: [], monitor: undefined };
    this.peripherals.set(id, p);
    return p;
  },
  reset(): void {
    this.state = 'PoweredOn';
    this.peripherals.clear();
    this.failures.clear();
    this.calls.length = 0;
    this.maxInFlight = 0;
    this.inFlight.clear();
  },
  fail(method: string, ...failures: NativeFailure[]): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), ...failures]);
  },
  emit(event: string, payload: unknown): void {
    for (const l of [...(listeners.get(event) ?? [])]) l(payload);
  },
  /** The device notifies a frame (base64). */
  notify(id: string, frame: string): void {
    const p = this.peripherals.get(id)!;
    if (!p.connected || !p.monitor) return;
    this.emit('ReadEvent', [null, characteristic(p, 'frames', frame), p.monitor]);
  },
  /** The link drops (the device's side or the radio): the native side reports it with this error, or none. */
  drop(id: string, error: NativeFailure | null = { errorCode: 201 }): void {
    const p = this.peripherals.get(id)!;
    if (!p.connected) return;
    end(p);
    this.emit('DisconnectionEvent', [error ? JSON.stringify({ ...error, deviceID: id }) : null, device(p)]);
  },
  setState(state: string): void {
    this.state = state;
    this.emit('StateChangeEvent', state);
    if (state !== 'PoweredOn') for (const p of this.peripherals.values()) this.drop(p.id, { errorCode: 102 });
  },
};

function end(p: FakePeripheral): void {
  p.connected = false;
  if (p.monitor) {
    const tx = p.monitor;
    p.monitor = undefined;
    const reject = monitors.get(tx);
    monitors.delete(tx);
    reject?.(JSON.stringify({ errorCode: 201, deviceID: p.id }));
  }
}

const device = (p: FakePeripheral) => ({ id: p.id, name: p.name, localName: p.name, rssi: -60, mtu: 23, manufacturerData: null, serviceData: null, serviceUUIDs: [SERVICE], txPowerLevel: null, solicitedServiceUUIDs: null, isConnectable: true, overflowServiceUUIDs: null, rawScanRecord: '' });
const characteristic = (p: FakePeripheral, which: keyof typeof CHARS, value: string | null = null) => ({
  id: Object.keys(CHARS).indexOf(which) + 10,
  uuid: CHARS[which],
  serviceID: 1,
  serviceUUID: SERVICE,
  deviceID: p.id,
  isReadable: which === 'info',
  isWritableWithResponse: which === 'ack',
  isWritableWithoutResponse: false,
  isNotifiable: which === 'frames',
  isNotifying: which === 'frames' && p.monitor !== undefined,
  isIndicatable: false,
  value,
  descriptors: [],
});

/** Pending monitor promises by transaction: reject with this message. */
const monitors = new Map<string, (message: string) => void>();

const rejection = (f: NativeFailure, id?: string) => new Error(JSON.stringify({ attErrorCode: null, iosErrorCode: null, androidErrorCode: null, reason: null, ...f, deviceID: id ?? null }));

/** Runs a native call: records it, fails it when told, checks the device is there, and counts overlap per device. */
async function call<T>(method: string, id: string | undefined, work: (p: FakePeripheral | undefined) => T | Promise<T>, gatt = false): Promise<T> {
  bridge.calls.push(id ? `${method} ${id}` : method);
  const planned = bridge.failures.get(method)?.shift();
  if (planned) throw rejection(planned, id);
  if (bridge.state === 'PoweredOff' && method !== 'state') throw rejection({ errorCode: 102 }, id);
  if (bridge.state === 'Unauthorized' && method !== 'state') throw rejection({ errorCode: 101 }, id);
  const p = id ? bridge.peripherals.get(id) : undefined;
  if (!gatt) return work(p);
  if (!p?.connected) throw rejection({ errorCode: 205 }, id); // DeviceNotConnected
  const n = (bridge.inFlight.get(p.id) ?? 0) + 1;
  bridge.inFlight.set(p.id, n);
  bridge.maxInFlight = Math.max(bridge.maxInFlight, n);
  try {
    await new Promise((r) => setTimeout(r, 1));
    if (!p.connected) throw rejection({ errorCode: 201 }, id);
    return await work(p);
  } finally {
    bridge.inFlight.set(p.id, bridge.inFlight.get(p.id)! - 1);
  }
}

const BlePlx = {
  ScanEvent: 'ScanEvent',
  ReadEvent: 'ReadEvent',
  StateChangeEvent: 'StateChangeEvent',
  RestoreStateEvent: 'RestoreStateEvent',
  DisconnectionEvent: 'DisconnectionEvent',
  ConnectingEvent: 'ConnectingEvent',
  ConnectedEvent: 'ConnectedEvent',
  CharateristicValueUpdateEvent: 'CharateristicValueUpdateEvent',
  createClient: () => undefined,
  destroyClient: async () => undefined,
  cancelTransaction: (tx: string) => {
    const reject = monitors.get(tx);
    monitors.delete(tx);
    for (const p of bridge.peripherals.values()) if (p.monitor === tx) p.monitor = undefined;
    reject?.(JSON.stringify({ errorCode: 2 }));
  },
  state: async () => bridge.state,
  startDeviceScan: (uuids: string[] | null) =>
    call('startDeviceScan', undefined, () => {
      queueMicrotask(() => {
        for (const p of bridge.peripherals.values()) if (!uuids || uuids.includes(SERVICE)) bridge.emit('ScanEvent', [null, device(p)]);
      });
    }),
  stopDeviceScan: () => call('stopDeviceScan', undefined, () => undefined),
  isDeviceConnected: (id: string) => call('isDeviceConnected', id, (p) => p?.connected === true),
  connectToDevice: (id: string) =>
    call('connectToDevice', id, async (p) => {
      if (!p) throw rejection({ errorCode: 200, reason: 'no such device' }, id);
      await new Promise((r) => setTimeout(r, 1));
      p.connected = true;
      return device(p);
    }),
  cancelDeviceConnection: (id: string) =>
    call('cancelDeviceConnection', id, (p) => {
      if (!p) throw rejection({ errorCode: 205 }, id);
      if (p.connected) {
        end(p);
        bridge.emit('DisconnectionEvent', [null, device(p)]);
      }
      return device(p);
    }),
  discoverAllServicesAndCharacteristicsForDevice: (id: string) => call('discover', id, (p) => device(p!), true),
  servicesForDevice: (id: string) => call('servicesForDevice', id, (p) => (p!.service ? [{ id: 1, uuid: SERVICE, deviceID: id, isPrimary: true }] : []), true),
  characteristicsForDevice: (id: string) => call('characteristicsForDevice', id, (p) => (['frames', 'ack', 'info'] as const).map((w) => characteristic(p!, w)), true),
  readCharacteristicForDevice: (id: string, _s: string, c: string) => call('read', id, (p) => characteristic(p!, 'info', c === CHARS.info ? enc(p!.info) : null), true),
  writeCharacteristicForDevice: (id: string, _s: string, c: string, value: string, withResponse: boolean) =>
    call(
      'write',
      id,
      (p) => {
        if (c !== CHARS.ack || !withResponse) throw rejection({ errorCode: 402, reason: 'write without response or to the wrong characteristic' }, id);
        p!.writes.push(value);
        return characteristic(p!, 'ack', value);
      },
      true,
    ),
  monitorCharacteristicForDevice: (id: string, _s: string, _c: string, tx: string) =>
    call(
      'monitor',
      id,
      (p) => {
        p!.monitor = tx;
      },
      true,
      // Pending while subscribed, as the native side's: cancelTransaction or the drop ends it.
    ).then(() => new Promise<void>((_, reject) => monitors.set(tx, (m) => reject(new Error(m))))),
};

export const NativeModules = { BlePlx };
export default { NativeModules, NativeEventEmitter, Platform };
