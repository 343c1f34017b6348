// Settling one device after its new frames were stored (docs/protocol.md
// sections 5 and 6; docs/server.md, "Ingest: settling, gaps, duplicates"):
// anchors and boot floor, time (time.ts), readings, gaps that shrink, gap
// reports, and the ack watermark N advanced over everything settled. Runs in
// the request's transaction with the device's row locked.
import { ANCHOR_BOOT, MAX_COUNTER } from '../../protocol/index.js';
import type { RetimeEvent } from '../events.js';
import { mergeRanges, rangesOf, subtractRanges } from '../ranges.js';
import type { BootStart, DeviceRow, NewGap, NewReading, Range, Tx } from '../storage/types.js';
import { timeFrames, type FreshAnchor } from './time.js';
import { isType, type Candidate, type Typed } from './work.js';

const BATTERY_CHANNEL = 2;

/**
 * Time mapping, readings, gaps and the watermark of one device whose row `d`
 * is locked, after its `fresh` frames were stored. Mutates d into the new
 * device state, stores it and appends readings.
 */
export async function settleDevice(tx: Tx, d: DeviceRow, fresh: Candidate[], now: number, readings: NewReading[], retimed: RetimeEvent[]): Promise<void> {
  fresh.sort((a, b) => a.counter - b.counter);
  const oldMax = d.maxCounter;
  const oldGapHi = d.gapHi;
  d.lastSeen = Math.max(d.lastSeen ?? 0, now);

  const anchors = await recordAnchors(tx, d, fresh);
  const { samples, starts } = await timeFrames(tx, d.serial, fresh, anchors, retimed);
  addReadings(d, samples, starts, readings);

  const counters = fresh.map((c) => c.counter);
  await shrinkGaps(tx, d.serial, counters, oldGapHi);
  await recordGapReports(tx, d, fresh, now);

  d.maxCounter = Math.max(oldMax, counters.length > 0 ? counters[counters.length - 1]! : 0);
  d.frames += fresh.length;
  d.settled = await advanceWatermark(tx, d, counters, oldMax, now);
  await tx.updateDevice(d);
}

/** Anchors (section 5.1, 0x02) are stored; a boot anchor raises the boot floor: everything below it is settled (section 6). */
async function recordAnchors(tx: Tx, d: DeviceRow, fresh: Candidate[]): Promise<FreshAnchor[]> {
  const anchors: FreshAnchor[] = [];
  for (const c of fresh) {
    if (!isType(c, 'anchor')) continue;
    anchors.push({ counter: c.counter, boot: c.decoded.boot, uptime: c.decoded.uptime, reason: c.decoded.reason, bound: c.bound, source: c.source });
    if (c.decoded.reason === ANCHOR_BOOT) d.bootFloor = Math.max(d.bootFloor, c.counter);
  }
  if (anchors.length > 0) await tx.insertAnchors(d.serial, anchors);
  return anchors;
}

/** One reading per channel of each sample, timed when its boot has a start; the latest battery reading goes into the row. */
function addReadings(d: DeviceRow, samples: Typed<'sample'>[], starts: Map<number, BootStart>, readings: NewReading[]): void {
  for (const s of samples) {
    const placed = s.boot !== undefined;
    const start = placed ? starts.get(s.boot!)! : undefined;
    const time = start ? start.start + s.uptime! * 1000 : null;
    const timeSource = start ? start.source : null;
    s.decoded.readings.forEach((r, idx) => {
      readings.push({
        serial: d.serial,
        counter: s.counter,
        idx,
        channel: r.channel,
        name: r.name,
        unit: r.unit,
        value: r.value,
        boot8: s.decoded.boot8,
        uptime24: s.decoded.uptime24,
        bound: s.bound,
        boot: placed ? s.boot! : null,
        uptime: placed ? s.uptime! : null,
        time,
        timeSource,
      });
      if (r.channel === BATTERY_CHANNEL && r.value !== null && s.counter > d.batteryCounter) {
        d.battery = r.value;
        d.batteryCounter = s.counter;
      }
    });
  }
}

/** A late frame inside a visible gap shrinks the gap (section 6). `counters` ascending. */
async function shrinkGaps(tx: Tx, serial: string, counters: number[], oldGapHi: number): Promise<void> {
  if (counters.length === 0 || oldGapHi < counters[0]!) return;
  const taken = rangesOf(counters);
  for (const g of await tx.gapsOverlapping(serial, counters[0]!, counters[counters.length - 1]!)) {
    const last = g.first + g.count - 1;
    const rest = subtractRanges(g.first, last, taken);
    if (rest.length === 1 && rest[0]!.first === g.first && rest[0]!.last === last) continue;
    await tx.deleteGaps([g.id]);
    await tx.insertGaps(rest.map((r) => ({ serial, first: r.first, count: r.last - r.first + 1, kind: g.kind, detectedAt: g.detectedAt })));
  }
}

/** Gap reports (section 5.1, 0x03): the device dropped these counters; visible unless stored or already in a gap. */
async function recordGapReports(tx: Tx, d: DeviceRow, fresh: Candidate[], now: number): Promise<void> {
  for (const c of fresh) {
    if (!isType(c, 'gap')) continue;
    const lo = c.decoded.first;
    const hi = Math.min(MAX_COUNTER, lo + c.decoded.count - 1);
    const taken: Range[] = await tx.storedRanges(d.serial, lo, hi);
    if (d.gapHi >= lo) taken.push(...(await gapRanges(tx, d.serial, lo, hi)));
    await insertGaps(tx, d, subtractRanges(lo, hi, taken), 'outbox-overflow', now);
    d.gapHi = Math.max(d.gapHi, hi);
  }
}

/**
 * The watermark: from the stored N, advance over everything below the latest
 * boot anchor (recording what is neither stored nor in a gap as a power-loss
 * gap), a gap row starting at N + 1, or a run of stored frames starting at
 * N + 1, until none applies. Row hints (maxCounter, gapHi) spare the queries
 * when frames arrive in order.
 */
async function advanceWatermark(tx: Tx, d: DeviceRow, counters: number[], oldMax: number, now: number): Promise<number> {
  const storedAbove = async (lo: number, hi: number): Promise<Range[]> =>
    oldMax >= lo ? tx.storedRanges(d.serial, lo, hi) : rangesOf(counters.filter((c) => c >= lo && c <= hi));
  let W = d.settled;
  for (;;) {
    if (d.bootFloor - 1 > W) {
      const lo = W + 1;
      const hi = d.bootFloor - 1;
      const taken = await storedAbove(lo, hi);
      if (d.gapHi >= lo) taken.push(...(await gapRanges(tx, d.serial, lo, hi)));
      await insertGaps(tx, d, subtractRanges(lo, hi, taken), 'power-loss', now);
      W = hi;
      continue;
    }
    if (d.gapHi > W) {
      const g = (await tx.gapsOverlapping(d.serial, W + 1, W + 1))[0];
      if (g) {
        W = g.first + g.count - 1;
        continue;
      }
    }
    if (d.maxCounter > W) {
      const run = (await storedAbove(W + 1, MAX_COUNTER))[0];
      if (run && run.first === W + 1) {
        W = run.last;
        continue;
      }
    }
    return W;
  }
}

async function gapRanges(tx: Tx, serial: string, lo: number, hi: number): Promise<Range[]> {
  return (await tx.gapsOverlapping(serial, lo, hi)).map((g) => ({ first: g.first, last: g.first + g.count - 1 }));
}

async function insertGaps(tx: Tx, d: DeviceRow, ranges: Range[], kind: NewGap['kind'], now: number): Promise<void> {
  if (ranges.length === 0) return;
  const merged = mergeRanges(ranges);
  await tx.insertGaps(merged.map((r) => ({ serial: d.serial, first: r.first, count: r.last - r.first + 1, kind, detectedAt: now })));
  d.gapHi = Math.max(d.gapHi, merged[merged.length - 1]!.last);
}
