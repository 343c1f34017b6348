// GroupSync (server/storage/group-sync.ts): an fsync shared by the commits
// made while the previous one ran, never one that started before a commit,
// and after a failed fsync nothing is ever confirmed again.
import { describe, expect, it } from 'vitest';
import { GroupSync } from '../../../server/storage/group-sync.js';

/** A sync the test finishes by hand, one call at a time. */
function manualSync() {
  const calls: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const sync = () => new Promise<void>((resolve, reject) => calls.push({ resolve, reject }));
  return { calls, sync };
}

const flush = () => new Promise((r) => setImmediate(r));

/** Which of these promises have settled, and how. */
function track(ps: Promise<void>[]): string[] {
  const state = ps.map(() => 'pending');
  ps.forEach((p, i) =>
    p.then(
      () => (state[i] = 'ok'),
      (e: Error) => (state[i] = `failed: ${e.message}`),
    ),
  );
  return state;
}

describe('GroupSync', () => {
  it('confirms a commit only after an fsync that started after it, and lets every commit made meanwhile share the next one', async () => {
    const m = manualSync();
    const g = new GroupSync(m.sync);
    const first = track([g.after()]);
    await flush();
    expect(m.calls.length).toBe(1);
    // Committed while the first fsync runs: that fsync may have missed them.
    const later = track([g.after(), g.after(), g.after()]);
    await flush();
    expect(m.calls.length).toBe(1);
    m.calls[0]!.resolve();
    await flush();
    expect(first).toEqual(['ok']);
    expect(later).toEqual(['pending', 'pending', 'pending']);
    expect(m.calls.length).toBe(2);
    m.calls[1]!.resolve();
    await flush();
    expect(later).toEqual(['ok', 'ok', 'ok']);
    expect(g.stats).toEqual({ syncs: 2, waits: 4 });
    await g.idle();
  });

  it('fails every commit waiting on a failed fsync and every later one, without trying again', async () => {
    const m = manualSync();
    const g = new GroupSync(m.sync);
    const waiting = track([g.after()]);
    await flush();
    const queued = track([g.after()]);
    m.calls[0]!.reject(new Error('EIO'));
    await flush();
    await flush();
    expect(waiting).toEqual(['failed: EIO']);
    expect(queued).toEqual(['failed: EIO']);
    const after = track([g.after()]);
    await flush();
    expect(after).toEqual(['failed: EIO']);
    expect(m.calls.length).toBe(1);
  });
});
