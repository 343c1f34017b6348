// A BLE peripheral as the firmware sees it, with the failure Espruino has:
// notifications go into a small transmit queue that drains one packet per
// connection event, and a notification sent into a full queue is dropped
// without any error (espruino.md, "BLE"). The relay side connects, reads
// info, receives notifications and writes acks through `SimLink`.
import { RADIO_ACK, RADIO_CONNECT, RADIO_DISCONNECT, RADIO_SUBSCRIBE, RADIO_UNSUBSCRIBE, type RadioHal, type RadioOptions } from '../types.js';

export interface SimRadioOptions {
  /** Packets the transmit queue holds. */
  queue?: number;
  /** Milliseconds per connection event (one packet drained per event). */
  intervalMs?: number;
  /** Extra chance of losing a notification in the air, 0..1 (chaos tests). */
  lossRate?: number;
  random?: () => number;
  setTimeout(fn: () => void, ms: number): unknown;
}

export interface SimLink {
  info(): string;
  /** Writes an acknowledgement to the ack characteristic. */
  writeAck(data: Uint8Array): void;
  /** Writes the frames characteristic's CCCD: notifications on (true) or off. */
  subscribe(on: boolean): void;
  disconnect(): void;
  connected(): boolean;
}

export class SimRadio implements RadioHal {
  #opts: RadioOptions | undefined;
  #peer: ((frame: Uint8Array) => void) | undefined;
  #queue: Uint8Array[] = [];
  #draining = false;
  #dead = false;
  readonly stats = { notified: 0, droppedQueueFull: 0, lostInAir: 0, delivered: 0 };
  readonly #sim: Required<Omit<SimRadioOptions, 'setTimeout'>> & Pick<SimRadioOptions, 'setTimeout'>;

  constructor(options: SimRadioOptions) {
    this.#sim = { queue: 6, intervalMs: 4, lossRate: 0, random: Math.random, ...options };
  }

  start(opts: RadioOptions): void {
    this.#opts = opts;
  }

  advertising(): { name: string } | undefined {
    return this.#opts && !this.#peer && !this.#dead ? { name: this.#opts.name } : undefined;
  }

  connected(): boolean {
    return this.#peer !== undefined;
  }

  notify(frame: Uint8Array): void {
    if (!this.#peer) return;
    this.stats.notified++;
    if (this.#queue.length >= this.#sim.queue) {
      this.stats.droppedQueueFull++;
      return;
    }
    this.#queue.push(frame.slice());
    this.#drain();
  }

  /** The relay connects; frames arrive at `onFrame`. Fails when the device is not advertising. */
  connect(onFrame: (frame: Uint8Array) => void): SimLink {
    if (!this.#opts || this.#dead) throw new Error('device is not advertising');
    if (this.#peer) throw new Error('device already has a connection (one at a time as a peripheral)');
    this.#peer = onFrame;
    this.#opts.onEvent(RADIO_CONNECT);
    const opts = this.#opts;
    let open = true;
    return {
      info: () => opts.info,
      writeAck: (data: Uint8Array) => {
        if (open && this.#peer === onFrame && !this.#dead) opts.onEvent(RADIO_ACK, data.slice());
      },
      subscribe: (on: boolean) => {
        if (open && this.#peer === onFrame && !this.#dead) opts.onEvent(on ? RADIO_SUBSCRIBE : RADIO_UNSUBSCRIBE);
      },
      disconnect: () => {
        if (!open) return;
        open = false;
        if (this.#peer === onFrame) this.#drop();
      },
      connected: () => open && this.#peer === onFrame,
    };
  }

  /** Power loss: the link drops without the firmware hearing about it. */
  powerOff(): void {
    this.#dead = true;
    this.#peer = undefined;
    this.#queue = [];
  }

  #drop(): void {
    this.#peer = undefined;
    this.#queue = [];
    this.#opts?.onEvent(RADIO_DISCONNECT);
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    const step = () => {
      const frame = this.#queue.shift();
      if (!frame || !this.#peer) {
        this.#draining = false;
        return;
      }
      if (this.#sim.lossRate > 0 && this.#sim.random() < this.#sim.lossRate) this.stats.lostInAir++;
      else {
        this.stats.delivered++;
        this.#peer(frame);
      }
      this.#sim.setTimeout(step, this.#sim.intervalMs);
    };
    this.#sim.setTimeout(step, this.#sim.intervalMs);
  }
}
