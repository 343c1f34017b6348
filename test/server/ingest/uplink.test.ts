// ingestUplink's two phases (server/ingest/uplink.ts) on SQLite and
// PostgreSQL: frames are opened against committed key rows before any
// transaction; only a request with an authenticated frame (or keys to store)
// takes one, re-opens from the locked rows when the registry changed in
// between, and may be retried without counting anything twice.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ANCHOR_BOOT, verifyAck } from '../../../protocol/index.js';
import { ingestUplink, revokeDevice, type Storage, type UplinkBody } from '../../../server/index.js';
import type { IngestContext } from '../../../server/ingest/uplink.js';
import { BACKENDS, SealingDevice, body, closeServerFixture, openServerFixture, type Fleet, type TestDb, type TestServer } from '../../helpers/server.js';

describe.each(BACKENDS)('ingestUplink on %s', (backend) => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let s: TestServer;
  let next = 0;
  const fresh = () => new SealingDevice(fleet.devices[next++]!);
  const ctx = (over: Partial<IngestContext> = {}): IngestContext => ({ storage, keyring: s.app.keyring, now: s.clock.now, maxRelayDelay: 7 * 86_400_000, ...over });
  const upload = (devices: { serial: string; frames: Uint8Array[] }[]): UplinkBody =>
    body('relay-u', s.clock.now, devices.map((d) => ({ serial: d.serial, frames: d.frames.map((frame) => ({ frame, rx: s.clock.now })) })));

  beforeAll(async () => {
    ({ db, storage, fleet, s } = await openServerFixture(backend));
  });
  afterAll(() => closeServerFixture({ s, storage, db }));

  it('opens no transaction for a request none of whose frames authenticates, and answers it with no ack: junk learns no watermark', async () => {
    const d = fresh();
    const other = fresh();
    const first = d.anchor(1, 0, ANCHOR_BOOT);
    const stored = await ingestUplink(upload([{ serial: d.serial, frames: [first, d.sample(1, 5, [{ channel: 1, value: 2 }])] }]), ctx());
    expect(stored.devices[0]).toMatchObject({ accepted: 2, rejected: [] });

    const transaction = vi.spyOn(storage, 'transaction');
    try {
      const junk = upload([
        { serial: d.serial, frames: [new Uint8Array(randomBytes(20)), new Uint8Array(randomBytes(20))] },
        { serial: other.serial, frames: [new Uint8Array(randomBytes(20))] },
        { serial: 'SP-NOBODY', frames: [new Uint8Array(randomBytes(20))] },
      ]);
      const r = await ingestUplink(junk, ctx());
      expect(transaction).not.toHaveBeenCalled();
      const auth = 'frame authentication failed';
      expect(r.devices.map((x) => [x.serial, x.accepted, x.rejected])).toEqual([
        [d.serial, 0, [{ index: 0, reason: auth }, { index: 1, reason: auth }]],
        [other.serial, 0, [{ index: 0, reason: auth }]],
        ['SP-NOBODY', 0, [{ index: 0, reason: 'unknown serial' }]],
      ]);
      expect(r.devices.map((x) => x.ack)).toEqual([null, null, null]);
      expect(r.failedAuth).toEqual(new Map([[d.serial, 2], [other.serial, 1]]));
      expect(r.uplinks.find((u) => u.serial === d.serial)).toMatchObject({ accepted: 0, rejected: 2, settled: 2 });
    } finally {
      transaction.mockRestore();
    }
    expect((await storage.frames(d.serial)).map((f) => f.counter)).toEqual([1, 2]);
    // One genuine frame (here a resent duplicate) next to junk: the device is answered again.
    const again = await ingestUplink(upload([{ serial: d.serial, frames: [new Uint8Array(randomBytes(20)), first] }]), ctx());
    expect(again.devices[0]).toMatchObject({ accepted: 0, duplicates: 1, rejected: [{ index: 0, reason: 'frame authentication failed' }] });
    expect(verifyAck(d.keys, new Uint8Array(Buffer.from(again.devices[0]!.ack!, 'base64')))).toBe(2);
  });

  it('reads key rows exactly, whatever bytes their blobs hold and however long they are', async () => {
    // Every byte value (NUL, invalid UTF-8 and all) in enc and keys_wrapped, a blob of an odd length, a NULL one.
    const all = new Uint8Array(256).map((_, i) => i);
    const rows = [
      { serial: 'SP-KR-1', enc: all.slice(0, 32), keysWrapped: all.slice(200, 253) },
      { serial: 'SP-KR-2', enc: all.slice(224, 256), keysWrapped: all.slice(0, 7) },
      { serial: 'SP-KR-3', enc: new Uint8Array(32), keysWrapped: null },
      { serial: 'SP-KR-4', enc: all.slice(128, 160), keysWrapped: all.slice(128, 256) },
    ];
    await storage.transaction(async (tx) => {
      await tx.insertDevices(rows.map((r) => ({ ...r, ingestKeyId: fleet.ingest.privateFile.id, board: 'puckjs', frameSize: 20, batch: fleet.batch, registeredAt: s.clock.now })));
    });
    const got = await storage.deviceKeyRows(['SP-KR-1', 'SP-KR-2', 'SP-KR-3', 'SP-KR-4', 'SP-KR-NONE']);
    expect(got.map((r) => [r.serial, new Uint8Array(r.enc), r.keysWrapped && new Uint8Array(r.keysWrapped), r.frameSize, r.status, r.settled]).sort()).toEqual(
      rows.map((r) => [r.serial, r.enc, r.keysWrapped, 20, 'active', 0]),
    );
    expect(await storage.deviceKeyRows(['SP-KR-NONE'])).toEqual([]);
  });

  it('opens again from the locked rows when a device was revoked between the key read and the lock', async () => {
    const victim = fresh();
    const bystander = fresh();
    const read = storage.deviceKeyRows.bind(storage);
    const spy = vi.spyOn(storage, 'deviceKeyRows').mockImplementation(async (serials) => {
      const rows = await read(serials);
      await revokeDevice(storage, victim.serial, s.clock.now);
      return rows;
    });
    try {
      const r = await ingestUplink(
        upload([
          { serial: victim.serial, frames: [victim.anchor(1, 0, ANCHOR_BOOT)] },
          { serial: bystander.serial, frames: [bystander.anchor(1, 0, ANCHOR_BOOT)] },
        ]),
        ctx(),
      );
      expect(r.devices[0]).toEqual({ serial: victim.serial, ack: null, accepted: 0, duplicates: 0, rejected: [{ index: 0, reason: 'device revoked' }] });
      expect(r.devices[1]).toMatchObject({ serial: bystander.serial, accepted: 1, rejected: [] });
      expect(verifyAck(bystander.keys, new Uint8Array(Buffer.from(r.devices[1]!.ack!, 'base64')))).toBe(1);
    } finally {
      spy.mockRestore();
    }
    expect(await storage.frames(victim.serial)).toEqual([]);
    expect((await storage.frames(bystander.serial)).length).toBe(1);
  });

  it('answers a transaction run twice (a retry after a rollback) exactly as one run', async () => {
    const d = fresh();
    const frames = [d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 5, [{ channel: 2, value: 80 }]), d.gap(9, 2)];
    const upl = upload([{ serial: d.serial, frames: [...frames, frames[1]!] }]);
    class Retry extends Error {}
    const run = storage.transaction.bind(storage);
    const spy = vi.spyOn(storage, 'transaction').mockImplementation(async (fn) => {
      await run(async (tx) => {
        await fn(tx);
        throw new Retry();
      }).catch((e: unknown) => {
        if (!(e instanceof Retry)) throw e;
      });
      return run(fn);
    });
    let r: Awaited<ReturnType<typeof ingestUplink>>;
    try {
      r = await ingestUplink(upl, ctx());
    } finally {
      spy.mockRestore();
    }
    expect(r.devices[0]).toMatchObject({ accepted: 3, duplicates: 1, rejected: [] });
    expect(r.readings.map((x) => [x.counter, x.value, x.boot])).toEqual([[2, 80, 1]]);
    expect(verifyAck(d.keys, new Uint8Array(Buffer.from(r.devices[0]!.ack!, 'base64')))).toBe(3);
    expect((await storage.gaps(d.serial)).map((g) => [g.first, g.count, g.kind])).toEqual([[9, 2, 'outbox-overflow']]);
    expect((await storage.frames(d.serial)).map((f) => f.counter)).toEqual([1, 2, 3]);
  });
});
