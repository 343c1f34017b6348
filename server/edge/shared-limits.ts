// Limits shared by every ingest node through Redis (issue #14 item 2;
// docs/server.md, "Several nodes: shared limits"; docs/decisions.md).
//
// Each check is one atomic round trip: a Lua script (EVALSHA, EVAL after a
// NOSCRIPT) runs the same token bucket as TokenBuckets (server/edge/rate-limit.ts)
// on a hash {t: tokens, at: ms} per key, on Redis's own clock (TIME), so nodes
// with skewed clocks still share one budget. A key expires once its bucket
// would have refilled (a full bucket and no bucket are the same), so idle
// addresses leave nothing behind.
//
// The store may fail; the node must not. Every call races a timeout (default
// 50 ms); the first error or timeout marks the store down, logs one warning,
// and from then on every limiter counts in its own local buckets (the
// TokenBuckets of one node) without waiting on Redis at all. A probe (PING,
// same timeout) runs every second while it is down; the first answer logs
// once (a warning too, so that it shows wherever the outage did) that the
// store is back and the limiters count in Redis again.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { Lru } from '../lru.js';
import { FixedWindows, TokenBuckets, type BucketSpec, type RateSpec } from './rate-limit.js';

export interface SharedLimitsConfig {
  /** redis:// or rediss:// URL. */
  redis: string;
  /** Prepended to every key, so several fleets (or test runs) can share one Redis. */
  prefix: string;
  /** Longest wait for one call before the node falls back to its local buckets. */
  timeoutMs: number;
}

/** The parts of a Redis client the store uses (ioredis; tests may hand in another). */
export interface RedisClient {
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  ping(): Promise<unknown>;
  disconnect(): void;
}

export interface StoreLog {
  warn(obj: object, msg: string): void;
}

/**
 * A token bucket, as TokenBuckets: refill to now (a new key starts full),
 * then 'take' (refused without debt: returns the seconds to wait), 'charge'
 * (into debt: returns the seconds until the balance is positive), or 'wait'
 * (read only). KEYS[2], when given to 'charge', is an alert marker set for
 * ARGV[6] ms when the balance is not positive; the second result says
 * whether this call set it. Numbers travel as %.17g strings: Redis truncates
 * Lua numbers returned as replies to integers.
 */
export const BUCKET_LUA = `
local op = ARGV[1]
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[2])
end
local per_second = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local b = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil then
  if op == 'wait' then return {'0', 0} end
  tokens = burst
  at = now
else
  tokens = math.min(burst, tokens + (math.max(0, now - at) / 1000) * per_second)
  at = math.max(at, now)
end
local wait = 0
if op == 'wait' then
  if tokens <= 0 then wait = (1 - tokens) / per_second end
  return {string.format('%.17g', wait), 0}
elseif op == 'take' then
  if tokens >= cost then tokens = tokens - cost else wait = (math.min(cost, burst) - tokens) / per_second end
else
  tokens = tokens - cost
  if tokens <= 0 then wait = (1 - tokens) / per_second end
end
redis.call('HSET', KEYS[1], 't', tokens, 'at', at)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / per_second * 1000) + 1000)
local alert = 0
if KEYS[2] and wait > 0 then
  if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[6]) then alert = 1 end
end
return {string.format('%.17g', wait), alert}
`;

/**
 * A fixed window counter, as the API's 401 count per address
 * (server/auth/access.ts): 'fail' counts one, the first count of a window
 * starts it (PEXPIRE ARGV[3]); 'wait' answers the seconds left in the window
 * when the count reached ARGV[2], else 0.
 */
export const WINDOW_LUA = `
if ARGV[1] == 'fail' then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
  return '0'
end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[2]) then return '0' end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return '0' end
return string.format('%.17g', ttl / 1000)
`;

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const BUCKET_SHA = sha1(BUCKET_LUA);
const WINDOW_SHA = sha1(WINDOW_LUA);
const PROBE_EVERY_MS = 1_000;
/** How long a node waits for the store at boot before it starts on local limits. */
const BOOT_WAIT_MS = 1_000;

/** The URL without user and password, for log lines. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'redis (unparsable URL)';
  }
}

export interface StoreOptions {
  prefix: string;
  timeoutMs: number;
  log: StoreLog;
  /** Where the log lines say the store is. */
  where: string;
  /** Milliseconds for the scripts instead of Redis's TIME (tests comparing with TokenBuckets). */
  clock?: () => number;
  /** Starts down (the connection at boot failed); the probe brings it up. */
  down?: unknown;
}

export class SharedLimitStore {
  private healthy = true;
  private probe: NodeJS.Timeout | null = null;
  private closed = false;
  readonly prefix: string;

  constructor(
    private readonly client: RedisClient,
    private readonly options: StoreOptions,
  ) {
    this.prefix = options.prefix;
    if (options.down !== undefined) this.markDown(options.down);
  }

  /**
   * Connects to `config.redis` (waiting at most a second); a node whose store
   * is unreachable at boot starts on local limits, with the warning.
   */
  static async open(config: SharedLimitsConfig, log: StoreLog): Promise<SharedLimitStore> {
    const client = new Redis(config.redis, {
      lazyConnect: true,
      // Fail at once while disconnected: the caller falls back, it never queues behind a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // No commandTimeout: the store's own timeout (call) decides, after the replies already read.
      connectTimeout: BOOT_WAIT_MS,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
    });
    // Connection errors come back as failed calls; the store logs the outage once.
    client.on('error', () => {});
    // A Redis that accepts the connection but never answers would hold connect() (its
    // ready check has no timeout) and with it the boot: a second at most, then local.
    let down: unknown;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not ready within ${BOOT_WAIT_MS} ms at start`)), BOOT_WAIT_MS);
        }),
      ]);
    } catch (e) {
      down = e;
    } finally {
      clearTimeout(timer);
    }
    return new SharedLimitStore(client, { prefix: config.prefix, timeoutMs: config.timeoutMs, log, where: redactRedisUrl(config.redis), down });
  }

  /** Whether calls go to Redis now (false: every limiter counts locally). */
  get up(): boolean {
    return this.healthy;
  }

  /** Runs a call within the timeout; null (and the store marked down) when it failed or was late. */
  private async call<T>(run: () => Promise<T>): Promise<T | null> {
    if (!this.healthy || this.closed) return null;
    try {
      return await this.timed(run);
    } catch (e) {
      this.markDown(e);
      return null;
    }
  }

  private timed<T>(run: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      // setImmediate: timers run before the I/O poll of a loop turn, so after the loop
      // was busy a reply already in the socket would lose to the timer; it gets the
      // poll first (docs/decisions.md, "Limits shared by several nodes").
      timer = setTimeout(() => setImmediate(() => reject(new Error(`no answer within ${this.options.timeoutMs} ms`))), this.options.timeoutMs);
    });
    return Promise.race([run(), late]).finally(() => clearTimeout(timer));
  }

  private async script(sha: string, lua: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await this.client.evalsha(sha, keys.length, ...keys, ...args);
    } catch (e) {
      // A restarted (or flushed) Redis forgets loaded scripts.
      if (!/NOSCRIPT/.test((e as Error).message ?? '')) throw e;
      return this.client.eval(lua, keys.length, ...keys, ...args);
    }
  }

  private markDown(err: unknown): void {
    if (!this.healthy || this.closed) return;
    this.healthy = false;
    this.options.log.warn(
      { store: this.options.where, reason: (err as Error)?.message ?? String(err) },
      'shared limits store unreachable or slow: this node now enforces every rate limit and failed-authentication throttle on its own (local buckets) until it answers again',
    );
    this.probe = setInterval(() => void this.tryUp(), PROBE_EVERY_MS);
    this.probe.unref();
  }

  private async tryUp(): Promise<void> {
    if (this.healthy || this.closed) return;
    try {
      await this.timed(() => this.client.ping());
    } catch {
      return;
    }
    if (this.healthy || this.closed) return;
    this.healthy = true;
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
    this.options.log.warn({ store: this.options.where }, 'shared limits store answers again: the limits are shared by all nodes again');
  }

  /** One bucket operation in Redis; null when the store is down (count locally). */
  async bucket(
    op: 'take' | 'charge' | 'wait',
    key: string,
    spec: BucketSpec,
    cost: number,
    alert?: { key: string; everyMs: number },
  ): Promise<{ wait: number; alert: boolean } | null> {
    const keys = alert ? [this.prefix + key, this.prefix + alert.key] : [this.prefix + key];
    const now = this.options.clock ? String(this.options.clock()) : '';
    const r = await this.call(() => this.script(BUCKET_SHA, BUCKET_LUA, keys, [op, now, spec.perSecond, spec.burst, cost, alert?.everyMs ?? 0]));
    if (r === null) return null;
    const [wait, marked] = r as [string, number];
    return { wait: Number(wait), alert: marked === 1 };
  }

  /** One fixed-window operation in Redis; null when the store is down. */
  async window(op: 'wait' | 'fail', key: string, limit: number, windowMs: number): Promise<number | null> {
    const r = await this.call(() => this.script(WINDOW_SHA, WINDOW_LUA, [this.prefix + key], [op, limit, windowMs]));
    return r === null ? null : Number(r);
  }

  close(): void {
    this.closed = true;
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
    this.client.disconnect();
  }
}

/**
 * The buckets of one limiter (say the address's request bucket): in Redis
 * under `scope` while the store is up, in this node's TokenBuckets while it
 * is down or when there is no store. Same answers as TokenBuckets.
 */
export class SharedBuckets {
  readonly local: TokenBuckets;
  private alerted: Lru<string, number> | null = null;

  constructor(
    readonly spec: BucketSpec,
    private readonly scope: string,
    private readonly store: SharedLimitStore | null,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.local = new TokenBuckets(spec, 100_000, clock);
  }

  /** Takes `cost` tokens; 0 when allowed, else the seconds until it would be. */
  async take(key: string, cost = 1): Promise<number> {
    const r = this.store ? await this.store.bucket('take', `${this.scope}:${key}`, this.spec, cost) : null;
    return r ? r.wait : this.local.take(key, cost);
  }

  /** Seconds until the key's balance is positive; 0 when it is. */
  async wait(key: string): Promise<number> {
    const r = this.store ? await this.store.bucket('wait', `${this.scope}:${key}`, this.spec, 0) : null;
    return r ? r.wait : this.local.wait(key);
  }

  /**
   * Charges `cost` even into debt. Returns the seconds until the balance is
   * positive again, and with `alertEveryMs` whether to raise an alert: the
   * balance is not positive and no node alerted for this key in that time.
   */
  async charge(key: string, cost: number, alertEveryMs?: number): Promise<{ wait: number; alert: boolean }> {
    const alert = alertEveryMs === undefined ? undefined : { key: `${this.scope}:alerted:${key}`, everyMs: alertEveryMs };
    const r = this.store ? await this.store.bucket('charge', `${this.scope}:${key}`, this.spec, cost, alert) : null;
    if (r) return r;
    this.local.charge(key, cost);
    const wait = this.local.wait(key);
    if (alertEveryMs === undefined || wait === 0) return { wait, alert: false };
    this.alerted ??= new Lru(10_000);
    const now = this.clock();
    const last = this.alerted.get(key);
    if (last !== undefined && now - last < alertEveryMs) return { wait, alert: false };
    this.alerted.set(key, now);
    return { wait, alert: true };
  }
}

/** FixedWindows in Redis under `scope` while the store is up, local otherwise. */
export class SharedWindows {
  readonly local: FixedWindows;

  constructor(
    limit: number,
    windowMs: number,
    private readonly scope: string,
    private readonly store: SharedLimitStore | null,
  ) {
    this.local = new FixedWindows(limit, windowMs);
  }

  async wait(key: string, now: number): Promise<number> {
    const r = this.store ? await this.store.window('wait', `${this.scope}:${key}`, this.local.limit, this.local.windowMs) : null;
    return r ?? this.local.wait(key, now);
  }

  async fail(key: string, now: number): Promise<void> {
    const r = this.store ? await this.store.window('fail', `${this.scope}:${key}`, this.local.limit, this.local.windowMs) : null;
    if (r === null) this.local.fail(key, now);
  }
}

/** A refusal: which bucket, and the seconds to wait. */
export interface Refusal {
  what: 'requests' | 'frames';
  spec: BucketSpec;
  wait: number;
}

/** The request and frame buckets of one scope (`address`, `relay_key`). */
export class RateLimiter {
  readonly requests: SharedBuckets | null;
  readonly frames: SharedBuckets | null;

  constructor(spec: RateSpec, scope: string, store: SharedLimitStore | null = null, clock?: () => number) {
    this.requests = spec.requests ? new SharedBuckets(spec.requests, `rl:${scope}:requests`, store, clock) : null;
    this.frames = spec.frames ? new SharedBuckets(spec.frames, `rl:${scope}:frames`, store, clock) : null;
  }

  /** Charges one request; null when allowed. */
  async request(key: string): Promise<Refusal | null> {
    const wait = this.requests ? await this.requests.take(key, 1) : 0;
    return wait > 0 ? { what: 'requests', spec: this.requests!.spec, wait } : null;
  }

  /** Charges `count` frames (at least 1: an empty request still costs); null when allowed. */
  async frameCost(key: string, count: number): Promise<Refusal | null> {
    const wait = this.frames ? await this.frames.take(key, Math.max(1, count)) : 0;
    return wait > 0 ? { what: 'frames', spec: this.frames!.spec, wait } : null;
  }
}
