// Retention on both backends: readings older than readings_days are deleted
// in small batches while uploads keep working; recent readings, pending
// samples, frames, gaps and acks are untouched; bad settings are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { ANCHOR_BOOT, verifyAck } from '../../protocol/index.js';
import { checkConfig, type Storage } from '../../server/index.js';
import { Retention, type RetentionConfig } from '../../server/retention.js';
import { parsePostgresUrl } from '../../server/storage/postgres.js';
import { BACKENDS, SealingDevice, body, closeServerFixture, logCapture, openServerFixture, testServer, type Fleet, type TestDb, type TestServer } from '../helpers/server.js';

const DAY = 86_400_000;
const quiet = { info: () => undefined, warn: () => undefined };

describe('retention settings', () => {
  const check = (retention: unknown) => () => checkConfig({ retention });
  it('is off unless configured, and fills in the defaults', () => {
    expect(checkConfig({}).sections.retention).toBeUndefined();
    expect(checkConfig({ retention: false }).sections.retention).toBeNull();
    expect(checkConfig({ retention: { readings_days: 90 } }).sections.retention).toEqual({ readingsDays: 90, batchRows: 200, batchDevices: 50, pauseMs: 10, everyS: 3600 });
    expect(checkConfig({ retention: { readings_days: 1, batch_rows: 10, batch_devices: 5, pause_ms: 0, every_s: 60 } }).sections.retention).toEqual({
      readingsDays: 1,
      batchRows: 10,
      batchDevices: 5,
      pauseMs: 0,
      everyS: 60,
    });
  });
  it('refuses bad values with a message naming the setting', () => {
    expect(check({})).toThrow('config: retention needs "readings_days", how many days of readings to keep, e.g. {"readings_days": 90}');
    expect(check({ readings_days: 0 })).toThrow('config: retention.readings_days must be a whole number of days from 1 to 36500, got 0');
    expect(check({ readings_days: '30' })).toThrow('retention.readings_days must be a whole number of days from 1 to 36500, got "30"');
    expect(check({ readings_days: 1.5 })).toThrow('got 1.5');
    expect(check({ readings_days: 30, batch_rows: 0 })).toThrow('retention.batch_rows must be a whole number of readings from 1 to 100000, got 0');
    expect(check({ readings_days: 30, pause_ms: -1 })).toThrow('retention.pause_ms must be a whole number of ms from 0 to 60000, got -1');
    expect(check({ readings_days: 30, frames_days: 30 })).toThrow('config: retention has an unknown setting "frames_days" (known: readings_days, batch_rows, batch_devices, pause_ms, every_s)');
    expect(check(30)).toThrow('config: retention must be an object such as {"readings_days": 90}');
    expect(check([])).toThrow('must be an object');
  });
});

describe.each(BACKENDS)('retention on %s', (backend) => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let s: TestServer;
  let base: number;
  const devices: SealingDevice[] = [];
  const settings = (o: Partial<RetentionConfig> = {}): RetentionConfig => ({ readingsDays: 30, batchRows: 3, batchDevices: 4, pauseMs: 0, everyS: 3600, ...o });
  const post = async (d: SealingDevice, frames: Uint8Array[], at: number) => {
    s.clock.now = at;
    const r = await s.post(body('relay-a', at, [{ serial: d.serial, frames: frames.map((frame) => ({ frame, rx: at - 500 })) }]));
    expect(r.status).toBe(200);
    return r.json.devices[0];
  };
  const samples = (d: SealingDevice, boot: number, n: number, from = 1) => Array.from({ length: n }, (_, i) => d.sample(boot, (from + i) * 60, [{ channel: 1, value: from + i }]));

  beforeAll(async () => {
    ({ db, storage, fleet, s } = await openServerFixture(backend, 30));
    base = s.clock.now;
    for (const keys of fleet.devices) devices.push(new SealingDevice(keys));
  }, 60_000);
  afterAll(() => closeServerFixture({ s, storage, db }));

  it('deletes readings older than readings_days and nothing else', async () => {
    const old = base - 100 * DAY;
    for (const d of devices.slice(0, 10)) {
      await post(d, [d.anchor(1, 0, ANCHOR_BOOT), ...samples(d, 1, 5)], old); // 1..6, 100 days old
      d.counter += 1; // 7 dropped by the outbox
      await post(d, [d.gap(7, 1)], old + 1000); // 8
      await post(d, [d.anchor(2, 0, ANCHOR_BOOT), ...samples(d, 2, 4)], base - 10 * DAY); // 9..13, 10 days old
    }
    const pending = devices[10]!;
    await post(pending, samples(pending, 5, 3), old); // boot 5 never anchored: no time, kept
    s.clock.now = base;

    const before = new Map<string, unknown>();
    for (const d of devices.slice(0, 11)) {
      before.set(d.serial, {
        readings: await storage.readings(d.serial, { limit: 1000 }),
        frames: await storage.frames(d.serial),
        gaps: await storage.gaps(d.serial),
      });
    }
    const summaries = await storage.devices();

    const report = await new Retention(storage, settings(), () => s.clock.now, quiet).pass();
    expect(report).toMatchObject({ before: base - 30 * DAY, deleted: 50 });
    expect(report.batches).toBeGreaterThan(10); // 3 readings per batch at most

    for (const d of devices.slice(0, 11)) {
      const was = before.get(d.serial) as { readings: { time: number | null }[]; frames: unknown; gaps: unknown };
      const kept = await storage.readings(d.serial, { limit: 1000 });
      expect(kept).toEqual(was.readings.filter((r) => r.time === null || r.time >= base - 30 * DAY));
      expect(await storage.frames(d.serial)).toEqual(was.frames);
      expect(await storage.gaps(d.serial)).toEqual(was.gaps);
    }
    expect((await storage.readings(devices[0]!.serial, { limit: 1000 })).map((r) => r.counter)).toEqual([10, 11, 12, 13]);
    expect(await storage.readings(pending.serial, { limit: 1000 })).toHaveLength(3);
    expect(await storage.devices()).toEqual(summaries);

    // A replayed old frame is still a duplicate (its frame row was kept), and the device settles on.
    const d = devices[0]!;
    const replay = new SealingDevice(d.keys).anchor(1, 0, ANCHOR_BOOT);
    const r = await post(d, [replay, ...samples(d, 2, 1, 5)], base);
    expect(r).toMatchObject({ accepted: 1, duplicates: 1, rejected: [] });
    expect(verifyAck(d.keys, new Uint8Array(Buffer.from(r.ack, 'base64')))).toBe(14);

    expect((await new Retention(storage, settings(), () => s.clock.now, quiet).pass()).deleted).toBe(0);
  });

  it('uploads keep working while a pass deletes', async () => {
    const busy = devices.slice(12, 28);
    const old = base - 60 * DAY;
    for (const d of busy) await post(d, [d.anchor(1, 0, ANCHOR_BOOT), ...samples(d, 1, 40)], old);
    s.clock.now = base;
    const pass = new Retention(storage, settings({ batchRows: 7, batchDevices: 2 }), () => s.clock.now, quiet).pass();
    let finished = false;
    void pass.then(() => (finished = true));
    let during = 0;
    let round = 0;
    while (!finished || round < 2) {
      for (const d of busy) {
        const frames = round === 0 ? [d.anchor(2, 0, ANCHOR_BOOT), ...samples(d, 2, 2)] : samples(d, 2, 2, 1 + 2 * round);
        const res = await post(d, frames, base);
        expect(res).toMatchObject({ accepted: frames.length, rejected: [] });
        expect(verifyAck(d.keys, new Uint8Array(Buffer.from(res.ack, 'base64')))).toBe(d.counter);
        if (!finished) during++;
      }
      round++;
    }
    const report = await pass;
    expect(report.deleted).toBe(busy.length * 40);
    expect(during).toBeGreaterThan(0);
    for (const d of busy) {
      const kept = await storage.readings(d.serial, { limit: 1000 });
      expect(kept.every((r) => r.time !== null && r.time >= base - 30 * DAY)).toBe(true);
      expect(kept.length).toBe(2 * round);
      expect(kept.at(-1)!.counter).toBe(d.counter);
    }
  });

  it.runIf(backend === 'postgres')('never waits for a reading an upload holds: that one is left for the next pass', async () => {
    const d = devices[28]!;
    await post(d, [d.anchor(1, 0, ANCHOR_BOOT), ...samples(d, 1, 4)], base - 50 * DAY);
    s.clock.now = base;
    const { connectionString, schema } = parsePostgresUrl(db.url);
    const holder = new pg.Client({ connectionString });
    await holder.connect();
    try {
      // What an upload re-timing this boot holds: a row lock on one of its readings.
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM ${schema}.readings WHERE serial = $1 AND counter = 3 FOR UPDATE`, [d.serial]);
      const pass = new Retention(storage, settings({ batchRows: 2 }), () => s.clock.now, quiet).pass();
      const outcome = await Promise.race([pass.then((r) => r.deleted), new Promise((r) => setTimeout(() => r('still waiting after 10 s'), 10_000))]);
      expect(outcome).toBe(3);
      expect((await storage.readings(d.serial, { limit: 100 })).map((r) => r.counter)).toEqual([3]);
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    expect((await new Retention(storage, settings(), () => s.clock.now, quiet).pass()).deleted).toBe(1);
    expect(await storage.readings(d.serial, { limit: 100 })).toEqual([]);
  });

  it('runs in the background from server start when the section is set, and stops with the server', async () => {
    const d = devices[29]!;
    await post(d, [d.anchor(1, 0, ANCHOR_BOOT), ...samples(d, 1, 5)], base - 40 * DAY);
    const { lines, stream } = logCapture((l) => JSON.parse(l) as { msg: string; deleted?: number; batches?: number });
    const config = { sections: checkConfig({ retention: { readings_days: 30, pause_ms: 0 } }).sections };
    const node = await testServer(storage, fleet, { importFleet: false, config, logger: { level: 'info', stream } });
    try {
      node.clock.now = base;
      await node.app.ready();
      const deadline = Date.now() + 20_000;
      while (!lines.some((l) => l.msg === 'retention pass finished') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const done = lines.find((l) => l.msg === 'retention pass finished');
      expect(done).toMatchObject({ deleted: 5 });
      expect(await storage.readings(d.serial, { limit: 1000 })).toEqual([]);
    } finally {
      await node.close();
    }
  });
});
