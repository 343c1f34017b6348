// The read API's paging, CSV streaming and its separation from ingest
// (docs/api.md "Paging", docs/server.md "Reads"), on SQLite and PostgreSQL:
// every reading exactly once across pages, in order, with from/to; clear 400s
// for bad limits and cursors; devices and gaps pages; a page never shows half
// a transaction; CSV of many pages, complete, pulled only as the client reads;
// uploads answered while large reads are in progress; the SQLite read worker
// crashing into 503s and restarting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ANCHOR_BOOT } from '../../protocol/index.js';
import { ConfigError, NO_RATE_LIMIT, SqliteStorage, buildServer, checkConfig, makeConfig, openStorage, type NewReading, type PageRequest, type Storage } from '../../server/index.js';
import { BACKENDS, SealingDevice, body, closeServerFixture, makeFleet, openServerFixture, readToken, testDb, testServer, type Fleet, type TestDb, type TestServer } from '../helpers/server.js';

const T0 = Date.UTC(2026, 10, 1);
const NAMES = [
  ['temperature', '°C'],
  ['battery', '%'],
  ['humidity', '%'],
] as const;

/** `counters` sample records of `per` readings each, counters from `first`, boot 1 started at T0, one second apart. */
async function seed(storage: Storage, serial: string, counters: number, per: number, first = 1): Promise<void> {
  for (let c0 = first; c0 < first + counters; c0 += 5_000) {
    const rows: NewReading[] = [];
    for (let c = c0; c < Math.min(c0 + 5_000, first + counters); c++) {
      for (let i = 0; i < per; i++) {
        const [name, unit] = NAMES[i % NAMES.length]!;
        rows.push({ serial, counter: c, idx: i, channel: 1 + i, name, unit, value: c + i / 10, boot8: 1, uptime24: c, bound: T0 + c * 1000, boot: 1, uptime: c, time: T0 + c * 1000, timeSource: 'relay' });
      }
    }
    await storage.transaction((tx) => tx.insertReadings(rows));
  }
}

type Json = Record<string, any>;

/** Reads a whole server response body over a real socket. */
function get(port: number, path: string, headers: Record<string, string>): Promise<{ res: IncomingMessage; text: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = () => resolve({ res, text: Buffer.concat(chunks).toString(), complete: res.complete });
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The storage as is, except that readPage calls are counted and may be made to fail. */
function instrumented(storage: Storage) {
  const seen = { pages: 0, failAt: Infinity };
  const proxy = new Proxy(storage, {
    get(target, key) {
      if (key === 'readPage') {
        return async (request: PageRequest) => {
          seen.pages++;
          if (seen.pages >= seen.failAt) throw new Error('injected read failure');
          return target.readPage(request);
        };
      }
      const v = (target as unknown as Record<PropertyKey, unknown>)[key];
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { storage: proxy, seen };
}

describe.each(BACKENDS)('reads on %s', (backend) => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let s: TestServer;
  let next = 0;
  const fresh = () => new SealingDevice(fleet.devices[next++]!);
  const json = async (url: string): Promise<Json> => (await s.app.inject({ headers: s.auth, url })).json();

  /** Follows next_cursor from the first page to the last. */
  async function pageAll(path: string, key: string, params: Record<string, string>): Promise<{ items: Json[]; pages: Json[] }> {
    const items: Json[] = [];
    const pages: Json[] = [];
    let cursor: string | null = null;
    do {
      const q: URLSearchParams = new URLSearchParams({ ...params, ...(cursor ? { cursor } : {}) });
      const r = await s.app.inject({ headers: s.auth, url: `${path}?${q}` });
      expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
      const page: Json = r.json();
      pages.push(page);
      items.push(...page[key]);
      cursor = page.next_cursor;
    } while (cursor !== null && pages.length < 10_000);
    return { items, pages };
  }

  beforeAll(async () => {
    ({ db, storage, fleet, s } = await openServerFixture(backend));
  });
  afterAll(() => closeServerFixture({ s, storage, db }));

  it('pages through readings exactly once and in order, with and without from/to, and CSV says the same', async () => {
    const d = fresh();
    await seed(storage, d.serial, 700, 3);
    const path = `/v1/devices/${d.serial}/readings`;
    const all = await pageAll(path, 'readings', { limit: '250' });
    expect(all.pages.length).toBe(9);
    expect(all.items.map((r) => [r.counter, r.idx])).toEqual(Array.from({ length: 2100 }, (_, i) => [1 + Math.floor(i / 3), i % 3]));
    expect(all.items[4]).toEqual({ counter: 2, idx: 1, time: T0 + 2000, time_source: 'relay', boot: 1, uptime: 2, channel: 2, name: 'battery', unit: '%', value: 2.1 });
    expect(all.pages.map((p) => p.truncated)).toEqual([true, true, true, true, true, true, true, true, false]);
    expect(all.pages.every((p) => p.serial === d.serial)).toBe(true);

    const from = new Date(T0 + 100_000).toISOString();
    const to = T0 + 600_000;
    const some = await pageAll(path, 'readings', { from, to: String(to), limit: '100' });
    expect(some.items.map((r) => [r.counter, r.idx])).toEqual(Array.from({ length: 501 * 3 }, (_, i) => [100 + Math.floor(i / 3), i % 3]));
    expect(some.pages.length).toBe(16);

    const first = await json(path);
    expect(first.readings.length).toBe(1000);
    expect(first.next_cursor).toEqual(expect.any(String));

    const csv = await s.app.inject({ headers: s.auth, url: `${path}?format=csv&from=${from}&to=${to}` });
    const lines = csv.body.trim().split('\n');
    expect(lines[0]).toBe('serial,counter,idx,time,time_ms,boot,uptime,channel,name,unit,value,time_source');
    expect(lines.slice(1).map((l) => l.split(',').slice(1, 3).map(Number))).toEqual(some.items.map((r) => [r.counter, r.idx]));
    // A CSV may start where a JSON page ended.
    const rest = await s.app.inject({ headers: s.auth, url: `${path}?format=csv&from=${from}&to=${to}&cursor=${some.pages[0]!.next_cursor}` });
    expect(rest.body.trim().split('\n').length).toBe(1 + 501 * 3 - 100);
  });

  it('refuses bad limits and cursors with 400 that say what to do', async () => {
    const a = fresh();
    const b = fresh();
    await seed(storage, a.serial, 30, 1);
    await seed(storage, b.serial, 30, 1);
    const pa = `/v1/devices/${a.serial}/readings`;
    const cursorA = (await json(`${pa}?limit=10`)).next_cursor as string;
    const bad = async (url: string) => {
      const r = await s.app.inject({ headers: s.auth, url });
      expect(r.statusCode, url).toBe(400);
      return r.json().message as string;
    };
    const cap = 'querystring/limit must be from 1 to 10000 (limits.page_max); follow next_cursor for the next page';
    expect(await bad(`${pa}?limit=10001`)).toBe(cap);
    expect(await bad(`${pa}?limit=0`)).toBe(cap);
    expect(await bad('/v1/devices?limit=100000')).toBe(cap);
    expect(await bad(`/v1/devices/${a.serial}/gaps?limit=10001`)).toBe(cap);
    expect(await bad(`${pa}?limit=ten`)).toBe('querystring/limit must be a whole number');
    const notOurs = 'querystring/cursor is not a cursor this server gave out (copy next_cursor exactly); start again without a cursor';
    expect(await bad(`${pa}?cursor=not*base64`)).toBe(notOurs);
    expect(await bad(`${pa}?cursor=${'A'.repeat(201)}`)).toBe(notOurs);
    expect(await bad(`${pa}?cursor=${cursorA.slice(0, 4)}`)).toBe(notOurs);
    expect(await bad(`${pa}?cursor=${cursorA.slice(0, -3)}`)).toBe('querystring/cursor is damaged; start again without a cursor');
    const another = 'querystring/cursor belongs to another query (a different device, from or to); start again without a cursor';
    expect(await bad(`/v1/devices/${b.serial}/readings?cursor=${cursorA}`)).toBe(another);
    expect(await bad(`${pa}?from=${T0}&cursor=${cursorA}`)).toBe(another);
    expect(await bad(`/v1/devices?cursor=${cursorA}`)).toBe('querystring/cursor belongs to another list than devices; start again without a cursor');
    expect(await bad(`/v1/devices/${a.serial}/gaps?cursor=${cursorA}`)).toBe('querystring/cursor belongs to another list than gaps; start again without a cursor');
    // The same cursor with another limit is fine: a page size is not part of the query.
    const after = await json(`${pa}?limit=5&cursor=${cursorA}`);
    expect(after.readings.map((r: Json) => r.counter)).toEqual([11, 12, 13, 14, 15]);
  });

  it('pages through devices by serial and gaps by first counter', async () => {
    const devices = await pageAll('/v1/devices', 'devices', { limit: '5' });
    expect(devices.pages.length).toBe(5);
    expect(devices.items.map((d) => d.serial)).toEqual(fleet.devices.map((d) => d.serial).sort());
    expect(devices.items[0]).toMatchObject({ board: 'puckjs', batch: 'B-0001', status: 'active', frame_size: 20 });
    expect(devices.items[0]).not.toHaveProperty('enc');

    const d = fresh();
    const detected = s.clock.now;
    const firsts = [40, 10, 70, 10, 25, 90, 55];
    await storage.transaction((tx) => tx.insertGaps(firsts.map((first, i) => ({ serial: d.serial, first, count: 1 + i, kind: 'outbox-overflow', detectedAt: detected }))));
    const gaps = await pageAll(`/v1/devices/${d.serial}/gaps`, 'gaps', { limit: '3' });
    expect(gaps.pages.length).toBe(3);
    expect(gaps.items.map((g) => [g.first, g.count])).toEqual([
      [10, 2],
      [10, 4],
      [25, 5],
      [40, 1],
      [55, 7],
      [70, 3],
      [90, 6],
    ]);
    expect(gaps.items[0]).toEqual({ first: 10, last: 11, count: 2, kind: 'outbox-overflow', detected_at: detected });
    expect((await json(`/v1/devices/${d.serial}`)).gaps).toBe(7);
  });

  it('never shows half a transaction in a page while ingest re-times the readings under it', async () => {
    const d = fresh();
    await seed(storage, d.serial, 4_000, 3);
    let writing = true;
    const writer = (async () => {
      // Each transaction moves the whole boot: every reading's time changes at once.
      for (let k = 1; k <= 25; k++) await storage.transaction((tx) => tx.retimeBoot(d.serial, 1, { start: T0 - k * 60_000, source: 'relay' }));
      writing = false;
    })();
    let passes = 0;
    let pages = 0;
    while (writing || passes === 0) {
      const { items, pages: ps } = await pageAll(`/v1/devices/${d.serial}/readings`, 'readings', { limit: '5000' });
      for (const p of ps) {
        const starts = new Set(p.readings.map((r: Json) => r.time - r.uptime * 1000));
        expect(starts.size, 'readings of one page from two different transactions').toBe(1);
      }
      expect(items.length).toBe(12_000);
      expect(new Set(items.map((r) => `${r.counter}/${r.idx}`)).size).toBe(12_000);
      passes++;
      pages += ps.length;
    }
    await writer;
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('answers uploads while 48 large reads are in progress', async () => {
    const big = fresh();
    await seed(storage, big.serial, 10_000, 2);
    const up = fresh();
    let readsDone = 0;
    const reads = Array.from({ length: 48 }, () =>
      s.app.inject({ headers: s.auth, url: `/v1/devices/${big.serial}/readings?limit=10000` }).then((r) => {
        readsDone++;
        expect(r.statusCode).toBe(200);
        expect(r.json().readings.length).toBe(10_000);
      }),
    );
    const readsDoneAtUpload: number[] = [];
    for (let i = 0; i < 3; i++) {
      const frames = i === 0 ? [up.anchor(1, 0, ANCHOR_BOOT)] : [up.sample(1, i * 10, [{ channel: 1, value: i }])];
      const r = await s.post(body('relay-r', s.clock.now, [{ serial: up.serial, frames: frames.map((frame) => ({ frame, rx: s.clock.now })) }]));
      expect(r.json.devices[0].accepted).toBe(1);
      readsDoneAtUpload.push(readsDone);
    }
    await Promise.all(reads);
    // The uploads were answered while the reads asked before them were still being served
    // (with reads on the event loop, as SQLite in-process, each upload waits for all 48).
    expect(readsDoneAtUpload[0]).toBeLessThan(24);
    expect(readsDoneAtUpload[2]).toBeLessThan(48);
  });

  it('streams a CSV of many pages only as fast as the client reads it, complete and in order', async () => {
    const d = fresh();
    const N = 200_000;
    await seed(storage, d.serial, N / 2, 2);
    const { storage: counted, seen } = instrumented(storage);
    const app = await buildServer({ config: makeConfig({ logLevel: 'silent', rateLimit: NO_RATE_LIMIT }), ingestKeys: [fleet.ingest.privateFile], storage: counted, logger: false });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const port = (app.server.address() as AddressInfo).port;
      const { auth } = await readToken(storage);
      const total = N / 1_000;
      const text = await new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: `/v1/devices/${d.serial}/readings?format=csv`, headers: auth, agent: false }, (res) => {
          res.pause();
          // While the client reads nothing, the server stops fetching pages once the socket is full.
          let last = -1;
          const check = setInterval(() => {
            if (seen.pages === last && seen.pages > 0) {
              clearInterval(check);
              try {
                expect(seen.pages).toBeLessThan(total / 2);
              } catch (e) {
                reject(e);
                return;
              }
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve(Buffer.concat(chunks).toString()));
              res.resume();
            }
            last = seen.pages;
          }, 300);
        });
        req.on('error', reject);
        req.end();
      });
      const lines = text.split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.length).toBe(1 + N);
      for (let i = 1; i <= N; i += 997) {
        const [serial, counter, idx] = lines[i]!.split(',');
        expect([serial, Number(counter), Number(idx)]).toEqual([d.serial, 1 + Math.floor((i - 1) / 2), (i - 1) % 2]);
      }
      expect(lines[N]!.startsWith(`${d.serial},${N / 2},1,`)).toBe(true);
      expect(seen.pages).toBe(total);

      // A read that fails mid-stream cuts the response: no final chunk, so the client knows it is incomplete.
      seen.pages = 0;
      seen.failAt = 3;
      const cut = await get(port, `/v1/devices/${d.serial}/readings?format=csv`, auth);
      expect(cut.res.statusCode).toBe(200);
      expect(cut.complete).toBe(false);
      expect(cut.text.split('\n').length).toBe(1 + 2 * 1_000 + 1);
    } finally {
      await app.close();
    }
  });
});

describe('the SQLite read worker', () => {
  let db: TestDb;

  beforeAll(async () => {
    db = await testDb('sqlite');
  });
  afterAll(async () => db?.drop());

  it('turns a crash into 503 with a clear message, restarts, and ends with close()', async () => {
    const storage = (await db.open()) as SqliteStorage;
    const fleet = makeFleet(2);
    const s = await testServer(storage, fleet);
    const serial = fleet.devices[0]!.serial;
    await seed(storage, serial, 20_000, 1);
    const workers = storage.readWorkers!;
    expect((await s.app.inject({ headers: s.auth, url: `/v1/devices/${serial}/readings?limit=10` })).statusCode).toBe(200);
    const started = workers.started;

    const inflight = s.app.inject({ headers: s.auth, url: `/v1/devices/${serial}/readings?limit=10000` });
    while (workers.pending === 0) await new Promise((r) => setImmediate(r));
    await workers.threads()[0]!.terminate();
    const crashed = await inflight;
    expect(crashed.statusCode).toBe(503);
    expect(crashed.headers['retry-after']).toBe('1');
    expect(crashed.json()).toEqual({
      error: 'Service Unavailable',
      message: 'the read worker stopped unexpectedly (exit code 1); a new one starts with the next read: retry',
      statusCode: 503,
    });

    const again = await s.app.inject({ headers: s.auth, url: `/v1/devices/${serial}/readings?limit=10000` });
    expect(again.statusCode).toBe(200);
    expect(again.json().readings.length).toBe(10_000);
    expect(workers.started).toBe(started + 1);

    const thread = workers.threads()[0]!;
    const exited = new Promise((r) => thread.once('exit', r));
    await s.close();
    await storage.close();
    await exited;
    expect(workers.threads()).toEqual([]);
    await expect(storage.readings(serial, { limit: 1 })).rejects.toThrow('the database is closing');
  });

  it('reads a :memory: database in-process, since no other thread can open it', async () => {
    const storage = (await openStorage(':memory:')) as SqliteStorage;
    expect(storage.readWorkers).toBeNull();
    const fleet = makeFleet(1);
    const s = await testServer(storage, fleet);
    await seed(storage, fleet.devices[0]!.serial, 1_500, 1);
    const page = (await s.app.inject({ headers: s.auth, url: `/v1/devices/${fleet.devices[0]!.serial}/readings` })).json();
    expect(page.readings.length).toBe(1_000);
    await s.close();
    await storage.close();
  });
});

describe('read settings', () => {
  it('replaces limits.readings_per_query by limits.page_max, and checks the read pool and workers', () => {
    const bad = (raw: unknown) => () => checkConfig(raw, '/tmp', 'sealpost.json');
    expect(bad({ limits: { readings_per_query: 100000 } })).toThrow(
      new ConfigError(
        'sealpost.json: limits.readings_per_query was replaced by limits.page_max (the most readings, devices or gaps one page holds, default 10000; follow next_cursor for more, and CSV streams every reading): rename the setting',
      ),
    );
    expect(bad({ limits: { page_max: 0 } })).toThrow('sealpost.json: limits.page_max must be a whole number from 1 to 100000, got 0');
    expect(bad({ pg_read_pool_size: 0 })).toThrow('sealpost.json: pg_read_pool_size must be a whole number from 1 to 1000, got 0');
    expect(bad({ read_workers: 100 })).toThrow('sealpost.json: read_workers must be a whole number from 0 to 64, got 100');
    expect(checkConfig({ limits: { page_max: 500 }, pg_read_pool_size: 2, read_workers: 2 })).toMatchObject({ limits: { pageMax: 500 }, pgReadPoolSize: 2, readWorkers: 2 });
    expect(checkConfig({})).toMatchObject({ limits: { pageMax: 10_000 }, pgReadPoolSize: 4, readWorkers: 1 });
  });

  it('pages by limits.page_max when it is below the default page of 1,000', async () => {
    const db = await testDb('sqlite');
    const storage = await db.open();
    const fleet = makeFleet(1);
    const s = await testServer(storage, fleet, { config: { limits: { bodyBytes: 1_048_576, devicesPerRequest: 100, framesPerDevice: 500, framesPerRequest: 5_000, pageMax: 50 } } });
    try {
      await seed(storage, fleet.devices[0]!.serial, 120, 1);
      const page = (await s.app.inject({ headers: s.auth, url: `/v1/devices/${fleet.devices[0]!.serial}/readings` })).json();
      expect(page.readings.length).toBe(50);
      expect((await s.app.inject({ headers: s.auth, url: `/v1/devices/${fleet.devices[0]!.serial}/readings?limit=51` })).json().message).toBe(
        'querystring/limit must be from 1 to 50 (limits.page_max); follow next_cursor for the next page',
      );
    } finally {
      await s.close();
      await storage.close();
      await db.drop();
    }
  });
});
