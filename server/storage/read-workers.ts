// The read workers (docs/server.md, "Reads"): `size` threads, each with its
// own connections to the database (server/storage/read-worker.ts: a
// read-only SQLite connection, or the PostgreSQL read pool), started at
// server start or on the first read, and restarted after a crash.
//
// - Bounded: at most `maxQueued` reads wait or run at once; one more is
//   refused at once with ReadsUnavailableError (503 + Retry-After) instead of
//   piling up memory.
// - A worker that dies (an uncaught error, out of memory, terminated) fails
//   the reads it held with ReadsUnavailableError, a clear 503, never a hung
//   request; the next read starts a new worker.
// - A worker holds the process open only while it has reads in flight, and
//   close() ends every worker.
import { Worker } from 'node:worker_threads';
import { ReadsUnavailableError } from '../errors.js';
import type { ReadMessage, ReadWorkerData } from './read-worker.js';

// From the sources (tests, tsx) a worker needs tsx's loader, which
// read-worker.mjs registers; compiled (build/), it starts read-worker.js itself.
const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './read-worker.mjs' : './read-worker.js', import.meta.url);

interface Waiting {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  inflight: Map<number, Waiting>;
}

export interface ReadWorkersOptions {
  size: number;
  /** PostgreSQL connections per worker. */
  readPoolSize?: number;
  maxQueued?: number;
  /** Told when a worker dies unexpectedly. */
  onError?: (error: Error) => void;
}

/** Reads waiting or running on the workers, at most (each is one page of at most limits.page_max rows). */
export const MAX_QUEUED_READS = 256;

export class ReadWorkers {
  private readonly slots: (Slot | null)[];
  private nextId = 1;
  private queued = 0;
  private closed = false;
  /** Workers started, restarts included (diagnostics, tests). */
  started = 0;
  private readonly maxQueued: number;

  constructor(
    private readonly db: string,
    private readonly options: ReadWorkersOptions,
  ) {
    this.slots = Array.from({ length: Math.max(1, options.size) }, () => null);
    this.maxQueued = options.maxQueued ?? MAX_QUEUED_READS;
  }

  /** Reads waiting or running now. */
  get pending(): number {
    return this.queued;
  }

  /** The live worker threads (tests use this to crash one). */
  threads(): Worker[] {
    return this.slots.filter((s): s is Slot => s !== null).map((s) => s.worker);
  }

  private start(i: number): Slot {
    const worker = new Worker(ENTRY, { workerData: { db: this.db, readPoolSize: this.options.readPoolSize ?? 4 } satisfies ReadWorkerData });
    const slot: Slot = { worker, inflight: new Map() };
    this.started++;
    let failure: Error | undefined;
    worker.unref();
    worker.on('message', (m: { id: number; ok: boolean; value?: unknown; message?: string }) => {
      const w = slot.inflight.get(m.id);
      if (!w) return;
      slot.inflight.delete(m.id);
      this.queued--;
      if (slot.inflight.size === 0) worker.unref();
      if (m.ok) w.resolve(m.value);
      else w.reject(new Error(m.message));
    });
    worker.on('error', (e) => (failure = e));
    worker.on('exit', (code) => {
      if (this.slots[i] === slot) this.slots[i] = null;
      const why = this.closed
        ? 'the database is closing'
        : `the read worker stopped unexpectedly (${failure ? failure.message : `exit code ${code}`}); a new one starts with the next read: retry`;
      if (!this.closed) this.options.onError?.(new Error(why));
      for (const w of slot.inflight.values()) w.reject(new ReadsUnavailableError(why));
      this.queued -= slot.inflight.size;
      slot.inflight.clear();
    });
    this.slots[i] = slot;
    return slot;
  }

  /** Starts every worker now (tsx compiles the worker's modules in about half a second), so the first read does not wait. */
  warm(): void {
    if (this.closed) return;
    for (let i = 0; i < this.slots.length; i++) if (!this.slots[i]) this.start(i);
  }

  /** Runs `op` on the least busy worker. */
  run<T>(op: ReadMessage['op'], args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new ReadsUnavailableError('the database is closing'));
    if (this.queued >= this.maxQueued) {
      return Promise.reject(new ReadsUnavailableError(`too many reads are waiting (${this.maxQueued}); retry in a moment`));
    }
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) {
      if ((this.slots[i]?.inflight.size ?? 0) < (this.slots[best]?.inflight.size ?? 0)) best = i;
    }
    const slot = this.slots[best] ?? this.start(best);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      slot.inflight.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.queued++;
      slot.worker.ref();
      slot.worker.postMessage({ id, op, args } satisfies ReadMessage);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads().map((w) => w.terminate()));
  }
}
