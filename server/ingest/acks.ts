// After the request's transaction committed, or when it needed none
// (docs/protocol.md section 6; docs/server.md, "Durability"): the ack per
// device entry from the committed watermark N (none for N = 0, nor for a
// device none of whose frames in the request authenticated), and what
// the caller announces: readings,
// re-timed boots, one uplink event per device, reused counters and the
// failed authentications the throttle counts.
import type { RetimeEvent, UplinkEvent } from '../events.js';
import type { NewReading } from '../storage/types.js';
import { REASONS, type DeviceResult, type IngestContext, type IngestResult } from './types.js';
import type { Candidate, DeviceWork } from './work.js';

/** What the request committed (or, without a transaction, what it read). */
export interface Committed {
  work: Map<string, DeviceWork>;
  /** Each registered device's committed watermark N. */
  settled: Map<string, number>;
  results: DeviceResult[];
  readings: NewReading[];
  retimed: RetimeEvent[];
  reused: { serial: string; counter: number }[];
  /** The request's authenticated frames (key renewal reads their key epochs and REKEY parts). */
  candidates?: Candidate[];
}

/** Only now may an ack promise that counters 1..N are settled. */
export function finish(committed: Committed, relayId: string, ctx: IngestContext): IngestResult {
  const { results, work, settled, readings, retimed, reused } = committed;
  // Only for a device that authenticated a frame in this request: junk in its name learns nothing, not even N.
  let acks: Map<string, string | null> | undefined;
  for (const [serial, w] of work) {
    const n = settled.get(serial) ?? 0;
    if (w.cipher && w.authenticated && n >= 1) (acks ??= new Map()).set(serial, Buffer.from(w.cipher.ack(n)).toString('base64'));
  }
  for (const r of results) {
    r.ack = acks?.get(r.serial) ?? null;
    if (r.rejected.length > 1) r.rejected.sort((a, b) => a.index - b.index);
  }
  for (const u of reused) ctx.onReuse?.(u.serial, u.counter);
  return {
    devices: results,
    readings: readings.map((r) => ({
      serial: r.serial,
      counter: r.counter,
      channel: r.channel,
      name: r.name,
      unit: r.unit,
      value: r.value,
      time: r.time,
      timeSource: r.timeSource,
      boot: r.boot,
      uptime: r.uptime,
    })),
    retimed,
    uplinks: uplinkEvents(results, settled, relayId),
    reused,
    failedAuth: failedAuthentications(results),
  };
}

/** One event per serial, its entries' counts summed (a serial named twice is one event). */
function uplinkEvents(results: DeviceResult[], settled: Map<string, number>, relayId: string): UplinkEvent[] {
  const bySerial = new Map<string, UplinkEvent>();
  const uplinks: UplinkEvent[] = [];
  for (const r of results) {
    const u = bySerial.get(r.serial);
    if (u) {
      u.accepted += r.accepted;
      u.duplicates += r.duplicates;
      u.rejected += r.rejected.length;
      continue;
    }
    const event: UplinkEvent = { serial: r.serial, relay: relayId, accepted: r.accepted, duplicates: r.duplicates, rejected: r.rejected.length, settled: settled.get(r.serial) ?? 0 };
    bySerial.set(r.serial, event);
    uplinks.push(event);
  }
  return uplinks;
}

function failedAuthentications(results: DeviceResult[]): Map<string, number> {
  const failedAuth = new Map<string, number>();
  for (const r of results) {
    let n = 0;
    for (const x of r.rejected) if (x.reason === REASONS.authentication) n++;
    if (n > 0) failedAuth.set(r.serial, (failedAuth.get(r.serial) ?? 0) + n);
  }
  return failedAuth;
}
