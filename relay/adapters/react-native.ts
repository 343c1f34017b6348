// The relay in a React Native app (`sealpost/relay/react-native`; docs/relay.md,
// "App adapters"): DeviceLinks over react-native-ble-plx's BleManager, a scan
// for the service UUID, and a DeviceRunner that relays every device found,
// reconnecting with backoff. The app hands in its BleManager (style.md rule
// 1), so this module imports nothing from the library but its types. The
// library's errors are read by their documented codes: a device that
// disconnected, an operation cancelled and Android's GATT error 133 are
// retried with backoff; Bluetooth powered off or unauthorized holds every
// attempt until the manager reports PoweredOn.
import type { BleError, BleManager, Device, Subscription } from 'react-native-ble-plx';
import { fromBase64, toBase64 } from '../../protocol/base64.js';
import { ACK_UUID, FRAMES_UUID, GattQueue, INFO_UUID, SERVICE_UUID, writeInOrder, type DeviceLink } from '../index.js';
import { EndingLink } from '../link-setup.js';
import { DeviceRunner, MissingServiceError, type AdapterDeviceStatus, type RunnerOptions } from './runner.js';

export { MissingServiceError, type AdapterDeviceState, type AdapterDeviceStatus } from './runner.js';
export { KvQueueStore, MemoryKeyValueStore, type KeyValueStore } from './kv-queue.js';

/** react-native-ble-plx's BleErrorCode values the adapter acts on (its documented codes). */
export const BLE_ERROR = {
  OperationCancelled: 2,
  BluetoothUnauthorized: 101,
  BluetoothPoweredOff: 102,
  DeviceConnectionFailed: 200,
  DeviceDisconnected: 201,
} as const;
/** Android's GATT_ERROR (status 133), reported as androidErrorCode. */
export const ANDROID_GATT_ERROR = 133;

/** The calls of the library's BleManager the adapter uses. */
export type NativeBle = Pick<
  BleManager,
  | 'state'
  | 'onStateChange'
  | 'startDeviceScan'
  | 'stopDeviceScan'
  | 'connectToDevice'
  | 'cancelDeviceConnection'
  | 'onDeviceDisconnected'
  | 'discoverAllServicesAndCharacteristicsForDevice'
  | 'servicesForDevice'
  | 'characteristicsForDevice'
  | 'readCharacteristicForDevice'
  | 'writeCharacteristicWithResponseForDevice'
  | 'monitorCharacteristicForDevice'
>;

export interface ReactNativeRelayOptions extends RunnerOptions {
  /** The app's `new BleManager()`. */
  ble: NativeBle;
  /** A connection attempt taking longer is abandoned (and retried). Default 10 s. */
  connectTimeoutMs?: number;
}

const lower = (u: string) => u.toLowerCase();
const codeOf = (e: unknown): number | undefined => (e as BleError | null)?.errorCode as number | undefined;

/** What to tell the user for Bluetooth that cannot be used, from a BleError or a manager state; undefined when it can. */
function unusable(codeOrState: number | string | undefined): string | undefined {
  if (codeOrState === BLE_ERROR.BluetoothPoweredOff || codeOrState === 'PoweredOff') return 'Bluetooth is off';
  if (codeOrState === BLE_ERROR.BluetoothUnauthorized || codeOrState === 'Unauthorized') return 'the app may not use Bluetooth: allow it in the settings';
  if (codeOrState === 'Unsupported') return 'this phone has no Bluetooth LE';
  return undefined;
}

/** A BleError in words: its code, Android's status, the library's message. */
export function bleErrorText(e: unknown): string {
  const err = e as BleError | null;
  if (!err || typeof err.errorCode !== 'number') return e instanceof Error ? e.message : String(e);
  const parts = [`${err.message} (code ${err.errorCode}`];
  if (err.androidErrorCode != null) parts.push(`, Android status ${err.androidErrorCode}${(err.androidErrorCode as number) === ANDROID_GATT_ERROR ? ' GATT_ERROR' : ''}`);
  return `${parts.join('')})`;
}

class NativeLink extends EndingLink implements DeviceLink {
  readonly #ble: NativeBle;
  readonly #id: string;
  readonly #queue = new GattQueue();
  readonly #fail: (e: unknown) => Error;
  #monitor: Subscription | undefined;
  readonly #disconnection: Subscription;

  constructor(ble: NativeBle, id: string, onEnd: () => void, fail: (e: unknown) => Error) {
    super(onEnd);
    this.#ble = ble;
    this.#id = id;
    this.#fail = fail;
    this.#disconnection = ble.onDeviceDisconnected(id, () => this.end());
  }

  info(): Promise<Uint8Array> {
    return this.#queue.run(async () => {
      const c = await this.#ble.readCharacteristicForDevice(this.#id, SERVICE_UUID, INFO_UUID).catch((e: unknown) => {
        throw this.#fail(e);
      });
      const bytes = fromBase64(c.value ?? '');
      if (!bytes) throw new Error('the info characteristic read back as bad base64');
      return bytes;
    });
  }

  onFrame(cb: (frame: Uint8Array) => void): Promise<void> {
    // The library resolves nothing when notifications are on: the CCCD write is under way once monitor returns, and
    // a failure comes to the listener. Frames the device sends before it are lost and resent (DeviceLink rule 3).
    return this.#queue.run(async () => {
      this.#monitor = this.#ble.monitorCharacteristicForDevice(this.#id, SERVICE_UUID, FRAMES_UUID, (error, c) => {
        if (this.ended) return;
        if (error) {
          // Cancelled by disconnect() or the drop itself: the drop is reported by onDeviceDisconnected.
          if (codeOf(error) !== BLE_ERROR.OperationCancelled) {
            this.#fail(error);
            this.disconnect();
          }
          return;
        }
        const frame = c?.value ? fromBase64(c.value) : undefined;
        if (frame) cb(frame);
      });
    });
  }

  write(writes: readonly Uint8Array[]): Promise<void> {
    return writeInOrder(this.#queue, writes, async (bytes) => {
      if (this.ended) throw new Error('the device is disconnected');
      await this.#ble.writeCharacteristicWithResponseForDevice(this.#id, SERVICE_UUID, ACK_UUID, toBase64(bytes)).catch((e: unknown) => {
        throw this.#fail(e);
      });
    });
  }

  protected close(): Promise<unknown> {
    return this.#ble.cancelDeviceConnection(this.#id);
  }

  protected override ending(): void {
    this.#monitor?.remove();
    this.#disconnection.remove();
  }
}

/** Relays every sealpost device the scan finds (or the app adds), reconnecting each with backoff. */
export class ReactNativeRelay {
  readonly #ble: NativeBle;
  readonly #runner: DeviceRunner;
  readonly #connectTimeoutMs: number;
  readonly #log: RunnerOptions['log'];
  #state: Subscription | undefined;
  #scanning = false;
  #bluetooth: string = 'Unknown';

  constructor(options: ReactNativeRelayOptions) {
    this.#ble = options.ble;
    this.#log = options.log;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#runner = new DeviceRunner((id, ended) => this.#openLink(id, ended), options);
  }

  /** Follows the adapter's state: attempts wait while Bluetooth is off or not allowed, and start again when it is on. */
  start(): void {
    this.#state ??= this.#ble.onStateChange((state) => this.#stateChanged(state), true);
  }

  /** The manager's last state (PoweredOn, PoweredOff, Unauthorized, Unsupported, Resetting, Unknown). */
  get bluetooth(): string {
    return this.#bluetooth;
  }

  /** Why devices wait, when Bluetooth cannot be used; undefined otherwise. */
  get problem(): string | undefined {
    return this.#runner.held;
  }

  /** Scans for the sealpost service and relays every device found, until stopScan(). */
  async scan(): Promise<void> {
    if (this.#scanning) return;
    this.#scanning = true;
    await this.#ble.startDeviceScan([SERVICE_UUID], { allowDuplicates: false }, (error, device) => {
      if (error) {
        this.#scanning = false;
        const reason = unusable(codeOf(error));
        if (reason) this.#runner.hold(reason);
        this.#log?.('warn', `scan stopped: ${bleErrorText(error)}`);
        return;
      }
      if (device) this.add(device);
    }).catch((e: unknown) => {
      // Refused at once (Bluetooth off, no permission): scan() again, or PoweredOn restarts it after a hold.
      const reason = unusable(codeOf(e));
      if (reason) this.#runner.hold(reason);
      else this.#scanning = false;
      throw this.#fail(e);
    });
  }

  async stopScan(): Promise<void> {
    if (!this.#scanning) return;
    this.#scanning = false;
    await this.#ble.stopDeviceScan();
  }

  /** Relays this device (a Device from a scan of the app's own, or { id } of one known from before). */
  add(device: Pick<Device, 'id'> & { name?: string | null }): void {
    this.#runner.add(device.id, device.name ?? undefined);
  }

  remove(id: string): Promise<void> {
    return this.#runner.remove(id);
  }

  devices(): AdapterDeviceStatus[] {
    return this.#runner.status();
  }

  /** Stops scanning and disconnects every device. The relay stays open: close it after. */
  async stop(): Promise<void> {
    this.#state?.remove();
    this.#state = undefined;
    await this.stopScan().catch(() => undefined);
    await this.#runner.close();
  }

  #stateChanged(state: string): void {
    this.#bluetooth = state;
    const reason = unusable(state);
    if (reason) this.#runner.hold(reason);
    else if (state === 'PoweredOn') {
      this.#runner.resume();
      // A scan does not survive the adapter going off.
      if (this.#scanning) {
        this.#scanning = false;
        void this.scan().catch((e: unknown) => this.#log?.('warn', `scan failed: ${bleErrorText(e)}`));
      }
    }
  }

  async #openLink(id: string, ended: () => void): Promise<DeviceLink> {
    try {
      await this.#ble.connectToDevice(id, { timeout: this.#connectTimeoutMs });
    } catch (e) {
      throw this.#fail(e);
    }
    let link: NativeLink | undefined;
    try {
      await this.#ble.discoverAllServicesAndCharacteristicsForDevice(id);
      const services = await this.#ble.servicesForDevice(id);
      if (!services.some((s) => lower(s.uuid) === SERVICE_UUID)) throw new MissingServiceError('the device does not offer the sealpost service');
      const chars = await this.#ble.characteristicsForDevice(id, SERVICE_UUID);
      for (const [uuid, what] of [[FRAMES_UUID, 'frames'], [ACK_UUID, 'ack'], [INFO_UUID, 'info']] as const) {
        if (!chars.some((c) => lower(c.uuid) === uuid)) throw new MissingServiceError(`the device's sealpost service has no ${what} characteristic`);
      }
      link = new NativeLink(this.#ble, id, ended, (err) => this.#fail(err));
      return link;
    } catch (e) {
      link?.end();
      await this.#ble.cancelDeviceConnection(id).catch(() => undefined);
      throw this.#fail(e);
    }
  }

  /** Holds every attempt when the error says Bluetooth cannot be used; returns the error in words. */
  #fail(e: unknown): Error {
    if (e instanceof MissingServiceError) return e;
    const reason = unusable(codeOf(e));
    if (reason) this.#runner.hold(reason);
    return new Error(bleErrorText(e), { cause: e });
  }
}
