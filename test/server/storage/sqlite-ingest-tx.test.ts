// SQLite's ingest transaction (server/storage/sqlite.ts): a frame is stored byte for byte from any view of a larger buffer, and the row lock finds one device or several.
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../../../server/storage/sqlite.js';
import type { NewFrame } from '../../../server/storage/types.js';

const opened: SqliteStorage[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

function storage(): SqliteStorage {
  const s = new SqliteStorage(':memory:');
  opened.push(s);
  return s;
}

function frame(serial: string, counter: number, bytes: Uint8Array): NewFrame {
  return { serial, counter, frame: bytes, type: 1, content: '{"type":"sample"}', relay: 'relay-1', relayTime: 1_000, rx: 2_000, received: 3_000 };
}

async function register(s: SqliteStorage, serials: string[]): Promise<void> {
  await s.transaction(async (tx) => {
    await tx.insertBatch({ batch: 'B1', factoryKeyId: 'fk', ingestKeyId: 'ik', board: 'puckjs', frameSize: 20, created: '2026-12-07', manifestSha256: '00', devices: serials.length, importedAt: 1 });
    await tx.insertDevices(serials.map((serial) => ({ serial, enc: new Uint8Array(32).fill(7), ingestKeyId: 'ik', board: 'puckjs', frameSize: 20, batch: 'B1', registeredAt: 1 })));
  });
}

describe('SQLite ingest transaction', () => {
  it('stores only the bytes a view covers, and a replay of them is not inserted again', async () => {
    const s = storage();
    const whole = Uint8Array.from({ length: 64 }, (_, i) => i);
    const view = whole.subarray(10, 30);
    const inserted = await s.transaction((tx) => tx.insertFrames([frame('SP-000001', 1, view), frame('SP-000001', 2, whole.subarray(40, 60))]));
    expect(inserted).toEqual([true, true]);
    const stored = await s.transaction((tx) => tx.frameBytes('SP-000001', [1, 2]));
    expect(Array.from(stored.get(1)!)).toEqual(Array.from({ length: 20 }, (_, i) => i + 10));
    expect(Array.from(stored.get(2)!)).toEqual(Array.from({ length: 20 }, (_, i) => i + 40));
    const again = await s.transaction((tx) => tx.insertFrames([frame('SP-000001', 1, Uint8Array.from(view))]));
    expect(again).toEqual([false]);
  });

  it('locks one registered device by its serial, none for an unknown one, and several in serial order', async () => {
    const s = storage();
    await register(s, ['SP-000001', 'SP-000002']);
    const one = await s.transaction((tx) => tx.lockDevices(['SP-000002']));
    expect(one.map((d) => [d.serial, d.batch, d.status, d.settled])).toEqual([['SP-000002', 'B1', 'active', 0]]);
    expect(await s.transaction((tx) => tx.lockDevices(['SP-000009']))).toEqual([]);
    const both = await s.transaction((tx) => tx.lockDevices(['SP-000002', 'SP-000009', 'SP-000001']));
    expect(both.map((d) => d.serial)).toEqual(['SP-000001', 'SP-000002']);
  });
});
