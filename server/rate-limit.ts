// Token buckets keyed by a string (relay id, client IP). A bucket holds up to
// `burst` tokens and refills at `perSecond`; a request takes `cost` tokens or
// is told how long to wait. Buckets live in a bounded LRU per node: with
// several ingest nodes each enforces its own share, which is enough to keep
// one misbehaving relay from crowding out the others.
import { Lru } from './lru.js';

export interface BucketSpec {
  perSecond: number;
  burst: number;
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

  /** Takes `cost` tokens; returns 0 when allowed, else the seconds until it would be. */
  take(key: string, cost = 1): number {
    const now = this.clock();
    const { perSecond, burst } = this.spec;
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
      b.at = now;
    }
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return 0;
    }
    return (Math.min(cost, burst) - b.tokens) / perSecond;
  }
}
