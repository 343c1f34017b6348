// PostgreSQL's read-ahead write path (server/storage/postgres-ingest.ts) against
// the locked one it replaces: twin devices get the same frames in the same
// requests, one through ingestTransaction (read ahead, one ingest_write
// call), the other through the locked transaction statement by statement;
// every answer and everything stored must come out the same. Also: a row
// changed between the read and the write, and a frame stored meanwhile, make
// the request run again under the locks, with nothing counted twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../../hal/sim/random.js';
import { ANCHOR_BOOT, ANCHOR_CONNECT, ANCHOR_PERIODIC, verifyAck } from '../../../protocol/index.js';
import { ingestUplink, type Storage, type UplinkBody } from '../../../server/index.js';
import type { IngestContext } from '../../../server/ingest/uplink.js';
import type { PostgresStorage } from '../../../server/storage/postgres.js';
import { SealingDevice, body, closeServerFixture, openServerFixture, type Fleet, type TestDb, type TestServer } from '../../helpers/server.js';

/** Two devices fed the same calls: same counters, same plaintexts, different keys. */
class Twins {
  constructor(
    readonly a: SealingDevice,
    readonly b: SealingDevice,
  ) {}
  both(make: (d: SealingDevice) => Uint8Array): { counter: number; a: Uint8Array; b: Uint8Array } {
    const a = make(this.a);
    const b = make(this.b);
    return { counter: this.a.counter, a, b };
  }
  skip(n: number): void {
    this.a.counter += n;
    this.b.counter += n;
  }
}

type Made = ReturnType<Twins['both']>;

/** A device's life: samples, connect and periodic anchors, reboots with power loss, outbox overflows reported as gaps, an uptime wrap. */
function life(t: Twins, random: () => number, length: number): Made[] {
  const frames: Made[] = [];
  let boot = 1 + Math.floor(random() * 300);
  let uptime = Math.floor(random() * 100);
  frames.push(t.both((d) => d.anchor(boot, uptime, ANCHOR_BOOT)));
  while (frames.length < length) {
    const x = random();
    uptime += 1 + Math.floor(random() * 600);
    if (x < 0.7) {
      const readings = [{ channel: 1 + Math.floor(random() * 3), value: Math.round(random() * 400) / 4 }];
      if (random() < 0.3) readings.push({ channel: 2, value: Math.round(random() * 100) });
      frames.push(t.both((d) => d.sample(boot, uptime, readings)));
    } else if (x < 0.8) {
      const reason = random() < 0.5 ? ANCHOR_CONNECT : ANCHOR_PERIODIC;
      frames.push(t.both((d) => d.anchor(boot, uptime, reason)));
    } else if (x < 0.85) {
      // Power lost: counters reserved but never used, then a new boot.
      t.skip(Math.floor(random() * 4));
      boot++;
      uptime = Math.floor(random() * 5);
      frames.push(t.both((d) => d.anchor(boot, uptime, ANCHOR_BOOT)));
    } else if (x < 0.9) {
      // The outbox overflowed: frames made and dropped, then reported.
      const first = t.a.counter + 1;
      const lost = 1 + Math.floor(random() * 4);
      for (let i = 0; i < lost; i++) t.both((d) => d.sample(boot, (uptime += 30), [{ channel: 1, value: i }]));
      frames.push(t.both((d) => d.gap(first, lost)));
    } else if (x < 0.92) {
      uptime += 16_777_216 - 3_000; // across the 24-bit uptime wrap
    } else {
      frames.push(t.both((d) => d.sample(boot, uptime, [])));
    }
  }
  return frames;
}

describe('PostgreSQL read-ahead ingest', () => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let s: TestServer;
  let next = 0;
  const fresh = () => new SealingDevice(fleet.devices[next++]!);
  let locked: Storage;
  const ctx = (on: Storage, now: number): IngestContext => ({ storage: on, keyring: s.app.keyring, now, maxRelayDelay: 7 * 86_400_000 });
  const upload = (serial: string, frames: { frame: Uint8Array; rx: number }[], now: number): UplinkBody => body('relay-r', now, [{ serial, frames }]);
  const stats = () => ({ ...(storage as PostgresStorage).ingestStats });

  beforeAll(async () => {
    ({ db, storage, fleet, s } = await openServerFixture('postgres'));
    // The same storage, every uplink through the locked transaction (the path before read-ahead).
    locked = Object.assign(Object.create(storage) as Storage, { ingestTransaction: (_plan: unknown, fn: Parameters<Storage['transaction']>[0]) => storage.transaction(fn) });
  });
  afterAll(() => closeServerFixture({ s, storage, db }));

  // Seeds 3 and 4 send the read-ahead twin's frames with a companion device's in each request, so the
  // read ahead of several devices (READ_AHEAD) answers them; seeds 1 and 2, alone (READ_AHEAD_ONE).
  it.each([1, 2, 3, 4])('answers and stores exactly what the locked path does (seed %i)', async (seed) => {
    const random = seededRandom(seed);
    const t = new Twins(fresh(), fresh());
    const companion = seed > 2 ? fresh() : undefined;
    const frames = life(t, random, 160);
    const before = stats();
    let now = s.clock.now + seed * 1_000_000;
    let pending = [...frames];
    const held: Made[] = [];
    let requests = 0;
    while (pending.length > 0 || held.length > 0) {
      const take = 1 + Math.floor(random() * 12);
      let chunk = pending.splice(0, take);
      // Some frames wait for a later request (another relay had them), some come back, some requests arrive shuffled.
      if (chunk.length > 2 && random() < 0.2) held.push(...chunk.splice(Math.floor(random() * chunk.length), 1));
      if (held.length > 0 && (random() < 0.25 || pending.length === 0)) chunk.push(...held.splice(0, 1 + Math.floor(random() * held.length)));
      if (random() < 0.1 && requests > 0) chunk.push(frames[Math.floor(random() * frames.indexOf(chunk[0]!) + 1)] ?? chunk[0]!);
      if (random() < 0.2) chunk = chunk.sort(() => random() - 0.5);
      now += Math.floor(random() * 120_000);
      const rx = chunk.map(() => {
        const r = random();
        return r < 0.1 ? now + 5_000 : r < 0.15 ? now - 9 * 86_400_000 : now - Math.floor(random() * 90_000);
      });
      const entries = [{ serial: t.a.serial, frames: chunk.map((f, i) => ({ frame: f.a, rx: rx[i]! })) }];
      if (companion) {
        const frame = requests === 0 ? companion.anchor(2, 0, ANCHOR_BOOT) : companion.sample(2, requests * 10, [{ channel: 1, value: requests }]);
        entries.push({ serial: companion.serial, frames: [{ frame, rx: now }] });
      }
      const ra = await ingestUplink(body('relay-r', now, entries), ctx(storage, now));
      const rb = await ingestUplink(upload(t.b.serial, chunk.map((f, i) => ({ frame: f.b, rx: rx[i]! })), now), ctx(locked, now));
      const [da, db2] = [ra.devices[0]!, rb.devices[0]!];
      const ackOf = (keys: SealingDevice, ack: string | null) => (ack === null ? null : verifyAck(keys.keys, new Uint8Array(Buffer.from(ack, 'base64'))));
      expect({ accepted: da.accepted, duplicates: da.duplicates, rejected: da.rejected, ack: ackOf(t.a, da.ack) }, `request ${requests}`).toEqual({
        accepted: db2.accepted,
        duplicates: db2.duplicates,
        rejected: db2.rejected,
        ack: ackOf(t.b, db2.ack),
      });
      const ofA = <T extends { serial: string }>(rows: T[]) => rows.filter((r) => r.serial === t.a.serial).map(({ serial: _, ...r }) => r);
      expect(ofA(ra.readings)).toEqual(rb.readings.map(({ serial: _, ...r }) => r));
      expect(ofA(ra.retimed)).toEqual(rb.retimed.map(({ serial: _, ...r }) => r));
      requests++;
    }

    const without = <T extends { serial: string }>(rows: T[]) => rows.map(({ serial: _, ...rest }) => rest);
    const [sa] = await storage.devices(t.a.serial);
    const [sb] = await storage.devices(t.b.serial);
    expect(without([sa!])).toEqual(without([sb!]));
    expect(sa!.settled).toBe(t.a.counter); // everything settled: stored, or in a gap
    expect(without(await storage.readings(t.a.serial, { limit: 10_000 }))).toEqual(without(await storage.readings(t.b.serial, { limit: 10_000 })));
    const gaps = async (serial: string) => (await storage.gaps(serial)).map(({ first, count, kind, detectedAt }) => ({ first, count, kind, detectedAt }));
    expect(await gaps(t.a.serial)).toEqual(await gaps(t.b.serial));
    const framesOf = async (serial: string) => (await storage.frames(serial)).map(({ counter, type, content, rx, received, relay }) => ({ counter, type, content, rx, received, relay }));
    expect(await framesOf(t.a.serial)).toEqual(await framesOf(t.b.serial));

    // Both paths ran: most requests in one write, the out-of-order ones and gap lookups under the locks.
    const after = stats();
    expect(after.readAhead - before.readAhead).toBeGreaterThan(requests / 4);
    expect(after.notReadAhead - before.notReadAhead).toBeGreaterThan(0);
  });

  it('in-order uploads of several devices in one request are written in one call each, none run again', async () => {
    const ds = [fresh(), fresh(), fresh()];
    const before = stats();
    const now = s.clock.now;
    for (let round = 0; round < 5; round++) {
      const devices = ds.map((d) => ({
        serial: d.serial,
        frames: [round === 0 ? d.anchor(4, 1, ANCHOR_BOOT) : d.anchor(4, round * 100, ANCHOR_CONNECT), d.sample(4, round * 100 + 5, [{ channel: 2, value: 90 - round }])].map((frame) => ({
          frame,
          rx: now,
        })),
      }));
      const r = await ingestUplink(body('relay-r', now, devices), ctx(storage, now));
      for (const [i, dev] of r.devices.entries()) {
        expect(dev).toMatchObject({ accepted: 2, duplicates: 0, rejected: [] });
        expect(verifyAck(ds[i]!.keys, new Uint8Array(Buffer.from(dev.ack!, 'base64')))).toBe((round + 1) * 2);
      }
    }
    const after = stats();
    expect(after).toEqual({ ...before, readAhead: before.readAhead + 5 });
    const [summary] = await storage.devices(ds[1]!.serial);
    expect(summary).toMatchObject({ frames: 10, settled: 10, battery: 86 });
  });

  it('runs a request again under the locks when its device changed between the read and the write, and acks only what committed', async () => {
    const d = fresh();
    const now = s.clock.now;
    const first = [d.anchor(9, 0, ANCHOR_BOOT), d.sample(9, 10, [{ channel: 1, value: 1 }]), d.sample(9, 20, [{ channel: 1, value: 2 }])];
    const second = [d.sample(9, 30, [{ channel: 1, value: 3 }]), d.sample(9, 40, [{ channel: 1, value: 4 }])];
    // While the first request settles on its read-ahead state, another node stores the next frames.
    let raced: Awaited<ReturnType<typeof ingestUplink>> | undefined;
    const racing: Storage = Object.assign(Object.create(storage) as Storage, {
      ingestTransaction: <T>(plan: Parameters<Storage['ingestTransaction']>[0], fn: Parameters<Storage['transaction']>[0]) =>
        storage.ingestTransaction(plan, async (tx) => {
          if (!raced) raced = await ingestUplink(upload(d.serial, second.map((frame) => ({ frame, rx: now })), now), ctx(storage, now));
          return fn(tx) as Promise<T>;
        }),
    });
    const before = stats();
    const r = await ingestUplink(upload(d.serial, first.map((frame) => ({ frame, rx: now })), now), ctx(racing, now));
    const after = stats();
    expect(after.changed - before.changed).toBe(1);
    // The racing request had only 4..5: nothing settled for it. The first, run again on committed state, settles 1..5.
    expect(raced!.devices[0]).toMatchObject({ accepted: 2, ack: null });
    expect(r.devices[0]).toMatchObject({ accepted: 3, duplicates: 0 });
    expect(verifyAck(d.keys, new Uint8Array(Buffer.from(r.devices[0]!.ack!, 'base64')))).toBe(5);
    expect((await storage.frames(d.serial)).map((f) => f.counter)).toEqual([1, 2, 3, 4, 5]);
    expect((await storage.readings(d.serial, { limit: 100 })).map((x) => [x.counter, x.value, x.boot])).toEqual([
      [2, 1, 9],
      [3, 2, 9],
      [4, 3, 9],
      [5, 4, 9],
    ]);
    expect(await storage.devices(d.serial)).toMatchObject([{ frames: 5, settled: 5 }]);
  });

  it('refuses the write when one of its frames was stored meanwhile under an unchanged row, and counts it a duplicate on the locked run', async () => {
    const d = fresh();
    const now = s.clock.now;
    const frames = [d.anchor(5, 0, ANCHOR_BOOT), d.sample(5, 10, [{ channel: 1, value: 7 }])];
    const pg = storage as PostgresStorage;
    const sneak: Storage = Object.assign(Object.create(storage) as Storage, {
      ingestTransaction: <T>(plan: Parameters<Storage['ingestTransaction']>[0], fn: Parameters<Storage['transaction']>[0]) =>
        storage.ingestTransaction(plan, async (tx) => {
          // A writer that breaks the rule (a frame without its device's row): ingest_write must not trust the read.
          if ((await storage.frames(d.serial)).length === 0) {
            await storage.transaction((w) =>
              w.insertFrames([{ serial: d.serial, counter: 2, frame: frames[1]!, type: 1, content: '{}', relay: 'other', relayTime: now, rx: now, received: now }]),
            );
          }
          return fn(tx) as Promise<T>;
        }),
    });
    const before = { ...pg.ingestStats };
    const r = await ingestUplink(upload(d.serial, frames.map((frame) => ({ frame, rx: now })), now), ctx(sneak, now));
    expect(pg.ingestStats.changed - before.changed).toBe(1);
    expect(r.devices[0]).toMatchObject({ accepted: 1, duplicates: 1 });
    expect((await storage.frames(d.serial)).map((f) => [f.counter, f.relay])).toEqual([
      [1, 'relay-r'],
      [2, 'other'],
    ]);
    expect(await storage.devices(d.serial)).toMatchObject([{ frames: 1 }]);
  });
});
