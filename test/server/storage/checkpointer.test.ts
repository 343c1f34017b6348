// The SQLite WAL's checkpoints in their own thread (server/storage/checkpointer.ts):
// the WAL is copied back and restarts, so it stays near 1,000 pages however much
// is written; every committed row is in the database after a reopen; and a
// checkpoint thread that cannot work is reported and given up, not retried forever.
import { existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CHECKPOINT_PAGES, Checkpointer } from '../../../server/storage/checkpointer.js';
import { SqliteStorage } from '../../../server/storage/sqlite.js';
import type { NewFrame } from '../../../server/storage/types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-checkpoint-'));
  dirs.push(dir);
  return join(dir, 'db.sqlite');
}

/** A frame whose content fills about half a page, so a few thousand of them make thousands of WAL pages. */
function frame(counter: number): NewFrame {
  return { serial: 'SP-000001', counter, frame: new Uint8Array(20).fill(counter & 0xff), type: 1, content: JSON.stringify({ type: 'sample', pad: 'x'.repeat(2000), counter }), relay: 'relay-1', relayTime: 1_000, rx: 2_000, received: 3_000 };
}

describe('SQLite checkpoints in their own thread', () => {
  it('keeps the WAL near its checkpoint size while many times that is written, and loses no committed row', async () => {
    const path = tempDb();
    const s = new SqliteStorage(path, { readWorkers: 0 });
    expect(s.checkpointer).not.toBeNull();
    const PER_TX = 50;
    const TXS = 160; // 8,000 frames of about 2 KB: some 16 MB, four times the WAL's checkpoint size and more
    let biggestWal = 0;
    for (let t = 0; t < TXS; t++) {
      const inserted = await s.transaction((tx) => tx.insertFrames(Array.from({ length: PER_TX }, (_, i) => frame(t * PER_TX + i + 1))));
      expect(inserted.every(Boolean)).toBe(true);
      biggestWal = Math.max(biggestWal, statSync(`${path}-wal`).size);
    }
    await s.checkpointer!.running;
    const written = TXS * PER_TX * 2100;
    expect(s.checkpointer!.stats.checkpoints).toBeGreaterThanOrEqual(2);
    expect(s.checkpointer!.stats.pages).toBeGreaterThan(CHECKPOINT_PAGES);
    // The WAL restarted after each checkpoint: the file never held more than a fraction of what went through it.
    expect(biggestWal).toBeLessThan(written / 2);
    await s.close();
    // Closed last, the writer's connection removed the WAL, as SQLite does for the last connection.
    expect(existsSync(`${path}-wal`)).toBe(false);
    const again = new SqliteStorage(path, { readWorkers: 0 });
    try {
      const frames = await again.frames('SP-000001');
      expect(frames.length).toBe(TXS * PER_TX);
      expect(frames[frames.length - 1]!.counter).toBe(TXS * PER_TX);
    } finally {
      await again.close();
    }
  });

  it('warns and lets SQLite checkpoint by itself again when the thread cannot open the database', async () => {
    const path = tempDb();
    const warnings: string[] = [];
    const s = new SqliteStorage(path, { readWorkers: 0, onWarning: (m) => warnings.push(m) });
    // The open connection keeps its file; a thread opening the path finds nothing there.
    renameSync(path, `${path}.moved`);
    const PER_TX = 50;
    const TXS = 160;
    let biggestWal = 0;
    for (let t = 0; t < TXS; t++) {
      await s.transaction((tx) => tx.insertFrames(Array.from({ length: PER_TX }, (_, i) => frame(t * PER_TX + i + 1))));
      biggestWal = Math.max(biggestWal, statSync(`${path}-wal`).size);
    }
    await s.checkpointer!.running;
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain('db.sqlite');
    expect(warnings[0]).toContain('SQLite checkpoints the WAL itself again');
    expect(s.checkpointer!.stats.checkpoints).toBe(0);
    // SQLite's own checkpoint kept the WAL bounded after the thread was given up.
    expect(biggestWal).toBeLessThan((TXS * PER_TX * 2100) / 2);
    await s.close();
  });

  it('reports a checkpoint thread that cannot open the database once, and asks it nothing more', async () => {
    const missing = join(tempDb(), '..', 'not-there.sqlite');
    const failures: string[] = [];
    const c = new Checkpointer(missing, (e) => failures.push(e.message));
    let started: Promise<void> | undefined;
    for (let i = 0; i < 64 && !started; i++) started = c.committed();
    expect(started).toBeDefined();
    await started;
    expect(failures.length).toBe(1);
    expect(failures[0]).toContain('not-there.sqlite');
    // Given up: the writer checkpoints by itself from now on (SqliteStorage turns SQLite's own back on).
    for (let i = 0; i < 64; i++) expect(c.committed()).toBeUndefined();
    await c.close();
    expect(failures.length).toBe(1);
  });
});
