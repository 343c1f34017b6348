// Token buckets keyed by a string (a source address, a relay key's name). A
// bucket holds up to `burst` tokens and refills at `perSecond`; a request
// takes `cost` tokens or is told how long to wait. Buckets live in a bounded
// LRU per node: with several ingest nodes each enforces its own share, which
// is enough to keep one misbehaving client from crowding out the others.
//
// What is charged (docs/server.md, "Rate limits"): per source address and per
// relay key, one token per request and one per frame, from separate buckets,
// so a client can neither flood small requests nor few huge ones. `relay.id`
// in the body is chosen by the client and is never a key here.
//
// These are one node's buckets. server/edge/shared-limits.ts runs the same
// bucket in Redis for all nodes, and falls back to these when Redis is down.
import { isIPv6 } from 'node:net';
import { Lru } from '../lru.js';

export interface BucketSpec {
  perSecond: number;
  burst: number;
}

/** The two buckets of one scope (address, relay key); null turns one off. */
export interface RateSpec {
  requests: BucketSpec | null;
  frames: BucketSpec | null;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets: Lru<string, Bucket>;

  constructor(
    readonly spec: BucketSpec,
    maxKeys = 100_000,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.buckets = new Lru(maxKeys);
  }

  /** The key's bucket refilled to now; a new key starts full. */
  private bucket(key: string): Bucket {
    const now = this.clock();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.spec.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.spec.burst, b.tokens + ((now - b.at) / 1000) * this.spec.perSecond);
      b.at = now;
    }
    return b;
  }

  /** Takes `cost` tokens; returns 0 when allowed, else the seconds until it would be. */
  take(key: string, cost = 1): number {
    const b = this.bucket(key);
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return 0;
    }
    return (Math.min(cost, this.spec.burst) - b.tokens) / this.spec.perSecond;
  }

  /**
   * Takes `cost` tokens even into debt: for work whose cost is known only
   * after it was done (server/auth/throttle.ts).
   */
  charge(key: string, cost: number): void {
    this.bucket(key).tokens -= cost;
  }

  /** Seconds until the key's balance is positive again; 0 when it is (or the key is unknown). */
  wait(key: string): number {
    if (!this.buckets.has(key)) return 0;
    const b = this.bucket(key);
    return b.tokens <= 0 ? (1 - b.tokens) / this.spec.perSecond : 0;
  }
}

/** Counts per key in fixed windows, on one node (the API's 401s per address, server/auth/access.ts). */
export class FixedWindows {
  private readonly windows = new Lru<string, { start: number; count: number }>(100_000);
  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** Seconds until the key may try again; 0 when it may now. */
  wait(key: string, now: number): number {
    const w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs || w.count < this.limit) return 0;
    return (w.start + this.windowMs - now) / 1000;
  }

  fail(key: string, now: number): void {
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) w = { start: now, count: 0 };
    w.count++;
    this.windows.set(key, w);
  }
}

/**
 * The key of a source address for limits and connection caps: an IPv4
 * address as is (also when it arrives IPv4-mapped, `::ffff:a.b.c.d`, from a
 * dual-stack listener), an IPv6 address by its /64 prefix, since one
 * subscriber is given a whole /64 (RFC 6177 section 2; RFC 7381 section
 * 4.1.1 recommends /64 per end site at least) and could otherwise take a new
 * address per request.
 */
export function addressKey(ip: string): string {
  // Without a colon it is neither IPv6 nor IPv4-mapped: the common case, without the two regular expressions.
  if (!ip.includes(':')) return ip;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!isIPv6(ip)) return ip;
  const zone = ip.indexOf('%');
  const bare = zone >= 0 ? ip.slice(0, zone) : ip;
  const [head = '', tail = ''] = bare.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = bare.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  // An embedded IPv4 tail (::1.2.3.4) counts as two groups; only the first four matter.
  const groups = bare.includes('::') ? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}
