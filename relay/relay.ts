// The phone relay, platform-neutral (design brief, "Delivery"; docs/relay.md).
//
// It connects to devices through DeviceLinks, reads their public info,
// stamps every notified frame with its receive time, keeps it in a durable
// QueueStore, POSTs batches to /v1/uplink and writes each device's ack back.
// It holds no key: it reads the cleartext counter (docs/protocol.md section 5)
// and the ack's N (section 6), nothing else, and never changes a byte.
//
// Everything it touches is injected (style.md rule 1): the clock, the
// uploader, the queue store and the links. No node: import here or in
// anything it imports, so the same module runs in the Web Bluetooth page
// (IndexedDB store, fetch uploader, GATT links) and under Node
// (relay/file-queue.ts, sim/relay.ts).
//
// Safety does not depend on the relay: a device frees a frame only when an
// ack it can verify covers it, so a relay that loses its queue, drops a frame
// or crashes costs a resend, never a sample. The queue is what lets a phone
// carry frames while it has no network.
//
// This class receives frames and keeps the links; its parts are the queue
// (queue.ts), the uploads and their answers (uploads.ts, answer.ts) and the
// acks written back (acks.ts).
import { readU32BE } from '../protocol/wire/be.js';
import { toBase64 } from '../protocol/base64.js';
import { RelayError, type DeviceLink, type RelayClock, type RelayDeviceStatus, type RelayLog, type RelayOptions, type RelayStatus, type RelayTotals } from './contracts.js';
import { parseDeviceInfo, type DeviceInfo } from './device-info.js';
import { deviceStatus, newDevice, type Device } from './devices.js';
import { Acks } from './acks.js';
import { defaultLog, errorText } from './log.js';
import { FrameQueue } from './queue.js';
import { relaySettings, type RelaySettings } from './settings.js';
import { Uploads } from './uploads.js';

export class Relay {
  readonly relayId: string;
  readonly #clock: RelayClock;
  readonly #log: RelayLog;
  readonly #onChange: (() => void) | undefined;
  readonly #o: RelaySettings;
  readonly #devices = new Map<string, Device>();
  readonly #queue: FrameQueue;
  readonly #acks: Acks;
  readonly #uploads: Uploads;

  #idleWaiters: (() => void)[] = [];
  #pollTimer: unknown;
  #closed = false;
  #queueFullLogged = false;
  readonly #totals: RelayTotals = {
    received: 0,
    queued: 0,
    repeats: 0,
    settledSkips: 0,
    malformed: 0,
    refused: 0,
    requests: 0,
    failedRequests: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
    dropped: 0,
    acksWritten: 0,
    stalls: 0,
  };

  private constructor(options: RelayOptions) {
    this.#o = relaySettings(options);
    this.relayId = options.relayId;
    this.#clock = options.clock;
    this.#log = options.log ?? defaultLog;
    this.#onChange = options.onChange;
    const log = this.#log;
    this.#queue = new FrameQueue(options.store, {
      log,
      durable: (count) => {
        this.#totals.queued += count;
        this.#uploads.kick();
        this.#changed();
      },
      left: (entry) => {
        const d = this.#devices.get(entry.serial);
        if (d) d.queued--;
      },
      settled: () => this.#maybeIdle(),
    });
    this.#acks = new Acks({
      clock: this.#clock,
      log,
      totals: this.#totals,
      queue: this.#queue,
      stallMs: this.#o.stallMs,
      dropped: (d, link) => this.#linkDropped(d, link),
    });
    this.#uploads = new Uploads({
      relayId: this.relayId,
      clock: this.#clock,
      upload: options.upload,
      settings: this.#o,
      queue: this.#queue,
      devices: this.#devices,
      acks: this.#acks,
      totals: this.#totals,
      log,
      random: options.random ?? Math.random,
      answered: () => {
        this.#changed();
        this.#maybeIdle();
      },
    });
  }

  /** Opens a relay on `options.store`: frames left from an earlier run are queued again and uploaded. */
  static async open(options: RelayOptions): Promise<Relay> {
    const relay = new Relay(options);
    await relay.#queue.load(relay.#clock.now());
    relay.#uploads.kick();
    return relay;
  }

  // ---- devices ------------------------------------------------------------

  /**
   * Takes over a freshly connected link: reads info, subscribes to frames,
   * writes the device's latest ack if the relay holds one. Resolves to the
   * serial; on bad info it disconnects the link and throws a RelayError.
   */
  async connect(link: DeviceLink): Promise<string> {
    if (this.#closed) throw new RelayError('relay is closed');
    let info: DeviceInfo;
    try {
      info = parseDeviceInfo(await link.info());
    } catch (e) {
      this.#log('warn', `refused a device: ${errorText(e)}`);
      await Promise.resolve(link.disconnect()).catch(() => undefined);
      throw e instanceof RelayError ? e : new RelayError(`reading device info failed: ${errorText(e)}`);
    }
    let d = this.#devices.get(info.serial);
    if (!d) {
      d = newDevice(info);
      // Frames left from an earlier run count as this device's, so uploading them cannot drive `queued` below zero.
      d.queued = this.#queue.countFor(info.serial);
      this.#devices.set(info.serial, d);
    } else if (d.info.f !== info.f) {
      this.#log('warn', `${info.serial} now reports frame size ${info.f} (was ${d.info.f})`);
    }
    const device = d;
    const previous = device.link;
    device.info = info;
    device.link = link;
    device.state = 'connecting';
    device.ackWrittenN = 0;
    if (previous && previous !== link) await Promise.resolve(previous.disconnect()).catch(() => undefined);
    try {
      await link.onFrame((frame) => this.#receive(device, frame));
    } catch (e) {
      if (device.link === link) device.state = 'disconnected';
      throw new RelayError(`subscribing to ${info.serial} frames failed: ${errorText(e)}`);
    }
    if (device.link !== link) return info.serial;
    link.onDisconnect?.(() => this.#linkDropped(device, link));
    device.state = 'connected';
    device.connections++;
    device.connectedAt = this.#clock.now();
    this.#log('info', `${info.serial} connected (frame size ${info.f}${info.b ? `, ${info.b}` : ''}${info.fw ? ` fw ${info.fw}` : ''})`);
    if (device.ack) void this.#acks.write(device);
    this.#poll();
    this.#changed();
    return info.serial;
  }

  /** The platform tells the relay a link is gone (same as the link's onDisconnect). */
  disconnected(serial: string): void {
    const d = this.#devices.get(serial);
    if (d?.link) this.#linkDropped(d, d.link);
  }

  #linkDropped(device: Device, link: DeviceLink): void {
    if (device.link !== link || device.state === 'disconnected') return;
    device.state = 'disconnected';
    device.link = undefined;
    this.#log('info', `${device.serial} disconnected`);
    this.#changed();
  }

  #poll(): void {
    if (this.#pollTimer !== undefined || this.#o.linkPollMs === 0 || this.#closed) return;
    this.#pollTimer = this.#clock.setTimeout(() => {
      this.#pollTimer = undefined;
      let live = 0;
      for (const d of this.#devices.values()) {
        if (!d.link) continue;
        if (d.link.connected()) live++;
        else this.#linkDropped(d, d.link);
      }
      if (live > 0) this.#poll();
    }, this.#o.linkPollMs);
  }

  #receive(device: Device, frame: Uint8Array): void {
    if (this.#closed) return;
    const t = this.#totals;
    t.received++;
    device.received++;
    device.lastFrameAt = this.#clock.now();
    if (!(frame instanceof Uint8Array) || frame.length !== device.info.f || readU32BE(frame, 0) === 0) {
      t.malformed++;
      if (!device.malformedLogged) {
        device.malformedLogged = true;
        this.#log('warn', `${device.serial} sent a frame of ${frame?.length ?? '?'} bytes or with counter 0 (frame size ${device.info.f}); dropped (logged once per device)`);
      }
      return;
    }
    const counter = readU32BE(frame, 0);
    if (counter > device.maxCounter) device.maxCounter = counter;
    // Settled at the server already (its ack said so): the device sends it
    // only because it has not seen that ack yet.
    if (counter <= device.ackN) {
      t.settledSkips++;
      return;
    }
    const data = toBase64(frame);
    // The same bytes the server said it stored (a different frame under the
    // same counter still goes up: the server must see a reused counter).
    if (device.storedAbove.get(counter) === data) {
      t.settledSkips++;
      return;
    }
    if (this.#queue.holds(device.serial, data)) {
      t.repeats++;
      return;
    }
    if (this.#queue.size >= this.#o.maxQueueFrames) {
      t.refused++;
      if (!this.#queueFullLogged) {
        this.#queueFullLogged = true;
        this.#log('warn', `queue full (${this.#o.maxQueueFrames} frames): new frames are refused; devices keep them until there is room`);
      }
      return;
    }
    this.#queueFullLogged = false;
    const now = this.#clock.now();
    this.#queue.add(device.serial, data, Math.max(0, Math.round(now)), counter, now);
    device.queued++;
  }

  // ---- uploads, status and lifecycle ---------------------------------------

  /** Uploads now instead of waiting for the flush delay (a backoff still applies). */
  flush(): void {
    this.#uploads.kick(true);
  }

  status(): RelayStatus {
    const devices: RelayDeviceStatus[] = [];
    for (const d of this.#devices.values()) {
      if (d.link && d.state !== 'disconnected' && !d.link.connected()) this.#linkDropped(d, d.link);
      devices.push(deviceStatus(d));
    }
    return {
      relayId: this.relayId,
      queue: this.#queue.size,
      ...this.#uploads.status(),
      devices,
      totals: { ...this.#totals },
    };
  }

  /** True when no store write or answer handling is under way (a request may still be on the network). */
  isIdle(): boolean {
    return !this.#queue.busy && !this.#uploads.handling;
  }

  /** Resolves when isIdle(): every frame received so far is durable and every answer received is handled. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #maybeIdle(): void {
    if (!this.isIdle() || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #changed(): void {
    try {
      this.#onChange?.();
    } catch (e) {
      this.#log('error', `status listener failed: ${errorText(e)}`);
    }
  }

  /**
   * Stops: abandons a request in flight (its frames stay queued), waits for
   * store writes to finish and disconnects every link. The store can be
   * closed afterwards.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#uploads.close();
    if (this.#pollTimer !== undefined) this.#clock.clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    await this.#queue.close();
    for (const d of this.#devices.values()) {
      const link = d.link;
      d.link = undefined;
      d.state = 'disconnected';
      if (link) await Promise.resolve(link.disconnect()).catch(() => undefined);
    }
    this.#maybeIdle();
  }
}
