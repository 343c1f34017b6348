// The relay in a Capacitor app (`sealpost/relay/capacitor`; docs/relay.md,
// "App adapters"): DeviceLinks over @capacitor-community/bluetooth-le's
// BleClient (iOS, Android, and its Web Bluetooth implementation on the web),
// scanning for the service UUID, and a DeviceRunner that relays every device
// found, reconnecting with backoff. The app hands in its BleClient (style.md
// rule 1), so this module imports nothing from the plugin but its types and
// works with any plugin version whose BleClient has these calls.
import type { BleClientInterface, BleDevice, ScanResult } from '@capacitor-community/bluetooth-le';
import { ACK_UUID, FRAMES_UUID, GattQueue, INFO_UUID, NAME_PREFIX, SERVICE_UUID, writeInOrder, type DeviceLink } from '../index.js';
import { EndingLink } from '../link-setup.js';
import { DeviceRunner, MissingServiceError, type AdapterDeviceStatus, type RunnerOptions } from './runner.js';

export { MissingServiceError, type AdapterDeviceState, type AdapterDeviceStatus } from './runner.js';

/** The calls of the plugin's BleClient the adapter uses. */
export type CapacitorBle = Pick<BleClientInterface, 'initialize' | 'requestDevice' | 'requestLEScan' | 'stopLEScan' | 'connect' | 'disconnect' | 'getServices' | 'read' | 'write' | 'startNotifications'>;

export interface CapacitorRelayOptions extends RunnerOptions {
  /** The plugin's `BleClient`. */
  ble: CapacitorBle;
  /** A connection attempt taking longer is abandoned (and retried). Default 10 s. */
  connectTimeoutMs?: number;
}

const lower = (u: string) => u.toLowerCase();

function bytesOf(view: DataView): Uint8Array {
  // A copy: the platform may reuse the buffer for the next value.
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

/** One connected device over the plugin: every GATT operation through one queue, writes with response. */
class CapacitorLink extends EndingLink implements DeviceLink {
  readonly #ble: CapacitorBle;
  readonly #id: string;
  readonly #queue = new GattQueue();

  constructor(ble: CapacitorBle, id: string, onEnd: () => void) {
    super(onEnd);
    this.#ble = ble;
    this.#id = id;
  }

  info(): Promise<Uint8Array> {
    return this.#queue.run(async () => bytesOf(await this.#ble.read(this.#id, SERVICE_UUID, INFO_UUID)));
  }

  async onFrame(cb: (frame: Uint8Array) => void): Promise<void> {
    await this.#queue.run(() =>
      this.#ble.startNotifications(this.#id, SERVICE_UUID, FRAMES_UUID, (value) => {
        if (!this.ended) cb(bytesOf(value));
      }),
    );
  }

  write(writes: readonly Uint8Array[]): Promise<void> {
    return writeInOrder(this.#queue, writes, async (bytes) => {
      if (this.ended) throw new Error('the device is disconnected');
      await this.#ble.write(this.#id, SERVICE_UUID, ACK_UUID, new DataView(bytes.slice().buffer));
    });
  }

  protected close(): Promise<void> {
    return this.#ble.disconnect(this.#id);
  }
}

/**
 * Relays every sealpost device it is given or finds: `scan()` on iOS and
 * Android, `requestDevice()` (the browser's chooser, from a tap) on the web.
 */
export class CapacitorRelay {
  readonly #ble: CapacitorBle;
  readonly #runner: DeviceRunner;
  readonly #connectTimeoutMs: number;
  /** The link each device id has now, for the plugin's disconnect callback. */
  readonly #links = new Map<string, CapacitorLink>();
  #scanning = false;

  constructor(options: CapacitorRelayOptions) {
    this.#ble = options.ble;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#runner = new DeviceRunner((id, ended) => this.#openLink(id, ended), options);
  }

  /** Initializes the plugin (asks for the Bluetooth permissions on Android and iOS; on the web fails without an adapter). */
  async start(): Promise<void> {
    await this.#ble.initialize({ androidNeverForLocation: true });
  }

  /** Scans for devices advertising the sealpost service and relays each one found, until stopScan(). */
  async scan(): Promise<void> {
    if (this.#scanning) return;
    await this.#ble.requestLEScan({ services: [SERVICE_UUID] }, (result: ScanResult) => this.add(result.device));
    this.#scanning = true;
  }

  async stopScan(): Promise<void> {
    if (!this.#scanning) return;
    this.#scanning = false;
    await this.#ble.stopLEScan();
  }

  /** The platform's device chooser, filtered to sealpost devices (call it from a tap on the web); relays the device picked. */
  async requestDevice(): Promise<BleDevice> {
    const device = await this.#ble.requestDevice({ services: [SERVICE_UUID], optionalServices: [SERVICE_UUID] });
    this.add(device);
    return device;
  }

  /** Relays this device (from a scan of the app's own, or one known from before), reconnecting it with backoff. */
  add(device: BleDevice): void {
    this.#runner.add(device.deviceId, device.name ?? undefined);
  }

  /** Stops relaying a device and disconnects it. */
  remove(deviceId: string): Promise<void> {
    return this.#runner.remove(deviceId);
  }

  devices(): AdapterDeviceStatus[] {
    return this.#runner.status();
  }

  /** Stops scanning and disconnects every device. The relay stays open: close it after. */
  async stop(): Promise<void> {
    await this.stopScan().catch(() => undefined);
    await this.#runner.close();
  }

  async #openLink(id: string, ended: () => void): Promise<DeviceLink> {
    let link: CapacitorLink | undefined;
    let droppedEarly = false;
    await this.#ble.connect(
      id,
      () => {
        const l = this.#links.get(id);
        if (l) l.end();
        else droppedEarly = true;
      },
      { timeout: this.#connectTimeoutMs },
    );
    try {
      let services;
      try {
        services = await this.#ble.getServices(id);
      } catch (e) {
        if ((e as Error)?.name === 'NotFoundError') throw new MissingServiceError('the device does not offer the sealpost service', { cause: e });
        throw e;
      }
      const service = services.find((s) => lower(s.uuid) === SERVICE_UUID);
      if (!service) throw new MissingServiceError('the device does not offer the sealpost service');
      for (const [uuid, what] of [[FRAMES_UUID, 'frames'], [ACK_UUID, 'ack'], [INFO_UUID, 'info']] as const) {
        if (!service.characteristics.some((c) => lower(c.uuid) === uuid)) throw new MissingServiceError(`the device's sealpost service has no ${what} characteristic`);
      }
      link = new CapacitorLink(this.#ble, id, () => {
        if (this.#links.get(id) === link) this.#links.delete(id);
        ended();
      });
      this.#links.set(id, link);
      if (droppedEarly) link.end();
      return link;
    } catch (e) {
      await this.#ble.disconnect(id).catch(() => undefined);
      throw e;
    }
  }
}

/** The name a sealpost device advertises starts with this (docs/protocol.md section 7). */
export { NAME_PREFIX, SERVICE_UUID };
