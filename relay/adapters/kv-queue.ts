// The relay's queue over a small key-value store (docs/relay.md, "App
// adapters"), for React Native apps: AsyncStorage, MMKV, or SQLite behind the
// three calls of KeyValueStore. One key per appended batch and one index key;
// a power cut at any point loses at most the batch whose append had not
// resolved, never a frame that was durable, and never corrupts what loads.
// MemoryKeyValueStore is the reference implementation of the interface.
import { RelayError, type QueueStore, type QueuedFrame } from '../index.js';

/**
 * What the queue needs from the platform's storage. setItem and removeItem
 * resolve once the change is durable, and each is atomic: after a power cut
 * a key holds its old value or its new one, never part of either
 * (AsyncStorage's SQLite/RocksDB back ends and MMKV behave so).
 */
export interface KeyValueStore {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

/** The reference KeyValueStore: a Map (atomic writes by construction; lost on restart). */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly map: Map<string, string>;

  constructor(map = new Map<string, string>()) {
    this.map = map;
  }
  async getItem(key: string): Promise<string | null> {
    return this.map.get(key) ?? null;
  }
  async setItem(key: string, value: string): Promise<void> {
    this.map.set(key, value);
  }
  async removeItem(key: string): Promise<void> {
    this.map.delete(key);
  }
}

const isFrame = (f: unknown): f is QueuedFrame => {
  const q = f as QueuedFrame;
  return !!q && Number.isSafeInteger(q.id) && typeof q.serial === 'string' && typeof q.data === 'string' && typeof q.rx === 'number';
};

/**
 * A QueueStore over a KeyValueStore under `prefix`. The index key lists the
 * batch keys; a batch key holds the frames of one append still queued.
 * append writes the index naming the new batch first and the batch second
 * (a cut between leaves a name with no value, skipped on load); remove
 * rewrites the batches it touches, then the index, then deletes the batches
 * it emptied (a cut in between brings some removed frames back: they go up
 * again and the server counts them as duplicates).
 */
export class KvQueueStore implements QueueStore {
  readonly #kv: KeyValueStore;
  readonly #prefix: string;
  /** batch key -> ids still in it, as stored. */
  #batches = new Map<string, QueuedFrame[]>();

  constructor(kv: KeyValueStore, prefix = 'sealpost-relay') {
    this.#kv = kv;
    this.#prefix = prefix;
  }

  get #indexKey(): string {
    return `${this.#prefix}:index`;
  }

  async load(): Promise<QueuedFrame[]> {
    this.#batches = new Map();
    const index = await this.#kv.getItem(this.#indexKey);
    if (index === null) return [];
    let keys: unknown;
    try {
      keys = JSON.parse(index);
    } catch {
      throw new RelayError(`the queue's index (${this.#indexKey}) is not JSON: remove the key to start with an empty queue`);
    }
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string' && k.startsWith(`${this.#prefix}:b:`))) {
      throw new RelayError(`the queue's index (${this.#indexKey}) is not a list of its batch keys: remove the key to start with an empty queue`);
    }
    const out: QueuedFrame[] = [];
    for (const key of keys as string[]) {
      const value = await this.#kv.getItem(key);
      if (value === null) continue; // a cut between the index write and the batch write
      let frames: unknown;
      try {
        frames = JSON.parse(value);
      } catch {
        continue; // not written by this store: its frames are lost, the devices resend them
      }
      if (!Array.isArray(frames)) continue;
      const good = frames.filter(isFrame);
      this.#batches.set(key, good);
      out.push(...good);
    }
    return out;
  }

  async append(frames: QueuedFrame[]): Promise<void> {
    if (frames.length === 0) return;
    const key = `${this.#prefix}:b:${frames[0]!.id}`;
    const next = new Map(this.#batches);
    next.set(key, frames.map((f) => ({ id: f.id, serial: f.serial, data: f.data, rx: f.rx })));
    await this.#kv.setItem(this.#indexKey, JSON.stringify([...next.keys()]));
    await this.#kv.setItem(key, JSON.stringify(next.get(key)));
    this.#batches = next;
  }

  async remove(ids: number[]): Promise<void> {
    const gone = new Set(ids);
    const emptied: string[] = [];
    for (const [key, frames] of this.#batches) {
      const kept = frames.filter((f) => !gone.has(f.id));
      if (kept.length === frames.length) continue;
      if (kept.length === 0) emptied.push(key);
      else {
        await this.#kv.setItem(key, JSON.stringify(kept));
        this.#batches.set(key, kept);
      }
    }
    if (emptied.length === 0) return;
    for (const key of emptied) this.#batches.delete(key);
    await this.#kv.setItem(this.#indexKey, JSON.stringify([...this.#batches.keys()]));
    for (const key of emptied) await this.#kv.removeItem(key);
  }
}
