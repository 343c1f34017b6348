// Limits shared by several ingest nodes through Redis (issue #14 item 2;
// docs/server.md, "Several nodes: shared limits"), against the Redis at
// SEALPOST_TEST_REDIS_URL, every key under a prefix of its own per run:
// - the Lua bucket and window give TokenBuckets' and FixedWindows' answers on
//   the same sequences, and idle keys expire;
// - two in-process servers on one database and one Redis enforce one budget:
//   per address, failed authentications (throttle and per-serial alert), the
//   API's 401s per address and reads per token;
// - Redis unreachable at boot, stalled mid-run and gone mid-run (a TCP proxy
//   that stops forwarding, then closes): uploads keep working on local limits,
//   one warning per outage, one line when it is back.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket, connect } from 'node:net';
import { Redis } from 'ioredis';
import { NO_RATE_LIMIT, checkConfig, type ServerConfig, type Storage } from '../../server/index.js';
import { FixedWindows, TokenBuckets } from '../../server/edge/rate-limit.js';
import { SharedLimitStore, type StoreLog } from '../../server/edge/shared-limits.js';
import { SealingDevice, b64, body, logCapture, makeFleet, readToken, testDb, testServer, type Fleet, type TestDb, type TestServer } from '../helpers/server.js';

const REDIS = process.env.SEALPOST_TEST_REDIS_URL!;
const RUN = `sealpost-test:${process.pid}-${randomBytes(4).toString('hex')}:`;
const T = Date.UTC(2026, 10, 27, 12, 0, 0);
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
  } catch (e) {
    throw new Error(`no Redis at SEALPOST_TEST_REDIS_URL=${REDIS} (${(e as Error).message}): start one (redis-server) or point the variable at one`);
  }
});

afterAll(async () => {
  // Everything this run wrote, whatever the tests left.
  const keys = await redis.keys(`${RUN}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

/** A log that keeps its lines, for the store used on its own. */
function memoryLog(): StoreLog & { warns: string[] } {
  const warns: string[] = [];
  return { warns, warn: (_o, msg) => warns.push(msg) };
}

/** A store on the test Redis under a prefix of its own; `clock` replaces Redis's TIME. */
async function store(name: string, clock?: () => number): Promise<SharedLimitStore> {
  const client = new Redis(REDIS, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  await client.connect();
  return new SharedLimitStore(client, { prefix: `${RUN}${name}:`, timeoutMs: 1_000, log: memoryLog(), where: REDIS, ...(clock ? { clock } : {}) });
}

describe('the Lua bucket and window', () => {
  it('answer as TokenBuckets does on the same sequence: bursts, refill, refusals, debt', async () => {
    let now = 1_000;
    const spec = { perSecond: 10, burst: 20 };
    const local = new TokenBuckets(spec, 100, () => now);
    const s = await store('seq', () => now);
    try {
      // [time, op, key, cost]: a burst, a refusal, refill, a cost above the burst, debt and its wait, a second key.
      const steps: [number, 'take' | 'charge' | 'wait', string, number][] = [
        [1_000, 'take', 'a', 20], [1_000, 'take', 'a', 5], [1_000, 'wait', 'a', 0], [1_250, 'take', 'a', 2], [1_400, 'take', 'a', 2],
        [1_500, 'take', 'a', 100], [2_000, 'charge', 'a', 30], [2_000, 'wait', 'a', 0], [2_100, 'take', 'a', 1], [3_500, 'wait', 'a', 0],
        [5_000, 'wait', 'a', 0], [5_000, 'take', 'a', 1], [5_000, 'wait', 'never-seen', 0], [5_001, 'charge', 'b', 7.5], [5_002, 'take', 'b', 13],
        [60_000, 'take', 'a', 20], [60_000, 'take', 'a', 1],
      ];
      const ours: number[] = [];
      const theirs: number[] = [];
      for (const [t, op, key, cost] of steps) {
        now = t;
        if (op === 'take') theirs.push(local.take(key, cost));
        else if (op === 'charge') {
          local.charge(key, cost);
          theirs.push(local.wait(key));
        } else theirs.push(local.wait(key));
        ours.push((await s.bucket(op, key, spec, cost))!.wait);
      }
      expect(ours).toEqual(theirs);
      // The sequence did refuse and did go into debt, so the comparison covers both.
      expect(theirs.filter((w) => w > 0).length).toBeGreaterThanOrEqual(5);
    } finally {
      s.close();
    }
  });

  it('lets an idle key expire once its bucket would be full again', async () => {
    const s = await store('ttl');
    try {
      await s.bucket('take', 'k', { perSecond: 2, burst: 10 }, 10);
      // 10 tokens to refill at 2 a second: 5 s, plus a second of margin.
      const ttl = await redis.pttl(`${RUN}ttl:k`);
      expect(ttl).toBeGreaterThan(5_500);
      expect(ttl).toBeLessThanOrEqual(6_000);
      await s.bucket('take', 'full', { perSecond: 1_000, burst: 10 }, 1);
      // 1 token at 1,000 a second: gone after about a second.
      await new Promise((r) => setTimeout(r, 1_300));
      expect(await redis.exists(`${RUN}ttl:full`)).toBe(0);
    } finally {
      s.close();
    }
  });

  it('counts fixed windows as FixedWindows does', async () => {
    const s = await store('win');
    const local = new FixedWindows(3, 60_000);
    try {
      for (let i = 0; i < 3; i++) {
        expect(await s.window('wait', 'addr', 3, 60_000)).toBe(local.wait('addr', 0));
        await s.window('fail', 'addr', 3, 60_000);
        local.fail('addr', 0);
      }
      const wait = (await s.window('wait', 'addr', 3, 60_000))!;
      expect(local.wait('addr', 0)).toBe(60);
      expect(wait).toBeGreaterThan(59);
      expect(wait).toBeLessThanOrEqual(60);
      expect(await s.window('wait', 'other', 3, 60_000)).toBe(0);
    } finally {
      s.close();
    }
  });
});

describe('shared_limits in the config', () => {
  it('is checked with messages that say what to write', () => {
    expect(checkConfig({}).sharedLimits).toBeNull();
    expect(checkConfig({ shared_limits: false }).sharedLimits).toBeNull();
    expect(checkConfig({ shared_limits: { redis: 'redis://127.0.0.1:6379' } }).sharedLimits).toEqual({ redis: 'redis://127.0.0.1:6379', prefix: 'sealpost:', timeoutMs: 50 });
    expect(checkConfig({ shared_limits: { redis: 'rediss://u:p@r.example.org:6380/2', prefix: 'fleet-a:', timeout_ms: 20 } }).sharedLimits).toEqual({
      redis: 'rediss://u:p@r.example.org:6380/2',
      prefix: 'fleet-a:',
      timeoutMs: 20,
    });
    expect(() => checkConfig({ shared_limits: 'redis://127.0.0.1' })).toThrow(/shared_limits must be an object \(e\.g\. \{"redis": "redis:\/\/127\.0\.0\.1:6379"/);
    expect(() => checkConfig({ shared_limits: {} })).toThrow(/shared_limits needs "redis", the URL of the Redis all nodes share/);
    expect(() => checkConfig({ shared_limits: { redis: 'http://127.0.0.1:6379' } })).toThrow(/shared_limits\.redis must be a redis:\/\/ or rediss:\/\/ URL with a host/);
    expect(() => checkConfig({ shared_limits: { redis: 'redis://:secret@' } })).toThrow(/got "redis:\/\/\*\*\*@"/);
    expect(() => checkConfig({ shared_limits: { redis: 'redis://h', prefix: 'has space' } })).toThrow(/shared_limits\.prefix must be 1 to 100 printable characters without spaces/);
    expect(() => checkConfig({ shared_limits: { redis: 'redis://h', timeout_ms: 5_000 } })).toThrow(/shared_limits\.timeout_ms must be a whole number from 1 to 1000, got 5000/);
    expect(() => checkConfig({ shared_limits: { redis: 'redis://h', host: 'x' } })).toThrow(/shared_limits has an unknown setting "host" \(known: redis, prefix, timeout_ms\)/);
  });
});

type Log = Record<string, unknown>;
const OUTAGE = /^shared limits store unreachable or slow/;
const BACK = /^shared limits store answers again/;

/** Two in-process nodes on one SQLite database and, through `redisUrl`, one Redis. */
class TwoNodes {
  db!: TestDb;
  storage!: Storage;
  fleet!: Fleet;
  nodes: TestServer[] = [];
  logs: Log[][] = [];
  private i = 0;

  /**
   * `timeoutMs`: the sharing tests wait up to a second, so that a machine busy with
   * other work (event loop or Redis late by more than 50 ms) does not turn them into
   * fallback tests; the failure tests use the default 50 ms.
   */
  async open(config: Partial<ServerConfig>, redisUrl: string, prefix: string, count = 2, timeoutMs = 50): Promise<this> {
    this.db = await testDb('sqlite');
    this.storage = await this.db.open();
    this.fleet = makeFleet(4);
    for (let n = 0; n < count; n++) {
      const { lines, stream } = logCapture((line) => JSON.parse(line) as Log);
      this.logs.push(lines);
      this.nodes.push(
        await testServer(this.storage, this.fleet, {
          config: { rateLimit: NO_RATE_LIMIT, ...config, sharedLimits: { redis: redisUrl, prefix: `${RUN}${prefix}:`, timeoutMs } },
          logger: { level: 'info', stream },
          importFleet: n === 0,
        }),
      );
    }
    return this;
  }

  /** A genuine one-frame upload from `ip` to node `n`. */
  upload(n: number, ip: string) {
    const d = new SealingDevice(this.fleet.devices[0]!);
    const i = this.i++;
    return this.nodes[n]!.app.inject({ method: 'POST', url: '/v1/uplink', remoteAddress: ip, payload: body('r', T, [{ serial: d.serial, frames: [{ frame: d.sample(0, i, []), rx: T }] }]) });
  }

  /** `count` frames of junk naming `serial`, from `ip` to node `n`. */
  junk(n: number, ip: string, serial: string, count: number) {
    const frames = Array.from({ length: count }, () => ({ data: b64(randomBytes(20)), rx: T }));
    return this.nodes[n]!.app.inject({ method: 'POST', url: '/v1/uplink', remoteAddress: ip, payload: { relay: { id: 'relay-j', time: T }, devices: [{ serial, frames }] } });
  }

  lines(n: number, pattern: RegExp): Log[] {
    return this.logs[n]!.filter((l) => pattern.test(String(l.msg)));
  }

  async close(): Promise<void> {
    for (const s of this.nodes) await s.close();
    await this.storage?.close();
    await this.db?.drop();
  }
}

describe('two nodes sharing Redis', () => {
  let t: TwoNodes | undefined;
  afterEach(async () => {
    // Each answer here came from Redis: no node fell back to its own buckets.
    if (t) for (const n of [0, 1]) expect(t.lines(n, OUTAGE)).toEqual([]);
    await t?.close();
    t = undefined;
  });

  it('enforce one address budget: requests spread over both get 429 once it is spent, though neither saw more than its burst', async () => {
    t = await new TwoNodes().open({ rateLimit: { ...NO_RATE_LIMIT, address: { requests: { perSecond: 0.1, burst: 6 }, frames: null } } }, REDIS, 'address', 2, 1_000);
    const codes: number[] = [];
    // 5 requests per node, alternating: 10 in all against one burst of 6.
    for (let i = 0; i < 10; i++) codes.push((await t.upload(i % 2, '203.0.113.20')).statusCode);
    expect(codes.slice(0, 6)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(codes.slice(6)).toEqual([429, 429, 429, 429]);
    const refused = await t.upload(1, '203.0.113.20');
    expect(refused.json().message).toMatch(/^rate limit for address 203\.0\.113\.20 exceeded \(0\.1 requests per second, bursts of 6\); retry after \d+ s$/);
    // Another address has its own budget.
    expect((await t.upload(0, '203.0.113.21')).statusCode).toBe(200);
  });

  it('share the failed-authentication throttle per address and raise one alert per serial between them', async () => {
    t = await new TwoNodes().open({ failedAuth: { ip: { perSecond: 0.1, burst: 150 }, serial: { perSecond: 0.1, burst: 50 } } }, REDIS, 'failed-auth', 2, 1_000);
    const [other, victim] = [t.fleet.devices[1]!.serial, t.fleet.devices[2]!.serial];
    // 100 failed frames on each node from one address: 200 against its budget of 150.
    expect((await t.junk(0, '198.51.100.7', other, 100)).statusCode).toBe(200);
    expect((await t.junk(1, '198.51.100.7', other, 100)).statusCode).toBe(200);
    for (const n of [0, 1]) {
      const r = await t.junk(n, '198.51.100.7', victim, 1);
      expect(r.statusCode).toBe(429);
      expect(r.json().message).toMatch(/^rate limit for frames failing authentication from address 198\.51\.100\.7 exceeded/);
    }
    // The victim's serial: 40 failed frames on the first node, 40 on the second (budget 50), 5 more on the first.
    const alerts = (n: number) => t!.lines(n, /^frames naming this serial keep failing authentication/).filter((l) => l.serial === victim);
    expect((await t.junk(0, '198.51.100.8', victim, 40)).statusCode).toBe(200);
    expect(alerts(0).length).toBe(0);
    expect((await t.junk(1, '198.51.100.9', victim, 40)).statusCode).toBe(200);
    expect(alerts(1).length).toBe(1);
    expect(alerts(1)[0]).toMatchObject({ level: 40, failed: 40 });
    // Within the minute no node alerts again, whichever one sees more junk.
    expect((await t.junk(0, '198.51.100.10', victim, 5)).statusCode).toBe(200);
    expect(alerts(0).length + alerts(1).length).toBe(1);
  });

  it("share the API's 401 count per address and the read bucket per token", async () => {
    t = await new TwoNodes().open({ auth: { read: { perSecond: 0.1, burst: 3 }, failuresPerMinute: 3 } }, REDIS, 'api', 2, 1_000);
    const [a, b] = t.nodes as [TestServer, TestServer];
    const bad = { authorization: 'Bearer not-a-token' };
    expect((await a.app.inject({ url: '/v1/devices', remoteAddress: '192.0.2.9', headers: bad })).statusCode).toBe(401);
    expect((await a.app.inject({ url: '/v1/devices', remoteAddress: '192.0.2.9', headers: bad })).statusCode).toBe(401);
    expect((await b.app.inject({ url: '/v1/devices', remoteAddress: '192.0.2.9', headers: bad })).statusCode).toBe(401);
    const locked = await a.app.inject({ url: '/v1/devices', remoteAddress: '192.0.2.9', headers: bad });
    expect(locked.statusCode).toBe(429);
    expect(locked.json().message).toMatch(/^too many requests without a valid token from address 192\.0\.2\.9/);

    const { name, auth } = await readToken(t.storage);
    expect((await a.app.inject({ url: '/v1/devices', headers: auth })).statusCode).toBe(200);
    expect((await b.app.inject({ url: '/v1/devices', headers: auth })).statusCode).toBe(200);
    expect((await a.app.inject({ url: '/v1/devices', headers: auth })).statusCode).toBe(200);
    const slow = await b.app.inject({ url: '/v1/devices', headers: auth });
    expect(slow.statusCode).toBe(429);
    expect(slow.json().message).toMatch(new RegExp(`^rate limit for token ${name} exceeded`));
  });
});

/**
 * A TCP proxy in front of Redis that can stop forwarding (the store is slow:
 * nothing answers, the connection stays up) and close (the store is gone).
 */
class RedisProxy {
  private server: Server | null = null;
  private readonly pairs = new Set<[Socket, Socket]>();
  private stalled = false;
  port = 0;

  constructor(private readonly target: URL) {}

  async listen(port = 0): Promise<this> {
    this.server = createServer((client) => {
      const upstream = connect(Number(this.target.port || 6379), this.target.hostname);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      if (this.stalled) client.pause();
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Stops reading what clients send (the kernel buffers it); Redis sees nothing, so nothing answers. */
  stall(): void {
    this.stalled = true;
    for (const [client] of this.pairs) client.pause();
  }

  resume(): void {
    this.stalled = false;
    for (const [client] of this.pairs) client.resume();
  }

  /** Drops every connection and stops listening: connections are refused. */
  async close(): Promise<void> {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('when Redis fails', () => {
  let t: TwoNodes | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('unreachable at boot: the node starts, warns once, and enforces the limits on its own', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    t = await new TwoNodes().open({ rateLimit: { ...NO_RATE_LIMIT, address: { requests: { perSecond: 0.1, burst: 3 }, frames: null } } }, `redis://127.0.0.1:${port}`, 'down', 1);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await t.upload(0, '203.0.113.30')).statusCode);
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    const warns = t.lines(0, OUTAGE);
    expect(warns.length).toBe(1);
    expect(warns[0]).toMatchObject({ level: 40, store: `redis://127.0.0.1:${port}` });
    expect(t.nodes[0]!.app.sharedLimits!.up).toBe(false);
  });

  it('stalled at boot: the node starts within a second or so, on local limits, and joins when Redis answers', async () => {
    const proxy = await new RedisProxy(new URL(REDIS)).listen();
    proxy.stall();
    try {
      t = await new TwoNodes().open({ rateLimit: { ...NO_RATE_LIMIT, address: { requests: { perSecond: 0.1, burst: 2 }, frames: null } } }, proxy.url, 'stalled-boot', 1);
      expect(t.lines(0, OUTAGE)).toMatchObject([{ reason: 'not ready within 1000 ms at start' }]);
      expect((await t.upload(0, '203.0.113.50')).statusCode).toBe(200);
      proxy.resume();
      await until('the node on Redis', () => t!.nodes[0]!.app.sharedLimits!.up);
      expect(t.lines(0, BACK).length).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('stalled, then gone, mid-run: uploads keep working on local limits, one warning per outage, one line when back', async () => {
    const proxy = await new RedisProxy(new URL(REDIS)).listen();
    const spec = { rateLimit: { ...NO_RATE_LIMIT, address: { requests: { perSecond: 0.1, burst: 4 }, frames: null } } };
    // 250 ms rather than 50: the phases before and after the outage expect answers from Redis on a machine that may be busy.
    t = await new TwoNodes().open(spec, proxy.url, 'proxy', 2, 250);
    // Shared while it answers: 4 in all, over both nodes.
    const before: number[] = [];
    for (let i = 0; i < 6; i++) before.push((await t.upload(i % 2, '203.0.113.40')).statusCode);
    expect(before).toEqual([200, 200, 200, 200, 429, 429]);

    // Stalled: the first call on each node times out, then each node counts alone without waiting.
    proxy.stall();
    const stalled: number[] = [];
    for (let i = 0; i < 10; i++) stalled.push((await t.upload(i % 2, '203.0.113.41')).statusCode);
    // Each node its own burst of 4 for the new address: 8 of 10 pass.
    expect(stalled).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
    // Uploads of a fresh address go through on both nodes while it is stalled.
    expect((await t.upload(0, '203.0.113.42')).statusCode).toBe(200);
    expect((await t.upload(1, '203.0.113.42')).statusCode).toBe(200);
    for (const n of [0, 1]) expect(t.lines(n, OUTAGE).length).toBe(1);

    proxy.resume();
    await until('both nodes back on Redis', () => t!.nodes.every((s) => s.app.sharedLimits!.up));
    for (const n of [0, 1]) expect(t.lines(n, BACK).length).toBe(1);
    // Shared again: the address spent before the stall is still spent in Redis.
    expect((await t.upload(0, '203.0.113.40')).statusCode).toBe(429);

    // Gone: connections dropped and refused.
    await proxy.close();
    const gone: number[] = [];
    for (let i = 0; i < 6; i++) gone.push((await t.upload(i % 2, '203.0.113.43')).statusCode);
    expect(gone).toEqual([200, 200, 200, 200, 200, 200]);
    for (const n of [0, 1]) expect(t.lines(n, OUTAGE).length).toBe(2);
    expect(t.nodes.every((s) => !s.app.sharedLimits!.up)).toBe(true);

    // Back on the same port: the nodes reconnect and say so once more.
    await proxy.listen(proxy.port);
    await until('both nodes back after the proxy returned', () => t!.nodes.every((s) => s.app.sharedLimits!.up));
    for (const n of [0, 1]) expect(t.lines(n, BACK).length).toBe(2);
    await proxy.close();
  });
});
