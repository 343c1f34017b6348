// POST /v1/uplink, minus HTTP: open, store and settle the frames of one
// request in one transaction, then compute the acks (docs/protocol.md
// sections 5 and 6; docs/server.md, "Ingest").
//
// Per frame: canonical base64 (protocol/base64.ts), the device's fixed frame size, openFrame with the
// device's keys (unwrapped from its row, server/keys.ts), decodePlaintext. Anything wrong with one frame is
// a rejection of that frame with a reason; the request still succeeds.
// Per device (its row locked): frames are inserted idempotently by
// (serial, counter); anchors, boot start estimates and readings follow
// (section 5.2); gap reports and boot anchors settle counters and leave
// visible gaps; the watermark N advances over settled counters. The caller
// gets N per device and computes acks only after the transaction committed.
import {
  ANCHOR_BOOT,
  AuthenticationError,
  MAX_COUNTER,
  decodePlaintext,
  equalBytes,
  fromBase64,
  isSerial,
  makeAck,
  openFrame,
  readU32BE,
  sampleUptime,
  type Decoded,
  type DeviceKeys,
} from '../../protocol/index.js';
import { DeviceKeyError, type Keyring } from '../keys.js';
import { mergeRanges, rangesOf, subtractRanges } from '../ranges.js';
import type { ReadingEvent, RetimeEvent, UplinkEvent } from '../events.js';
import type { Anchor, BootStart, DeviceRow, NewFrame, NewGap, NewReading, Range, ResolvedSample, Storage, TimeSource, Tx } from '../storage/types.js';

export interface UplinkFrame {
  data: string;
  rx: number;
}

export interface UplinkBody {
  relay: { id: string; time: number };
  devices: { serial: string; frames: UplinkFrame[] }[];
}

export interface Rejection {
  index: number;
  reason: string;
}

export interface DeviceResult {
  serial: string;
  ack: string | null;
  accepted: number;
  duplicates: number;
  rejected: Rejection[];
}

export interface IngestResult {
  devices: DeviceResult[];
  readings: ReadingEvent[];
  retimed: RetimeEvent[];
  uplinks: UplinkEvent[];
  /** Frames whose counter was reused with different content: a device fault to report. */
  reused: { serial: string; counter: number }[];
  /** Frames that failed authentication, per serial (the failed-authentication throttle counts them). */
  failedAuth: Map<string, number>;
}

export const REASONS = {
  unknownSerial: 'unknown serial',
  revoked: 'device revoked',
  badBase64: 'data is not valid base64',
  counterZero: 'counter 0 is invalid',
  authentication: 'frame authentication failed',
  reused: 'counter reused with different content',
  frameSize: (expected: number, got: number) => `wrong frame size: expected ${expected} bytes, got ${got}`,
} as const;

const BATTERY_CHANNEL = 2;
/** Anchors fetched per device per request to place its samples (section 5.2). */
const ANCHOR_WINDOW = 64;

interface Candidate {
  entry: number;
  index: number;
  serial: string;
  counter: number;
  bytes: Uint8Array;
  decoded: Decoded | undefined;
  typeCode: number;
  content: string;
  rx: number;
  /** rx clamped into [now - max relay delay, now] (clampRx): a frame cannot have been sealed later. */
  bound: number;
  /** 'relay' when rx was inside the window, 'server' when clamped. */
  source: TimeSource;
  // filled in for samples once placed in a boot
  boot?: number;
  uptime?: number;
}

interface DeviceWork {
  row: DeviceRow;
  keys: DeviceKeys | undefined;
  problem: string | undefined;
  seen: Map<number, Candidate>;
  fresh: Candidate[];
  authenticated: boolean;
}

interface Stats {
  accepted: number;
  duplicates: number;
  rejected: number;
}

export interface IngestContext {
  storage: Storage;
  keyring: Keyring;
  now: number;
  /** max_relay_delay in ms: how far before the server's receive time a relay's rx is believed (section 5.2). */
  maxRelayDelay: number;
  onReuse?: (serial: string, counter: number) => void;
  /** A registered device whose keys cannot be had (reason says why; never key material). */
  onKeyProblem?: (serial: string, ingestKeyId: string, reason: string) => void;
}

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

/** Stores one uplink request; returns the response body and what to announce. */
export async function ingestUplink(body: UplinkBody, ctx: IngestContext): Promise<IngestResult> {
  const { storage, keyring, now, maxRelayDelay } = ctx;
  // Only well-formed serials reach the database; anything else is simply not registered.
  const serials = [...new Set(body.devices.map((d) => d.serial))].filter(isSerial).sort();

  const committed = await storage.transaction(async (tx) => {
    const results: DeviceResult[] = body.devices.map((d) => ({ serial: d.serial, ack: null, accepted: 0, duplicates: 0, rejected: [] }));
    const stats = new Map<string, Stats>();
    const work = new Map<string, DeviceWork>();
    const newlyWrapped: { serial: string; keysWrapped: Uint8Array }[] = [];
    for (const row of await tx.lockDevices(serials)) {
      let keys: DeviceKeys | undefined;
      let problem: string | undefined;
      if (row.status !== 'active') {
        problem = REASONS.revoked;
        keyring.forget(row.serial);
      } else {
        try {
          const got = keyring.deviceKeys(row);
          keys = got.keys;
          if (got.wrapped) newlyWrapped.push({ serial: row.serial, keysWrapped: got.wrapped });
        } catch (e) {
          if (!(e instanceof DeviceKeyError)) throw e;
          problem = e.message;
          ctx.onKeyProblem?.(row.serial, row.ingestKeyId, e.message);
        }
      }
      work.set(row.serial, { row: { ...row }, keys, problem, seen: new Map(), fresh: [], authenticated: false });
    }
    // A row imported without the private key: derived just now, stored so it is never derived again.
    if (newlyWrapped.length > 0) await tx.setKeysWrapped(newlyWrapped);

    const candidates: Candidate[] = [];
    const reused: { serial: string; counter: number }[] = [];
    const reject = (entry: number, index: number, reason: string) => results[entry]!.rejected.push({ index, reason });

    body.devices.forEach((device, entry) => {
      const w = work.get(device.serial);
      device.frames.forEach((frame, index) => {
        if (!w) return reject(entry, index, REASONS.unknownSerial);
        if (w.problem !== undefined || !w.keys) return reject(entry, index, w.problem ?? REASONS.revoked);
        const bytes = fromBase64(frame.data);
        if (!bytes) return reject(entry, index, REASONS.badBase64);
        if (bytes.length !== w.row.frameSize) return reject(entry, index, REASONS.frameSize(w.row.frameSize, bytes.length));
        if (readU32BE(bytes, 0) === 0) return reject(entry, index, REASONS.counterZero);
        let counter: number;
        let plaintext: Uint8Array;
        // A junk frame fails by two exceptions (OpenSSL's in ccmDecrypt, then AuthenticationError)
        // whose stacks nobody reads; capturing them was about a third of a junk frame's cost
        // (bench/junk-uplink.ts). openFrame's arguments are checked above, so nothing else throws.
        const stackLimit = Error.stackTraceLimit;
        Error.stackTraceLimit = 0;
        try {
          ({ counter, plaintext } = openFrame(w.keys, bytes, w.row.frameSize));
        } catch (e) {
          if (e instanceof AuthenticationError) return reject(entry, index, REASONS.authentication);
          throw e;
        } finally {
          Error.stackTraceLimit = stackLimit;
        }
        w.authenticated = true;
        const earlier = w.seen.get(counter);
        if (earlier) {
          if (equalBytes(earlier.bytes, bytes)) {
            results[entry]!.duplicates++;
          } else {
            reused.push({ serial: device.serial, counter });
            reject(entry, index, REASONS.reused);
          }
          return;
        }
        let decoded: Decoded | undefined;
        let content: string;
        try {
          decoded = decodePlaintext(plaintext);
          content = JSON.stringify(decoded);
        } catch (e) {
          // Authentic but not understood: stored undecoded so the device's outbox still drains.
          content = JSON.stringify({ type: 'malformed', code: plaintext[0], error: (e as Error).message });
        }
        const c: Candidate = {
          entry,
          index,
          serial: device.serial,
          counter,
          bytes,
          decoded,
          typeCode: plaintext[0]!,
          content,
          rx: frame.rx,
          ...clampRx(frame.rx, now, maxRelayDelay),
        };
        w.seen.set(counter, c);
        candidates.push(c);
      });
    });

    const inserted = await tx.insertFrames(
      candidates.map(
        (c): NewFrame => ({
          serial: c.serial,
          counter: c.counter,
          frame: c.bytes,
          type: c.typeCode,
          content: c.content,
          relay: body.relay.id,
          relayTime: body.relay.time,
          rx: c.rx,
          received: now,
        }),
      ),
    );

    // Already stored: a replay if the bytes are the same, a reused counter if not.
    const old = new Map<string, Candidate[]>();
    candidates.forEach((c, i) => {
      if (inserted[i]) {
        work.get(c.serial)!.fresh.push(c);
        results[c.entry]!.accepted++;
      } else {
        const list = old.get(c.serial) ?? [];
        list.push(c);
        old.set(c.serial, list);
      }
    });
    for (const [serial, list] of old) {
      const stored = await tx.frameBytes(serial, list.map((c) => c.counter));
      for (const c of list) {
        const s = stored.get(c.counter);
        if (s === undefined || equalBytes(s, c.bytes)) results[c.entry]!.duplicates++;
        else {
          reused.push({ serial, counter: c.counter });
          reject(c.entry, c.index, REASONS.reused);
        }
      }
    }

    const readings: NewReading[] = [];
    const retimed: RetimeEvent[] = [];
    for (const serial of serials) {
      const w = work.get(serial);
      if (!w || !w.authenticated) continue;
      await settleDevice(tx, w, now, readings, retimed);
    }
    await tx.insertReadings(readings);

    for (const r of results) {
      const s = stats.get(r.serial) ?? { accepted: 0, duplicates: 0, rejected: 0 };
      s.accepted += r.accepted;
      s.duplicates += r.duplicates;
      s.rejected += r.rejected.length;
      stats.set(r.serial, s);
    }
    return { results, work, readings, retimed, reused, stats };
  });

  // Committed: only now may an ack promise that counters 1..N are settled.
  const { results, work, readings, retimed, reused, stats } = committed;
  const acks = new Map<string, string | null>();
  for (const [serial, w] of work) {
    acks.set(serial, w.keys && w.row.settled >= 1 ? Buffer.from(makeAck(w.keys, w.row.settled)).toString('base64') : null);
  }
  for (const r of results) {
    r.ack = acks.get(r.serial) ?? null;
    r.rejected.sort((a, b) => a.index - b.index);
  }
  for (const u of reused) ctx.onReuse?.(u.serial, u.counter);

  const failedAuth = new Map<string, number>();
  for (const r of results) {
    const n = r.rejected.filter((x) => x.reason === REASONS.authentication).length;
    if (n > 0) failedAuth.set(r.serial, (failedAuth.get(r.serial) ?? 0) + n);
  }
  const uplinks: UplinkEvent[] = [];
  for (const [serial, s] of stats) {
    uplinks.push({ serial, relay: body.relay.id, ...s, settled: work.get(serial)?.row.settled ?? 0 });
  }
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
    uplinks,
    reused,
    failedAuth,
  };
}

function isType<T extends Decoded['type']>(c: Candidate, type: T): c is Candidate & { decoded: Extract<Decoded, { type: T }> } {
  return c.decoded !== undefined && c.decoded.type === type;
}

/**
 * Time mapping, readings, gaps and the watermark of one device whose row is
 * locked. Mutates w.row (the new device state) and appends readings.
 */
async function settleDevice(tx: Tx, w: DeviceWork, now: number, readings: NewReading[], retimed: RetimeEvent[]): Promise<void> {
  const d = w.row;
  const serial = d.serial;
  const fresh = w.fresh.sort((a, b) => a.counter - b.counter);
  const oldMax = d.maxCounter;
  const oldGapHi = d.gapHi;
  d.lastSeen = Math.max(d.lastSeen ?? 0, now);

  // Anchors (section 5.1, 0x02); a boot anchor settles everything below it (section 6).
  const anchors: (Anchor & { bound: number; source: TimeSource })[] = [];
  for (const c of fresh) {
    if (!isType(c, 'anchor')) continue;
    anchors.push({ counter: c.counter, boot: c.decoded.boot, uptime: c.decoded.uptime, reason: c.decoded.reason, bound: c.bound, source: c.source });
    if (c.decoded.reason === ANCHOR_BOOT) d.bootFloor = Math.max(d.bootFloor, c.counter);
  }
  if (anchors.length > 0) await tx.insertAnchors(serial, anchors);

  // Boot start estimates (section 5.2): min over the boot's frames of bound - uptime,
  // remembering whether the minimum rests on a relay's claim or on the clamp (a tie
  // goes to the relay: its claim agrees with the server's bound).
  const candidates = new Map<number, BootStart & { anchorCounter: number }>();
  const note = (boot: number, start: number, source: TimeSource, anchorCounter: number) => {
    const c = candidates.get(boot);
    if (!c || start < c.start || (start === c.start && source === 'relay')) {
      candidates.set(boot, { start, source, anchorCounter: c ? Math.min(c.anchorCounter, anchorCounter) : anchorCounter });
    }
  };
  for (const a of anchors) note(a.boot, a.bound - a.uptime * 1000, a.source, a.counter);

  const samples = fresh.filter((c) => isType(c, 'sample')) as (Candidate & { decoded: Extract<Decoded, { type: 'sample' }> })[];
  if (samples.length > 0) {
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
      note(a.boot, s.bound - s.uptime * 1000, s.source, a.counter);
    }
  }

  // Samples stored earlier without an anchor, placed now by the new anchors.
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
      note(a.boot, p.bound - uptime * 1000, p.bound === p.rx ? 'relay' : 'server', a.counter);
    }
  }

  const starts = new Map<number, BootStart>();
  if (candidates.size > 0) {
    const existing = await tx.bootStarts(serial, [...candidates.keys()]);
    for (const [boot, c] of candidates) {
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
  }
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

  for (const s of samples) {
    const placed = s.boot !== undefined;
    const start = placed ? starts.get(s.boot!)! : undefined;
    const time = start ? start.start + s.uptime! * 1000 : null;
    const timeSource = start ? start.source : null;
    s.decoded.readings.forEach((r, idx) => {
      readings.push({
        serial,
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

  // A late frame inside a visible gap shrinks the gap (section 6).
  const counters = fresh.map((c) => c.counter);
  if (counters.length > 0 && oldGapHi >= counters[0]!) {
    const taken = rangesOf(counters);
    for (const g of await tx.gapsOverlapping(serial, counters[0]!, counters[counters.length - 1]!)) {
      const last = g.first + g.count - 1;
      const rest = subtractRanges(g.first, last, taken);
      if (rest.length === 1 && rest[0]!.first === g.first && rest[0]!.last === last) continue;
      await tx.deleteGaps([g.id]);
      await tx.insertGaps(rest.map((r) => ({ serial, first: r.first, count: r.last - r.first + 1, kind: g.kind, detectedAt: g.detectedAt })));
    }
  }

  // Gap reports (section 5.1, 0x03): the device dropped these; visible unless stored.
  for (const c of fresh) {
    if (!isType(c, 'gap')) continue;
    const lo = c.decoded.first;
    const hi = Math.min(MAX_COUNTER, lo + c.decoded.count - 1);
    const taken: Range[] = await tx.storedRanges(serial, lo, hi);
    if (d.gapHi >= lo) for (const g of await tx.gapsOverlapping(serial, lo, hi)) taken.push({ first: g.first, last: g.first + g.count - 1 });
    await insertGaps(tx, d, subtractRanges(lo, hi, taken), 'outbox-overflow', now);
    d.gapHi = Math.max(d.gapHi, hi);
  }

  // The watermark: advance over stored frames, gap rows and everything below the latest boot anchor.
  d.maxCounter = Math.max(oldMax, counters.length > 0 ? counters[counters.length - 1]! : 0);
  d.frames += fresh.length;
  const storedAbove = async (lo: number, hi: number): Promise<Range[]> =>
    oldMax >= lo ? tx.storedRanges(serial, lo, hi) : rangesOf(counters.filter((c) => c >= lo && c <= hi));
  let W = d.settled;
  for (;;) {
    if (d.bootFloor - 1 > W) {
      const lo = W + 1;
      const hi = d.bootFloor - 1;
      const taken = await storedAbove(lo, hi);
      if (d.gapHi >= lo) for (const g of await tx.gapsOverlapping(serial, lo, hi)) taken.push({ first: g.first, last: g.first + g.count - 1 });
      await insertGaps(tx, d, subtractRanges(lo, hi, taken), 'power-loss', now);
      W = hi;
      continue;
    }
    if (d.gapHi > W) {
      const g = (await tx.gapsOverlapping(serial, W + 1, W + 1))[0];
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
    break;
  }
  d.settled = W;
  await tx.updateDevice(d);
}

async function insertGaps(tx: Tx, d: DeviceRow, ranges: Range[], kind: NewGap['kind'], now: number): Promise<void> {
  if (ranges.length === 0) return;
  const merged = mergeRanges(ranges);
  await tx.insertGaps(merged.map((r) => ({ serial: d.serial, first: r.first, count: r.last - r.first + 1, kind, detectedAt: now })));
  d.gapHi = Math.max(d.gapHi, merged[merged.length - 1]!.last);
}
