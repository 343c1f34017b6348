// A stand-in for `navigator.bluetooth` in headless Chromium, wired to
// simulated devices (sim/device.ts SimDevice: the real firmware on the sim HAL)
// running in the test process. The page gets the Web Bluetooth API surface
// the relay page uses (https://webbluetoothcg.github.io/web-bluetooth/):
//
//   requestDevice(options) -> BluetoothDevice (same object for the same device)
//   device.gatt: connect(), disconnect(), connected, getPrimaryService(uuid)
//   service.getCharacteristic(uuid)
//   characteristic: readValue(), writeValueWithResponse(), startNotifications(),
//                   'characteristicvaluechanged' events with `value` (a DataView)
//   device 'gattserverdisconnected' events
//
// with Chrome's rules where a page could get them wrong: requestDevice needs
// a user gesture and filters; only services named in the filters or in
// optionalServices are reachable; UUIDs must be lowercase 128-bit strings;
// a second GATT operation while one is in flight fails with "GATT operation
// already in progress" (counted in stats.busy); objects of an earlier
// connection are dead after a reconnect; notifications reuse one buffer (a
// page that keeps the DataView sees it change); notifications sent before
// startNotifications are lost, as a peripheral's are before the client
// enables them, and startNotifications reaches the firmware as the CCCD write
// (onWriteDesc, SimLink.subscribe); disconnect() fires gattserverdisconnected; navigating away
// drops every connection.
//
// Page -> test: one binding (`__sealpostBle`). Test -> page: pump() delivers
// notifications and disconnections with page.evaluate; the test calls it
// after advancing the devices' VirtualClock.
import type { Page } from 'playwright-core';
import type { SimDevice } from '../../sim/device.js';
import type { SimLink } from '../../hal/sim/radio.js';
import { ACK_UUID, FRAMES_UUID, INFO_UUID, SERVICE_UUID } from '../../protocol/wire/ble.js';

interface RequestOptions {
  filters?: { services?: string[]; name?: string; namePrefix?: string }[];
  optionalServices?: string[];
  acceptAllDevices?: boolean;
}

interface Peripheral {
  id: string;
  sim: SimDevice;
  serial: string;
  inRange: boolean;
  link: SimLink | undefined;
  generation: number;
  subscribed: boolean;
}

type BleEvent = { id: string; generation: number; kind: 'frame'; bytes: number[] } | { id: string; generation: number; kind: 'gone' };

type Reply = { ok: true; value?: unknown } | { ok: false; name: string; message: string };

export interface WebBluetoothStats {
  /** Every requestDevice() options object the page passed. */
  requests: RequestOptions[];
  connects: number;
  reads: number;
  /** Ack writes that reached a device. */
  writes: number;
  /** Notifications handed to the page. */
  delivered: number;
  /** Notifications the device sent before the page enabled them (lost, as over the air). */
  lostBeforeSubscribe: number;
  /** GATT operations the page started while another was in flight (Chrome rejects them). */
  busy: number;
}

const fail = (name: string, message: string): Reply => ({ ok: false, name, message });

export class WebBluetoothStandIn {
  readonly stats: WebBluetoothStats = { requests: [], connects: 0, reads: 0, writes: 0, delivered: 0, lostBeforeSubscribe: 0, busy: 0 };
  readonly #page: Page;
  readonly #peripherals = new Map<string, Peripheral>();
  #events: BleEvent[] = [];
  /** The chooser's next pick: a serial, null for "the user cancels", undefined for the first free device. */
  #choice: string | null | undefined;

  private constructor(page: Page, devices: { sim: SimDevice; serial: string }[]) {
    this.#page = page;
    devices.forEach(({ sim, serial }, i) => {
      this.#peripherals.set(`ble-${i + 1}`, { id: `ble-${i + 1}`, sim, serial, inRange: true, link: undefined, generation: 0, subscribed: false });
    });
  }

  /**
   * Installs the stand-in on `page` (before its first navigation) for these
   * devices; a device is in the chooser while it is on and advertising.
   */
  static async install(page: Page, devices: { sim: SimDevice; serial: string }[]): Promise<WebBluetoothStandIn> {
    const self = new WebBluetoothStandIn(page, devices);
    await page.exposeBinding('__sealpostBle', (_source, op: string, ...args: unknown[]) => self.#handle(op, args));
    await page.addInitScript(pageSide, { service: SERVICE_UUID, frames: FRAMES_UUID, ack: ACK_UUID, info: INFO_UUID });
    // Leaving or reloading the page ends its GATT connections, as in Chrome.
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) for (const p of self.#peripherals.values()) self.#release(p);
    });
    return self;
  }

  /** What the chooser picks next: a serial, or null to cancel. Used once. */
  choose(serial: string | null): void {
    this.#choice = serial;
  }

  /** Out of range: connections fail; and the current link, if any, drops. */
  setInRange(serial: string, inRange: boolean): void {
    const p = this.#bySerial(serial);
    p.inRange = inRange;
    if (!inRange) this.drop(serial);
  }

  /** The radio link breaks (the device walks away, interference): both sides see a disconnection. */
  drop(serial: string): void {
    const p = this.#bySerial(serial);
    if (!p.link) return;
    p.link.disconnect();
    this.#gone(p);
  }

  connected(serial: string): boolean {
    return this.#bySerial(serial).link?.connected() === true;
  }

  /**
   * Delivers what happened since the last call: notifications, and links
   * found dead (a device that lost power). Call after advancing the clock.
   */
  async pump(): Promise<void> {
    for (const p of this.#peripherals.values()) if (p.link && !p.link.connected()) this.#gone(p);
    if (this.#events.length === 0) return;
    const events = this.#events;
    this.#events = [];
    try {
      await this.#page.evaluate((list) => (window as unknown as { __sealpostBleDeliver(l: unknown): void }).__sealpostBleDeliver(list), events);
      this.stats.delivered += events.filter((e) => e.kind === 'frame').length;
    } catch {
      // The page is navigating: whatever was in the air is lost, as it would be.
    }
  }

  #bySerial(serial: string): Peripheral {
    for (const p of this.#peripherals.values()) if (p.serial === serial) return p;
    throw new Error(`no simulated device ${serial}`);
  }

  #gone(p: Peripheral): void {
    if (!p.link) return;
    const generation = p.generation;
    this.#release(p);
    this.#events.push({ id: p.id, generation, kind: 'gone' });
  }

  #release(p: Peripheral): void {
    p.link?.disconnect();
    p.link = undefined;
    p.subscribed = false;
    this.#events = this.#events.filter((e) => e.id !== p.id);
  }

  #handle(op: string, args: unknown[]): Reply {
    try {
      switch (op) {
        case 'requestDevice':
          return this.#request(args[0] as RequestOptions);
        case 'connect':
          return this.#connect(String(args[0]));
        case 'disconnect': {
          const p = this.#peripherals.get(String(args[0]));
          if (p) this.#release(p);
          return { ok: true };
        }
        case 'read':
        case 'write':
        case 'subscribe':
          return this.#gatt(op, String(args[0]), Number(args[1]), String(args[2]), args[3] as number[] | undefined);
        case 'busy':
          this.stats.busy++;
          return { ok: true };
        default:
          return fail('NotSupportedError', `stand-in has no operation ${op}`);
      }
    } catch (e) {
      return fail('NetworkError', (e as Error).message);
    }
  }

  #request(options: RequestOptions): Reply {
    this.stats.requests.push(JSON.parse(JSON.stringify(options)) as RequestOptions);
    const choice = this.#choice;
    this.#choice = undefined;
    if (choice === null) return fail('NotFoundError', 'User cancelled the requestDevice() chooser.');
    const matches = (p: Peripheral) => {
      const advertised = p.inRange ? p.sim.radio?.advertising() : undefined;
      if (!advertised) return false;
      return (options.filters ?? []).some(
        (f) =>
          (f.services ?? []).every((s) => s === SERVICE_UUID) &&
          (f.name === undefined || f.name === advertised.name) &&
          (f.namePrefix === undefined || advertised.name.startsWith(f.namePrefix)),
      );
    };
    const candidates = [...this.#peripherals.values()].filter(matches);
    const picked = choice === undefined ? candidates[0] : candidates.find((p) => p.serial === choice);
    // Nothing to pick: the chooser stays empty and the user closes it.
    if (!picked) return fail('NotFoundError', 'User cancelled the requestDevice() chooser.');
    const allowed = [...new Set([...(options.filters ?? []).flatMap((f) => f.services ?? []), ...(options.optionalServices ?? [])])];
    return { ok: true, value: { id: picked.id, name: picked.sim.radio!.advertising()!.name, allowed } };
  }

  #connect(id: string): Reply {
    const p = this.#peripherals.get(id);
    if (!p) return fail('NetworkError', 'Bluetooth Device is no longer in range.');
    if (p.link?.connected()) return { ok: true, value: p.generation };
    this.#release(p);
    const radio = p.sim.radio;
    if (!p.inRange || !radio?.advertising()) return fail('NetworkError', 'Connection attempt failed.');
    const generation = ++p.generation;
    p.link = radio.connect((frame) => {
      if (p.generation !== generation || !p.link) return;
      if (!p.subscribed) {
        this.stats.lostBeforeSubscribe++;
        return;
      }
      this.#events.push({ id, generation, kind: 'frame', bytes: Array.from(frame) });
    });
    this.stats.connects++;
    return { ok: true, value: generation };
  }

  #gatt(op: 'read' | 'write' | 'subscribe', id: string, generation: number, uuid: string, bytes: number[] | undefined): Reply {
    const p = this.#peripherals.get(id);
    if (!p?.link?.connected() || p.generation !== generation) {
      return fail('NetworkError', 'GATT Server is disconnected. Cannot perform GATT operations. (Re)connect first with `device.gatt.connect`.');
    }
    if (op === 'read') {
      if (uuid !== INFO_UUID) return fail('NotSupportedError', 'GATT operation not permitted.');
      this.stats.reads++;
      return { ok: true, value: Array.from(new TextEncoder().encode(p.link.info())) };
    }
    if (op === 'write') {
      if (uuid !== ACK_UUID) return fail('NotSupportedError', 'GATT operation not permitted.');
      p.link.writeAck(Uint8Array.from(bytes ?? []));
      this.stats.writes++;
      return { ok: true };
    }
    if (uuid !== FRAMES_UUID) return fail('NotSupportedError', 'GATT operation not permitted.');
    p.subscribed = true;
    // startNotifications writes the CCCD: the firmware hears it (onWriteDesc).
    p.link.subscribe(true);
    return { ok: true };
  }
}

/**
 * Runs in the page before its scripts (page.addInitScript), so it must not
 * refer to anything outside itself.
 */
function pageSide(uuids: { service: string; frames: string; ack: string; info: string }): void {
  type Reply = { ok: true; value?: unknown } | { ok: false; name: string; message: string };
  const w = window as unknown as {
    __sealpostBle(op: string, ...args: unknown[]): Promise<Reply>;
    __sealpostBleDeliver?(events: { id: string; generation: number; kind: string; bytes?: number[] }[]): void;
  };
  const call = async (op: string, ...args: unknown[]): Promise<unknown> => {
    const r = await w.__sealpostBle(op, ...args);
    if (!r.ok) throw new DOMException(r.message, r.name);
    return r.value;
  };
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const checkUuid = (uuid: unknown, what: string) => {
    if (typeof uuid !== 'string' || !UUID.test(uuid)) throw new TypeError(`Failed to execute: Invalid ${what} name: '${String(uuid)}'. It must be a valid UUID alias or a lowercase 128-bit UUID string.`);
  };
  const disconnectedError = () => new DOMException('GATT Server is disconnected. Cannot perform GATT operations. (Re)connect first with `device.gatt.connect`.', 'NetworkError');

  class Characteristic extends EventTarget {
    value: DataView | null = null;
    notifying = false;
    readonly #buffer = new ArrayBuffer(512);
    constructor(
      readonly service: Service,
      readonly uuid: string,
      readonly properties: { read: boolean; write: boolean; notify: boolean },
    ) {
      super();
    }
    get #device(): Device {
      return this.service.device;
    }
    async readValue(): Promise<DataView> {
      if (!this.properties.read) throw new DOMException('GATT operation not permitted.', 'NotSupportedError');
      const bytes = (await this.#device.op(this.service.generation, () => call('read', this.#device.id, this.service.generation, this.uuid))) as number[];
      this.value = new DataView(new Uint8Array(bytes).buffer);
      this.dispatchEvent(new Event('characteristicvaluechanged', { bubbles: true }));
      return this.value;
    }
    async writeValueWithResponse(value: BufferSource): Promise<void> {
      if (!this.properties.write) throw new DOMException('GATT operation not permitted.', 'NotSupportedError');
      const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      if (bytes.length > 512) throw new DOMException('Value can\'t exceed 512 bytes.', 'InvalidModificationError');
      const copy = Array.from(bytes);
      await this.#device.op(this.service.generation, () => call('write', this.#device.id, this.service.generation, this.uuid, copy));
    }
    async startNotifications(): Promise<Characteristic> {
      if (!this.properties.notify) throw new DOMException('GATT operation not permitted.', 'NotSupportedError');
      await this.#device.op(this.service.generation, () => call('subscribe', this.#device.id, this.service.generation, this.uuid));
      this.notifying = true;
      return this;
    }
    notify(bytes: number[]): void {
      // One buffer for every notification, as a browser may do.
      new Uint8Array(this.#buffer).set(bytes);
      this.value = new DataView(this.#buffer, 0, bytes.length);
      this.dispatchEvent(new Event('characteristicvaluechanged', { bubbles: true }));
    }
  }

  class Service {
    readonly isPrimary = true;
    constructor(
      readonly device: Device,
      readonly uuid: string,
      readonly generation: number,
    ) {}
    async getCharacteristic(uuid: string): Promise<Characteristic> {
      checkUuid(uuid, 'Characteristic');
      if (!this.device.gatt.connected || this.device.generation !== this.generation) throw disconnectedError();
      const props = uuid === uuids.frames ? { read: false, write: false, notify: true } : uuid === uuids.ack ? { read: false, write: true, notify: false } : uuid === uuids.info ? { read: true, write: false, notify: false } : undefined;
      if (!props) throw new DOMException(`No Characteristics matching UUID ${uuid} found in Service with UUID ${this.uuid}.`, 'NotFoundError');
      // One object per characteristic and connection, as Chrome keeps them.
      let c = this.device.characteristics.get(uuid);
      if (!c) {
        c = new Characteristic(this, uuid, props);
        this.device.characteristics.set(uuid, c);
      }
      return c;
    }
  }

  class Server {
    connected = false;
    constructor(readonly device: Device) {}
    async connect(): Promise<Server> {
      const generation = (await call('connect', this.device.id)) as number;
      if (this.device.generation !== generation) {
        this.device.generation = generation;
        this.device.characteristics.clear();
      }
      this.connected = true;
      return this;
    }
    disconnect(): void {
      if (!this.connected) return;
      void call('disconnect', this.device.id).catch(() => undefined);
      this.device.lost();
    }
    async getPrimaryService(uuid: string): Promise<Service> {
      checkUuid(uuid, 'Service');
      if (!this.connected) throw disconnectedError();
      if (!this.device.allowed.includes(uuid)) {
        throw new DOMException(`Origin is not allowed to access the service. Tip: Add the service UUID to 'optionalServices' in requestDevice() options.`, 'SecurityError');
      }
      if (uuid !== uuids.service) throw new DOMException(`No Services matching UUID ${uuid} found in Device.`, 'NotFoundError');
      return new Service(this.device, uuid, this.device.generation);
    }
  }

  class Device extends EventTarget {
    readonly gatt = new Server(this);
    generation = 0;
    readonly characteristics = new Map<string, Characteristic>();
    #busy = false;
    constructor(
      readonly id: string,
      readonly name: string,
      public allowed: string[],
    ) {
      super();
    }
    async op<T>(generation: number, fn: () => Promise<T>): Promise<T> {
      if (!this.gatt.connected || generation !== this.generation) throw disconnectedError();
      if (this.#busy) {
        void call('busy').catch(() => undefined);
        throw new DOMException('GATT operation already in progress.', 'NetworkError');
      }
      this.#busy = true;
      try {
        return await fn();
      } finally {
        this.#busy = false;
      }
    }
    lost(): void {
      this.gatt.connected = false;
      this.characteristics.clear();
      this.dispatchEvent(new Event('gattserverdisconnected', { bubbles: true }));
    }
  }

  const devices = new Map<string, Device>();

  const bluetooth = {
    async getAvailability(): Promise<boolean> {
      return true;
    },
    async requestDevice(options: { filters?: { services?: string[] }[]; optionalServices?: string[]; acceptAllDevices?: boolean }): Promise<Device> {
      if (!navigator.userActivation.isActive) throw new DOMException('Must be handling a user gesture to show a permission request.', 'SecurityError');
      if (!options || (options.filters === undefined) === (options.acceptAllDevices !== true)) {
        throw new TypeError("Failed to execute 'requestDevice' on 'Bluetooth': Either 'filters' should be present or 'acceptAllDevices' should be true, but not both.");
      }
      if (options.filters && (!Array.isArray(options.filters) || options.filters.length === 0)) throw new TypeError("Failed to execute 'requestDevice' on 'Bluetooth': 'filters' member must be non-empty to find any devices.");
      for (const f of options.filters ?? []) for (const s of f.services ?? []) checkUuid(s, 'Service');
      for (const s of options.optionalServices ?? []) checkUuid(s, 'Service');
      const r = (await call('requestDevice', options)) as { id: string; name: string; allowed: string[] };
      let d = devices.get(r.id);
      if (!d) {
        d = new Device(r.id, r.name, r.allowed);
        devices.set(r.id, d);
      } else d.allowed = [...new Set([...d.allowed, ...r.allowed])];
      return d;
    },
  };
  Object.defineProperty(Navigator.prototype, 'bluetooth', { configurable: true, get: () => bluetooth });

  w.__sealpostBleDeliver = (events) => {
    for (const e of events) {
      const d = devices.get(e.id);
      if (!d || !d.gatt.connected || d.generation !== e.generation) continue;
      if (e.kind === 'gone') d.lost();
      else {
        const c = d.characteristics.get(uuids.frames);
        if (c?.notifying && e.bytes) c.notify(e.bytes);
      }
    }
  };
}
