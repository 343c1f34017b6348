// A QueueStore in memory: for tests, and for a relay that may lose its queue
// (the devices keep every frame until it is acknowledged, so a lost queue
// costs resends, not samples). Platform-neutral.
import type { QueuedFrame, QueueStore } from './contracts.js';

export class MemoryQueueStore implements QueueStore {
  readonly frames = new Map<number, QueuedFrame>();

  async load(): Promise<QueuedFrame[]> {
    return [...this.frames.values()].map((f) => ({ ...f }));
  }

  async append(frames: QueuedFrame[]): Promise<void> {
    for (const f of frames) this.frames.set(f.id, { ...f });
  }

  async remove(ids: number[]): Promise<void> {
    for (const id of ids) this.frames.delete(id);
  }
}
