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
import { Lru } from '../lru.js';
import { TokenBuckets, addressKey, type BucketSpec } from '../edge/rate-limit.js';

/** Alerts for one serial at most this often. */
const ALERT_EVERY_MS = 60_000;

export interface FailedAuthSpec {
  ip: BucketSpec | null;
  serial: BucketSpec | null;
}

export class FailedAuthThrottle {
  private readonly ip: TokenBuckets | null;
  private readonly serial: TokenBuckets | null;
  private readonly alerted: Lru<string, number>;

  constructor(
    spec: FailedAuthSpec,
    private readonly clock: () => number = () => performance.now(),
    maxKeys = 100_000,
  ) {
    this.ip = spec.ip ? new TokenBuckets(spec.ip, maxKeys, clock) : null;
    this.serial = spec.serial ? new TokenBuckets(spec.serial, maxKeys, clock) : null;
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
