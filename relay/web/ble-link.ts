// A DeviceLink (relay/contracts.ts) over Web Bluetooth: the GATT service of
// docs/protocol.md section 7 on one connected BluetoothDevice, mapped as
// docs/relay.md ("The device link") describes.
//
// GATT allows one outstanding operation per connection; Chrome rejects a
// second one with "GATT operation already in progress" (a NetworkError), so
// every read, write and notification switch of a link goes through one queue
// (relay/downlink.ts), the downlink's writes in the order the core gives them.
import { ACK_UUID, FRAMES_UUID, INFO_UUID, SERVICE_UUID } from '../../protocol/wire/ble.js';
import { GattQueue, writeInOrder, type DeviceLink } from '../index.js';
import type { BluetoothDevice, BluetoothRemoteGATTCharacteristic } from './web-bluetooth.js';

/** How a link ended: `lost` (the device or the radio dropped it) or `closed` (disconnect() was called). */
export type LinkEnd = 'lost' | 'closed';

export class LinkError extends Error {
  /** `not-sealpost`: the device lacks the service or a characteristic; `timeout`: connect() took too long. */
  constructor(
    readonly kind: 'no-gatt' | 'timeout' | 'not-sealpost',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LinkError';
  }
}

export interface GattLinkOptions {
  /** Called once when the link ends, however it ends. */
  onEnd?: (how: LinkEnd) => void;
  /** gatt.connect() taking longer than this is abandoned (Android can take 30 s to give up). Default 20 s. */
  connectTimeoutMs?: number;
}

function bytesOf(view: DataView): Uint8Array {
  // A copy: the browser may reuse the DataView's buffer for the next value.
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

export class GattLink implements DeviceLink {
  readonly device: BluetoothDevice;
  readonly #queue = new GattQueue();
  readonly #frames: BluetoothRemoteGATTCharacteristic;
  readonly #ack: BluetoothRemoteGATTCharacteristic;
  readonly #info: BluetoothRemoteGATTCharacteristic;
  readonly #onEnd: ((how: LinkEnd) => void) | undefined;
  #ended = false;
  #onFrame: ((frame: Uint8Array) => void) | undefined;
  #onDisconnect: (() => void) | undefined;

  private constructor(
    device: BluetoothDevice,
    chars: { frames: BluetoothRemoteGATTCharacteristic; ack: BluetoothRemoteGATTCharacteristic; info: BluetoothRemoteGATTCharacteristic },
    onEnd: ((how: LinkEnd) => void) | undefined,
  ) {
    this.device = device;
    this.#frames = chars.frames;
    this.#ack = chars.ack;
    this.#info = chars.info;
    this.#onEnd = onEnd;
    device.addEventListener('gattserverdisconnected', this.#gone);
    this.#frames.addEventListener('characteristicvaluechanged', this.#value);
  }

  /** Connects GATT and finds the sealpost service and its three characteristics. */
  static async open(device: BluetoothDevice, options: GattLinkOptions = {}): Promise<GattLink> {
    const gatt = device.gatt;
    if (!gatt) throw new LinkError('no-gatt', 'the browser gives no GATT access to this device');
    const timeoutMs = options.connectTimeoutMs ?? 20_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = gatt.connect();
    // After a timeout the abandoned attempt rejects; that is expected, not an error to report.
    connecting.catch(() => undefined);
    const server = await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          gatt.disconnect();
          reject(new LinkError('timeout', `the device did not answer within ${Math.round(timeoutMs / 1000)} s`));
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    try {
      let service;
      try {
        service = await server.getPrimaryService(SERVICE_UUID);
      } catch (e) {
        if ((e as Error)?.name === 'NotFoundError') throw new LinkError('not-sealpost', 'the device does not offer the sealpost service', { cause: e });
        throw e;
      }
      const get = async (uuid: string, what: string) => {
        try {
          return await service.getCharacteristic(uuid);
        } catch (e) {
          if ((e as Error)?.name === 'NotFoundError') throw new LinkError('not-sealpost', `the device's sealpost service has no ${what} characteristic`, { cause: e });
          throw e;
        }
      };
      const frames = await get(FRAMES_UUID, 'frames');
      const ack = await get(ACK_UUID, 'ack');
      const info = await get(INFO_UUID, 'info');
      const link = new GattLink(device, { frames, ack, info }, options.onEnd);
      // Dropped while the service was being discovered: report it as usual.
      if (!gatt.connected) link.#end('lost');
      return link;
    } catch (e) {
      gatt.disconnect();
      throw e;
    }
  }

  info(): Promise<Uint8Array> {
    return this.#queue.run(async () => bytesOf(await this.#info.readValue()));
  }

  async onFrame(cb: (frame: Uint8Array) => void): Promise<void> {
    this.#onFrame = cb;
    await this.#queue.run(() => this.#frames.startNotifications());
  }

  write(writes: readonly Uint8Array[]): Promise<void> {
    return writeInOrder(this.#queue, writes, async (bytes) => {
      if (this.#ended) throw new Error('the device is disconnected');
      await this.#ack.writeValueWithResponse(new Uint8Array(bytes));
    });
  }

  disconnect(): void {
    if (this.#ended) return;
    this.#end('closed');
    this.device.gatt?.disconnect();
  }

  connected(): boolean {
    return !this.#ended && this.device.gatt?.connected === true;
  }

  onDisconnect(cb: () => void): void {
    if (this.#ended) queueMicrotask(cb);
    else this.#onDisconnect = cb;
  }

  readonly #value = (): void => {
    const v = this.#frames.value;
    if (!v || this.#ended) return;
    this.#onFrame?.(bytesOf(v));
  };

  readonly #gone = (): void => {
    // The event of an earlier connection, arriving after a reconnect: not ours.
    if (this.device.gatt?.connected) return;
    this.#end('lost');
  };

  #end(how: LinkEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    this.device.removeEventListener('gattserverdisconnected', this.#gone);
    this.#frames.removeEventListener('characteristicvaluechanged', this.#value);
    const cb = this.#onDisconnect;
    this.#onDisconnect = undefined;
    try {
      cb?.();
    } finally {
      this.#onEnd?.(how);
    }
  }
}
