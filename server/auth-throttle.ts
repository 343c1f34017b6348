// Frames that fail authentication, counted per source address and per serial
// (docs/server.md, "Failed authentications"; docs/decisions.md).
//
// Per address it is a throttle: each failed frame costs a token, the bucket
// may go into debt (the work was already done when the failure is known), and
// while it is in debt the address's uploads are refused with 429 and
// Retry-After before the body is read, i.e. before any database or crypto
// work. In the long run an address gets `per_second` failed frames a second.
//
// Per serial it is only an alarm, never a throttle: serials are public and
// sequential, so refusing a serial's frames after N failures would let anyone
// silence a genuine device by sending junk in its name. The serial's bucket
// running dry is logged (at most once a minute per serial) and the sources of
// the junk are throttled by their own address buckets.
//
// Addresses are keyed by IPv4 address or by IPv6 /64 (RFC 4291 section 2.5.4:
// the interface identifier is the low 64 bits, so one subscriber usually holds
// a whole /64 and could otherwise rotate through 2^64 keys).
import { Lru } from './lru.js';
import { addressKey, type BucketSpec } from './rate-limit.js';

interface DebtBucket {
  tokens: number;
  at: number;
}

/** Buckets whose balance may go negative; `wait` is the time until it is positive again. */
class DebtBuckets {
  private readonly buckets: Lru<string, DebtBucket>;

  constructor(
    readonly spec: BucketSpec,
    maxKeys: number,
    private readonly clock: () => number,
  ) {
    this.buckets = new Lru(maxKeys);
  }

  private refill(key: string): DebtBucket | undefined {
    const b = this.buckets.get(key);
    if (!b) return undefined;
    const now = this.clock();
    b.tokens = Math.min(this.spec.burst, b.tokens + ((now - b.at) / 1000) * this.spec.perSecond);
    b.at = now;
    return b;
  }

  /** Seconds until the key's balance is positive again (0 when it is). */
  wait(key: string): number {
    const b = this.refill(key);
    return b && b.tokens <= 0 ? (1 - b.tokens) / this.spec.perSecond : 0;
  }

  /** Takes `cost` tokens, into debt if need be. */
  charge(key: string, cost: number): void {
    let b = this.refill(key);
    if (!b) {
      b = { tokens: this.spec.burst, at: this.clock() };
      this.buckets.set(key, b);
    }
    b.tokens -= cost;
  }
}


/** Alerts for one serial at most this often. */
const ALERT_EVERY_MS = 60_000;

export interface FailedAuthSpec {
  ip: BucketSpec | null;
  serial: BucketSpec | null;
}

export class FailedAuthThrottle {
  private readonly ip: DebtBuckets | null;
  private readonly serial: DebtBuckets | null;
  private readonly alerted: Lru<string, number>;

  constructor(
    spec: FailedAuthSpec,
    private readonly clock: () => number = () => performance.now(),
    maxKeys = 100_000,
  ) {
    this.ip = spec.ip ? new DebtBuckets(spec.ip, maxKeys, clock) : null;
    this.serial = spec.serial ? new DebtBuckets(spec.serial, maxKeys, clock) : null;
    this.alerted = new Lru(10_000);
  }

  /** Seconds the address must wait before its next upload is looked at; 0 when it may go on. */
  wait(address: string): number {
    return this.ip?.wait(addressKey(address)) ?? 0;
  }

  /**
   * Charges a request's failed frames to its address and to each serial.
   * Returns the serials whose failure budget just ran out and that were not
   * alerted in the last minute: the caller raises the alert.
   */
  record(address: string, failed: ReadonlyMap<string, number>): { serial: string; failed: number }[] {
    let total = 0;
    for (const n of failed.values()) total += n;
    if (total === 0) return [];
    this.ip?.charge(addressKey(address), total);
    const alerts: { serial: string; failed: number }[] = [];
    if (!this.serial) return alerts;
    const now = this.clock();
    for (const [serial, n] of failed) {
      this.serial.charge(serial, n);
      if (this.serial.wait(serial) === 0) continue;
      const last = this.alerted.get(serial);
      if (last !== undefined && now - last < ALERT_EVERY_MS) continue;
      this.alerted.set(serial, now);
      alerts.push({ serial, failed: n });
    }
    return alerts;
  }
}
