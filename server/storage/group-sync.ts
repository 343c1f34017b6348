// Group commit's second half for SQLite (docs/server.md, "Durability"): the
// fsync of the write-ahead log, off the event loop and shared. SQLite runs
// with synchronous=NORMAL, so COMMIT only writes the WAL into the page
// cache; an ack waits for an fsync of the WAL that *started after* its
// COMMIT returned, which makes it as durable as synchronous=FULL would. One
// fsync runs at a time (in libuv's thread pool); every commit made while it
// runs waits for the next one, which they all share.
import { closeSync, fsync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

export class GroupSync {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private failure: Error | undefined;
  /** fsyncs done, and commits they covered (for tests and the bench). */
  readonly stats = { syncs: 0, waits: 0 };

  constructor(private readonly sync: () => Promise<void>) {}

  /**
   * Resolves once an fsync that started after this call has completed;
   * rejects when one failed, and from then on always: after a failed fsync
   * the kernel may have dropped the pages, so no later fsync proves anything
   * about earlier commits (PostgreSQL's "fsyncgate", 2018).
   */
  after(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.stats.waits++;
    if (this.next) return this.next;
    const previous = this.running ?? Promise.resolve();
    const mine: Promise<void> = previous
      .catch(() => undefined)
      .then(async () => {
        if (this.next === mine) this.next = undefined;
        this.running = mine;
        if (this.failure) throw this.failure;
        try {
          await this.sync();
          this.stats.syncs++;
        } catch (e) {
          this.failure ??= e as Error;
          throw this.failure;
        } finally {
          if (this.running === mine) this.running = undefined;
        }
      });
    this.next = mine;
    return mine;
  }

  /** An fsync is running or queued. */
  get busy(): boolean {
    return this.running !== undefined || this.next !== undefined;
  }

  /** Waits for the fsyncs queued or running. */
  async idle(): Promise<void> {
    while (this.running || this.next) await (this.next ?? this.running)!.catch(() => undefined);
  }
}

/**
 * An fsync of the file at `path` (the database's `-wal`), which must exist;
 * its directory is synced once so the file's entry survives a power cut too.
 * Returns the sync and a close.
 */
export function fileSync(path: string): { sync: () => Promise<void>; close: () => void } {
  const fd = openSync(path, 'r');
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return {
    sync: () =>
      new Promise<void>((resolve, reject) =>
        fsync(fd, (e) => {
          if (e) reject(new Error(`could not sync ${path} to disk (${e.code ?? e.message}): acknowledged frames may not be durable; stop the server and check the disk`));
          else resolve();
        }),
      ),
    close: () => closeSync(fd),
  };
}
