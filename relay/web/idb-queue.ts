// The relay page's QueueStore (relay/contracts.ts) in IndexedDB, so queued frames
// survive a reload, a crash of the tab or a phone restart.
//
// One object store keyed by the frame id. Every append and remove is one
// readwrite transaction, and its promise resolves on the transaction's
// `complete` event: only then has the browser committed it (IndexedDB 3.0,
// "transaction lifecycle"). `durability: 'strict'` asks the browser to flush
// to disk before `complete` (Chrome otherwise reports completion once the
// write reached the OS). Frames are added, never overwritten: an id that is
// already there fails the append (ConstraintError), and the relay core then
// keeps those frames out of the queue, leaving them on the device.
import type { QueuedFrame, QueueStore } from '../index.js';

export const DB_NAME = 'sealpost-relay';
export const STORE_NAME = 'frames';
const DB_VERSION = 1;

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new DOMException('the queue write was aborted', 'AbortError'));
    tx.onerror = (e) => {
      // Let the transaction abort (and report through onabort) rather than
      // swallowing the failed request.
      e.stopPropagation();
    };
  });
}

export class IdbQueueStore implements QueueStore {
  readonly #db: IDBDatabase;

  private constructor(db: IDBDatabase) {
    this.#db = db;
    // Another tab upgrading the database: step aside rather than block it.
    db.onversionchange = () => db.close();
  }

  static open(name = DB_NAME, factory: IDBFactory = indexedDB): Promise<IdbQueueStore> {
    return new Promise((resolve, reject) => {
      let request: IDBOpenDBRequest;
      try {
        request = factory.open(name, DB_VERSION);
      } catch (e) {
        reject(e);
        return;
      }
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(STORE_NAME)) db.createObjectStore(STORE_NAME, { keyPath: 'id' });
      };
      request.onsuccess = () => resolve(new IdbQueueStore(request.result));
      request.onerror = () => reject(request.error ?? new Error(`IndexedDB ${name} could not be opened`));
      request.onblocked = () => reject(new Error(`IndexedDB ${name} is held at an older version by another tab; close the other relay tabs`));
    });
  }

  #tx(mode: IDBTransactionMode): IDBTransaction {
    // durability is Chrome 83+ and Firefox 126+; others ignore the option.
    return this.#db.transaction(STORE_NAME, mode, mode === 'readwrite' ? { durability: 'strict' } : undefined);
  }

  async load(): Promise<QueuedFrame[]> {
    const tx = this.#tx('readonly');
    const request = tx.objectStore(STORE_NAME).getAll();
    await done(tx);
    return (request.result as QueuedFrame[]).map((f) => ({ id: f.id, serial: f.serial, data: f.data, rx: f.rx }));
  }

  async append(frames: QueuedFrame[]): Promise<void> {
    if (frames.length === 0) return;
    const tx = this.#tx('readwrite');
    const store = tx.objectStore(STORE_NAME);
    const finished = done(tx);
    for (const f of frames) store.add({ id: f.id, serial: f.serial, data: f.data, rx: f.rx });
    await finished;
  }

  async remove(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    const tx = this.#tx('readwrite');
    const store = tx.objectStore(STORE_NAME);
    const finished = done(tx);
    for (const id of ids) store.delete(id);
    await finished;
  }

  close(): void {
    this.#db.close();
  }
}
