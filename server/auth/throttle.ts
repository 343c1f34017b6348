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
//
// With `shared_limits` both counts live in Redis for all nodes, the alert's
// once-a-minute included (server/edge/shared-limits.ts).
import { addressKey, type BucketSpec } from '../edge/rate-limit.js';
import { SharedBuckets, type SharedLimitStore } from '../edge/shared-limits.js';

/** Alerts for one serial at most this often. */
const ALERT_EVERY_MS = 60_000;

export interface FailedAuthSpec {
  ip: BucketSpec | null;
  serial: BucketSpec | null;
}

export class FailedAuthThrottle {
  private readonly ip: SharedBuckets | null;
  private readonly serial: SharedBuckets | null;

  constructor(spec: FailedAuthSpec, store: SharedLimitStore | null = null, clock: () => number = () => performance.now()) {
    this.ip = spec.ip ? new SharedBuckets(spec.ip, 'fa:ip', store, clock) : null;
    this.serial = spec.serial ? new SharedBuckets(spec.serial, 'fa:serial', store, clock) : null;
  }

  /** Seconds the address must wait before its next upload is looked at; 0 when it may go on. */
  async wait(address: string): Promise<number> {
    return this.ip ? this.ip.wait(addressKey(address)) : 0;
  }

  /**
   * Charges a request's failed frames to its address and to each serial.
   * Returns the serials whose failure budget just ran out and that were not
   * alerted in the last minute (by any node): the caller raises the alert.
   */
  async record(address: string, failed: ReadonlyMap<string, number>): Promise<{ serial: string; failed: number }[]> {
    let total = 0;
    for (const n of failed.values()) total += n;
    if (total === 0) return [];
    const serial = this.serial;
    const [, ...charged] = await Promise.all([
      this.ip?.charge(addressKey(address), total),
      ...(serial ? [...failed].map(async ([s, n]) => ({ serial: s, failed: n, alert: (await serial.charge(s, n, ALERT_EVERY_MS)).alert })) : []),
    ]);
    return charged.filter((c) => c!.alert).map((c) => ({ serial: c!.serial, failed: c!.failed }));
  }
}
