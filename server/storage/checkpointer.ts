// The SQLite writer's checkpoints, off the event loop (docs/server.md,
// "Durability"; issue #14 item 4, fourth pass). SQLite's automatic checkpoint
// runs inside the COMMIT that takes the WAL past 1,000 pages, on the writing
// connection: on the server's event loop it copied about 4 MB back into the
// database and fsynced both files while no request was parsed, opened or
// answered (measured on bench/ingest.ts: the slowest 3% of COMMITs, the
// checkpointing ones, held the event loop for about a third of all COMMIT
// time, up to 104 ms each). Here the writer's automatic checkpoint is off and
// a thread with its own connection (checkpoint-worker.ts) runs
// PRAGMA wal_checkpoint(PASSIVE) when the writer asks: after the group
// commits that are expected to have written about 1,000 pages, counted from
// what the last checkpoint reported. The thread starts on the first
// checkpoint, so a short-lived command (the CLI's registry) never starts it.
//
// If the thread fails (it could not open the file, a checkpoint raised an
// error, it died), the writer goes back to SQLite's own automatic checkpoint
// and the failure is reported: never a WAL that grows without a checkpoint.
import { Worker } from 'node:worker_threads';
import type { CheckpointAnswer, CheckpointWorkerData } from './checkpoint-worker.js';

const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './checkpoint-worker.mjs' : './checkpoint-worker.js', import.meta.url);

/** Pages written between checkpoints: SQLite's own default (wal_autocheckpoint). */
export const CHECKPOINT_PAGES = 1000;

/** What one checkpoint reported (PRAGMA wal_checkpoint). */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

export class Checkpointer {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;
  /** Commits since the last checkpoint began, and how many commits make about CHECKPOINT_PAGES pages. */
  private commits = 0;
  private every = 16;
  /** The checkpoint running now, if any. */
  running: Promise<void> | undefined;
  /** Checkpoints done (tests, the bench). */
  readonly stats = { checkpoints: 0, pages: 0 };

  constructor(
    private readonly path: string,
    private readonly onFailure: (error: Error) => void,
  ) {}

  /** Counts a commit of the writer; returns a checkpoint started now, or undefined when none is due. */
  committed(): Promise<void> | undefined {
    if (this.failure || this.running) return undefined;
    if (++this.commits < this.every) return undefined;
    const commits = this.commits;
    this.commits = 0;
    const run: Promise<void> = this.checkpoint()
      .then(
        (r) => {
          this.stats.checkpoints++;
          this.stats.pages += r.checkpointed;
          // The WAL restarts after a complete checkpoint, so `log` is about what these commits wrote.
          if (r.log > 0) this.every = Math.min(CHECKPOINT_PAGES, Math.max(1, Math.round((CHECKPOINT_PAGES * commits) / r.log)));
        },
        (e: Error) => this.fail(e),
      )
      .finally(() => {
        if (this.running === run) this.running = undefined;
      });
    this.running = run;
    return run;
  }

  private checkpoint(): Promise<CheckpointResult> {
    let worker: Worker;
    try {
      worker = this.worker ??= this.start();
    } catch (e) {
      return Promise.reject(new Error(`the WAL checkpoint thread of ${this.path} could not start (${(e as Error).message})`));
    }
    const id = this.nextId++;
    return new Promise<CheckpointResult>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id });
    });
  }

  private start(): Worker {
    const worker = new Worker(ENTRY, { workerData: { path: this.path } satisfies CheckpointWorkerData });
    worker.unref();
    let error: Error | undefined;
    worker.on('message', (m: CheckpointAnswer) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      if (m.ok) w.resolve({ busy: m.busy!, log: m.log!, checkpointed: m.checkpointed! });
      else w.reject(new Error(`the WAL checkpoint of ${this.path} failed (${m.message ?? 'unknown error'})`));
    });
    worker.on('error', (e) => (error = e));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      const e = new Error(`the WAL checkpoint thread of ${this.path} stopped (${error ? error.message : `exit code ${code}`})`);
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    });
    return worker;
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.onFailure(e);
    void this.stop();
  }

  private async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => void worker.terminate().then(() => resolve()), 5000);
      worker.once('exit', () => (clearTimeout(timer), resolve()));
      worker.postMessage('close');
    });
  }

  /** Waits for a checkpoint in flight, then closes the thread's connection and ends it. */
  async close(): Promise<void> {
    await this.running;
    this.failure ??= new Error('closed');
    await this.stop();
  }
}
