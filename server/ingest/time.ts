// Time for one device's frames (docs/protocol.md section 5.2; docs/server.md,
// "Time" and "Time clamp"): relay receive times clamped into the server's
// window, samples placed in their boot by the nearest earlier anchor, and each
// boot's start estimated as the minimum over its frames of bound - uptime.
// Estimates only ever move earlier; a boot whose estimate moved is re-timed.
import { sampleUptime } from '../../protocol/index.js';
import type { RetimeEvent } from '../events.js';
import type { Anchor, BootStart, ResolvedSample, TimeSource, Tx } from '../storage/types.js';
import { isType, type Candidate, type Typed } from './work.js';

/** Anchors fetched per device per request to place its samples (section 5.2). */
const ANCHOR_WINDOW = 64;

/**
 * A relay's receive time is a hint (docs/protocol.md sections 5.2 and 11;
 * docs/server.md, "Time clamp"): it is clamped into [now - maxDelay, now]. A
 * relay cannot have received a frame after the server did, and a claim older
 * than the window is replaced by the window's edge, so a lying relay moves a
 * boot's start estimate by at most maxDelay. `source` says whether the bound
 * is the relay's claim or the clamp.
 */
export function clampRx(rx: number, now: number, maxDelay: number): { bound: number; source: TimeSource } {
  const earliest = now - maxDelay;
  if (rx > now) return { bound: now, source: 'server' };
  if (rx < earliest) return { bound: earliest, source: 'server' };
  return { bound: rx, source: 'relay' };
}

/** An anchor of this request, with its frame's clamped receive time. */
export type FreshAnchor = Anchor & { bound: number; source: TimeSource };

/**
 * Boot start candidates of one request: min over the boot's frames of
 * bound - uptime, remembering whether the minimum rests on a relay's claim or
 * on the clamp (a tie goes to the relay: its claim agrees with the server's bound).
 */
class BootEstimates {
  readonly byBoot = new Map<number, BootStart & { anchorCounter: number }>();

  note(boot: number, start: number, source: TimeSource, anchorCounter: number): void {
    const c = this.byBoot.get(boot);
    if (!c) this.byBoot.set(boot, { start, source, anchorCounter });
    else if (start < c.start || (start === c.start && source === 'relay')) {
      // In place: called once per sample, and nothing else holds the estimate yet.
      c.start = start;
      c.source = source;
      c.anchorCounter = Math.min(c.anchorCounter, anchorCounter);
    }
  }
}

/** What timing a device's fresh frames gave: its samples (placed where an anchor allowed) and the start of each boot involved. */
export interface Timed {
  samples: Typed<'sample'>[];
  starts: Map<number, BootStart>;
}

/**
 * Places the fresh samples, resolves samples stored earlier without an anchor,
 * and stores the boots' new start estimates (re-timing readings of a boot whose
 * estimate moved earlier; each such boot is appended to `retimed`).
 */
export async function timeFrames(tx: Tx, serial: string, fresh: Candidate[], anchors: FreshAnchor[], retimed: RetimeEvent[]): Promise<Timed> {
  const estimates = new BootEstimates();
  for (const a of anchors) estimates.note(a.boot, a.bound - a.uptime * 1000, a.source, a.counter);
  const samples = fresh.filter((c): c is Typed<'sample'> => isType(c, 'sample'));
  await placeSamples(tx, serial, samples, estimates);
  const resolved = await placePending(tx, serial, anchors, estimates);
  const starts = await saveStarts(tx, serial, estimates, retimed);
  if (resolved.length > 0) {
    await tx.resolveSamples(
      serial,
      resolved.map((r) => {
        const b = starts.get(r.boot)!;
        return { counter: r.counter, boot: r.boot, uptime: r.uptime, time: b.start + r.uptime * 1000, timeSource: b.source };
      }),
    );
    for (const boot of new Set(resolved.map((r) => r.boot))) {
      const b = starts.get(boot)!;
      if (!retimed.some((e) => e.serial === serial && e.boot === boot)) retimed.push({ serial, boot, start: b.start });
    }
  }
  return { samples, starts };
}

/** Each fresh sample in its boot, by the nearest earlier anchor with the same boot8 (sets boot and uptime). */
async function placeSamples(tx: Tx, serial: string, samples: Typed<'sample'>[], estimates: BootEstimates): Promise<void> {
  if (samples.length === 0) return;
  const window = await tx.anchorsBefore(serial, samples[samples.length - 1]!.counter, ANCHOR_WINDOW);
  const complete = window.length < ANCHOR_WINDOW;
  const lowest = window.length > 0 ? window[window.length - 1]!.counter : 0;
  for (const s of samples) {
    const boot8 = s.decoded.boot8;
    let a: Anchor | undefined = window.find((x) => x.counter < s.counter && x.boot % 256 === boot8);
    if (!a && !complete) a = await tx.anchorFor(serial, Math.min(s.counter, lowest), boot8);
    if (!a) continue;
    s.boot = a.boot;
    s.uptime = sampleUptime(s.decoded.uptime24, a.uptime);
    estimates.note(a.boot, s.bound - s.uptime * 1000, s.source, a.counter);
  }
}

/** Samples stored earlier without an anchor, placed now by the new anchors. */
async function placePending(tx: Tx, serial: string, anchors: Anchor[], estimates: BootEstimates): Promise<Omit<ResolvedSample, 'time' | 'timeSource'>[]> {
  const resolved: Omit<ResolvedSample, 'time' | 'timeSource'>[] = [];
  const byBoot8 = new Map<number, Anchor[]>();
  for (const a of anchors) {
    const list = byBoot8.get(a.boot % 256) ?? [];
    list.push(a);
    byBoot8.set(a.boot % 256, list);
  }
  for (const [boot8, list] of byBoot8) {
    for (const p of await tx.pendingSamples(serial, boot8, list[0]!.counter)) {
      let a: Anchor | undefined;
      for (const x of list) if (x.counter < p.counter) a = x;
      if (!a) continue;
      const uptime = sampleUptime(p.uptime24, a.uptime);
      resolved.push({ counter: p.counter, boot: a.boot, uptime });
      // The stored bound equals the relay's rx unless it was clamped.
      estimates.note(a.boot, p.bound - uptime * 1000, p.bound === p.rx ? 'relay' : 'server', a.counter);
    }
  }
  return resolved;
}

/** Stores new boots and earlier estimates (re-timing their readings); returns every involved boot's start. */
async function saveStarts(tx: Tx, serial: string, estimates: BootEstimates, retimed: RetimeEvent[]): Promise<Map<number, BootStart>> {
  const starts = new Map<number, BootStart>();
  if (estimates.byBoot.size === 0) return starts;
  const existing = await tx.bootStarts(serial, [...estimates.byBoot.keys()]);
  for (const [boot, c] of estimates.byBoot) {
    const old = existing.get(boot);
    const next: BootStart = { start: c.start, source: c.source };
    if (old === undefined) {
      await tx.saveBoot(serial, boot, next, c.anchorCounter, true);
      starts.set(boot, next);
    } else if (c.start < old.start) {
      await tx.saveBoot(serial, boot, next, c.anchorCounter, false);
      await tx.retimeBoot(serial, boot, next);
      starts.set(boot, next);
      retimed.push({ serial, boot, start: c.start });
    } else {
      starts.set(boot, old);
    }
  }
  return starts;
}
