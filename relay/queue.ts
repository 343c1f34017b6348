// The relay's queue (docs/relay.md, "The queue store"): frames received and
// not yet durable, frames made durable in the QueueStore by group commit,
// the index that keeps a resent frame from being queued twice, and removal
// once the server has them. Store calls run one at a time, in order.
import { MAX_FRAME_SIZE, MIN_FRAME_SIZE } from '../protocol/wire/constants.js';
import { readU32BE } from '../protocol/wire/be.js';
import { fromBase64 } from '../protocol/base64.js';
import { isSerial } from '../protocol/serial.js';
import type { QueuedFrame, QueueStore, RelayLog } from './contracts.js';
import { errorText } from './log.js';

/** A queued frame and what the relay reads from it. */
export interface Entry extends QueuedFrame {
  counter: number;
  /** clock.now() when it entered the queue (for the flush delay). */
  queuedAt: number;
}

/** What the queue tells the relay. */
export interface FrameQueueHooks {
  log: RelayLog;
  /** `count` frames became durable: they may go up. */
  durable(count: number): void;
  /** A frame left the queue, or did not become durable after all. */
  left(entry: Entry): void;
  /** A store call finished. */
  settled(): void;
}

const keyOf = (serial: string, data: string) => serial + ' ' + data;
const stored = (e: Entry): QueuedFrame => ({ id: e.id, serial: e.serial, data: e.data, rx: e.rx });

export class FrameQueue {
  readonly #store: QueueStore;
  readonly #hooks: FrameQueueHooks;
  /** Durable frames by id, in id order (Map keeps insertion order and ids only rise). */
  readonly #durable = new Map<number, Entry>();
  /** Frames received but not yet durable. */
  #pending: Entry[] = [];
  /** serial + data of every frame queued or pending, so a resent frame is not queued twice. */
  readonly #index = new Set<string>();
  #nextId = 1;
  #chain: Promise<void> = Promise.resolve();
  #ops = 0;
  #appendQueued = false;
  #closed = false;

  constructor(store: QueueStore, hooks: FrameQueueHooks) {
    this.#store = store;
    this.#hooks = hooks;
  }

  /** Frames durable or being made durable. */
  get size(): number {
    return this.#durable.size + this.#pending.length;
  }

  /** Durable frames: what a request may carry. */
  get durableSize(): number {
    return this.#durable.size;
  }

  /** True while a store call runs or received frames wait for one. */
  get busy(): boolean {
    return this.#ops > 0 || this.#pending.length > 0;
  }

  /** Durable frames, oldest first. */
  durable(): IterableIterator<Entry> {
    return this.#durable.values();
  }

  oldest(): Entry | undefined {
    return this.#durable.values().next().value;
  }

  /** The same bytes of the same device are queued or pending. */
  holds(serial: string, data: string): boolean {
    return this.#index.has(keyOf(serial, data));
  }

  /** A frame of `serial` with a counter at or below `counter` is queued or pending. */
  holdsUpTo(serial: string, counter: number): boolean {
    for (const e of this.#durable.values()) if (e.serial === serial && e.counter <= counter) return true;
    for (const e of this.#pending) if (e.serial === serial && e.counter <= counter) return true;
    return false;
  }

  /** Frames of `serial` queued or pending (a device seen for the first time may have some from an earlier run). */
  countFor(serial: string): number {
    let n = 0;
    for (const e of this.#durable.values()) if (e.serial === serial) n++;
    for (const e of this.#pending) if (e.serial === serial) n++;
    return n;
  }

  /** Queues frames left from an earlier run; unusable or repeated ones are removed from the store. */
  async load(now: number): Promise<void> {
    const frames = await this.#store.load();
    const bad: number[] = [];
    for (const f of [...frames].sort((a, b) => a.id - b.id)) {
      const bytes = typeof f?.data === 'string' ? fromBase64(f.data) : undefined;
      const ok =
        Number.isSafeInteger(f?.id) &&
        f.id > 0 &&
        isSerial(f.serial) &&
        bytes !== undefined &&
        bytes.length >= MIN_FRAME_SIZE &&
        bytes.length <= MAX_FRAME_SIZE &&
        Number.isSafeInteger(f.rx) &&
        f.rx >= 0;
      if (!ok || this.#durable.has(f.id) || this.#index.has(keyOf(f.serial, f.data))) {
        if (Number.isSafeInteger(f?.id)) bad.push(f.id);
        continue;
      }
      this.#durable.set(f.id, { id: f.id, serial: f.serial, data: f.data, rx: f.rx, counter: readU32BE(bytes, 0), queuedAt: now });
      this.#index.add(keyOf(f.serial, f.data));
      this.#nextId = Math.max(this.#nextId, f.id + 1);
    }
    if (bad.length > 0) {
      this.#hooks.log('warn', `queue store held ${bad.length} unusable or repeated frame(s); removed`);
      await this.#store.remove(bad);
    }
    if (this.#durable.size > 0) this.#hooks.log('info', `${this.#durable.size} frame(s) left from an earlier run are queued for upload`);
  }

  /** Queues a received frame; it counts as durable once the store's append resolved. */
  add(serial: string, data: string, rx: number, counter: number, now: number): Entry {
    const entry: Entry = { id: this.#nextId++, serial, data, rx, counter, queuedAt: now };
    this.#index.add(keyOf(serial, data));
    this.#pending.push(entry);
    this.#scheduleAppend();
    return entry;
  }

  /** Removes frames the server has answered for. */
  forget(entries: Entry[]): void {
    if (entries.length === 0) return;
    for (const e of entries) {
      if (!this.#durable.delete(e.id)) continue;
      this.#index.delete(keyOf(e.serial, e.data));
      this.#hooks.left(e);
    }
    const ids = entries.map((e) => e.id);
    this.#op(() => this.#store.remove(ids)).catch((e) =>
      // The frames stay in the store and go up again after a restart: duplicates, harmless.
      this.#hooks.log('error', `queue store could not remove ${ids.length} uploaded frame(s): ${errorText(e)}`),
    );
  }

  /** Makes pending frames durable and waits for every store call; nothing is queued afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    const pending = this.#pending;
    this.#pending = [];
    if (pending.length > 0) {
      await this.#op(() => this.#store.append(pending.map(stored))).catch((e) =>
        this.#hooks.log('error', `queue store refused ${pending.length} frame(s) at close: ${errorText(e)}`),
      );
    }
    await this.#chain;
  }

  #op(op: () => Promise<void>): Promise<void> {
    this.#ops++;
    const run = this.#chain.then(op).finally(() => {
      this.#ops--;
      this.#hooks.settled();
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Group commit: frames arriving while the store is busy share the next append. */
  #scheduleAppend(): void {
    if (this.#appendQueued) return;
    this.#appendQueued = true;
    this.#op(async () => {
      this.#appendQueued = false;
      const list = this.#pending;
      this.#pending = [];
      if (list.length === 0 || this.#closed) return;
      try {
        await this.#store.append(list.map(stored));
      } catch (e) {
        for (const entry of list) {
          this.#index.delete(keyOf(entry.serial, entry.data));
          this.#hooks.left(entry);
        }
        this.#hooks.log('error', `queue store refused ${list.length} frame(s), not queued (the devices keep them): ${errorText(e)}`);
        return;
      }
      for (const entry of list) this.#durable.set(entry.id, entry);
      this.#hooks.durable(list.length);
    }).catch(() => undefined);
  }
}
