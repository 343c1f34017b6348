// Opening a request's frames (docs/protocol.md section 5; docs/server.md,
// "Ingest"), before any transaction: the keys of every registered active
// device from its key row (server/keys.ts: cached, or all rows unwrapped in
// one AES call and confirmed once a frame authenticates, never derived
// twice), then the checks that need no key (canonical padded base64,
// protocol/base64.ts, done by uplink.ts; the device's frame size; counter
// != 0), then every frame of every device opened together (device-cipher.ts:
// 1 + k AES calls for the whole request), and per frame in request order an
// in-request replay check and decodePlaintext. Anything wrong with one frame
// rejects that frame with a reason. A junk request makes no object per frame
// and none per device beyond its DeviceWork (docs/server.md, "Junk uplinks").
import { decodePlaintext, equalBytes, rekeyPart, type Decoded } from '../../protocol/index.js';
import type { KeyPlan } from '../renewal.js';
import { rekeyContent } from '../storage/epochs.js';
import { KEYS_NONE, KEYS_UNVERIFIED, KEYS_VERIFIED, REASON_UNWRAP, emptyRowKeys, rowKeysOf, type RowKeys } from '../keys.js';
import type { DeviceKeyRow } from '../storage/types.js';
import { deviceAes } from './aes.js';
import { DeviceCipher, openFrames, type OpenedFrame } from './device-cipher.js';
import { clampRx } from './time.js';
import { REASONS, type DeviceResult, type IngestContext, type UplinkFrame } from './types.js';
import type { Candidate, DeviceWork } from './work.js';

/** A request with its frames opened: nothing of it is stored yet. */
export interface OpenedRequest {
  /** Per registered serial named by the request. */
  work: Map<string, DeviceWork>;
  /** Per device entry: rejections so far and in-request duplicates (ack and accepted come later). */
  results: DeviceResult[];
  candidates: Candidate[];
  /** Counters reused with different content within the request. */
  reused: { serial: string; counter: number }[];
  /** Rows whose keys were derived just now (imported without the private key): to be stored. */
  newlyWrapped: { serial: string; keysWrapped: Uint8Array }[];
}

/** Opens every frame of the request's entries against the key rows of its registered serials. */
export function openRequest(rows: DeviceKeyRow[], entries: ParsedEntry[], ctx: IngestContext, plans?: Map<string, KeyPlan>): OpenedRequest {
  const work = new Map<string, DeviceWork>();
  const newlyWrapped: { serial: string; keysWrapped: Uint8Array }[] = [];
  let active: DeviceKeyRow[] = rows;
  for (const row of rows) {
    if (row.status !== 'active') {
      active = rows.filter((r) => r.status === 'active');
      break;
    }
  }
  // Slots are the active rows' indices in `keys`; revoked rows get none.
  // Key renewal: a device with epoch rows is opened first under the key it is on (server/renewal.ts).
  const keyRows = plans && plans.size > 0 ? active.map((r) => plans.get(r.serial)?.primary.row ?? r) : active;
  const keys = active.length > 0 ? ctx.keyring.keysFor(keyRows) : emptyRowKeys(0);
  const bySlot: DeviceWork[] = new Array(active.length);
  let slot = 0;
  for (const row of rows) {
    const w: DeviceWork = { row, slot: -1, cipher: undefined, verified: false, problem: undefined, authenticated: false };
    const plan = plans?.get(row.serial);
    if (plan) w.plan = plan;
    work.set(row.serial, w);
    if (row.status !== 'active') {
      w.problem = REASONS.revoked;
      ctx.keyring.forget(row.serial);
      continue;
    }
    const i = slot++;
    bySlot[i] = w;
    if (keys.state[i] === KEYS_NONE) {
      keyProblem(w, keys.problems.get(i)!, ctx);
      continue;
    }
    w.slot = i;
    w.verified = keys.state[i] === KEYS_VERIFIED;
    // A row imported without the private key: derived just now, stored so it is never derived again.
    const wrapped = keys.wrapped.get(i);
    if (wrapped) newlyWrapped.push({ serial: row.serial, keysWrapped: wrapped });
  }
  const results: DeviceResult[] = new Array(entries.length);
  for (let e = 0; e < entries.length; e++) results[e] = { serial: entries[e]!.serial, ack: null, accepted: 0, duplicates: 0, rejected: [] };
  let second = false;
  if (plans) for (const p of plans.values()) if ((second = p.other !== undefined)) break;
  const { candidates, reused } = openEntries(entries, work, bySlot, results, keys, ctx, second);
  keys.sealKeys.fill(0);
  keys.nonceSalts.fill(0);
  return { work, results, candidates, reused, newlyWrapped };
}

/** Whether `now` (a row locked later) opens frames exactly as `before` did: same status, frame size, key id, enc and wrapped keys. */
export function sameKeyRow(before: DeviceKeyRow, now: DeviceKeyRow): boolean {
  const wrapped = before.keysWrapped === null || now.keysWrapped === null ? before.keysWrapped === now.keysWrapped : equalBytes(before.keysWrapped, now.keysWrapped);
  return wrapped && before.status === now.status && before.frameSize === now.frameSize && before.ingestKeyId === now.ingestKeyId && equalBytes(before.enc, now.enc);
}

/** The device's keys are unusable: its frames are rejected with the reason, and the operator told. */
function keyProblem(w: DeviceWork, reason: string, ctx: IngestContext): void {
  w.problem = reason;
  w.slot = -1;
  w.cipher = undefined;
  ctx.onKeyProblem?.(w.row.serial, w.row.ingestKeyId, reason);
}

/** What opening the frames produced, besides each entry's rejections and duplicates in `results`. */
interface Opened {
  candidates: Candidate[];
  /** Frames whose counter was reused with different content within the request. */
  reused: { serial: string; counter: number }[];
}

/** One device entry of the request: its frames and their decoded bytes (undefined: not base64). */
export interface ParsedEntry {
  serial: string;
  frames: UplinkFrame[];
  bytes: (Uint8Array | undefined)[];
}

/**
 * Checks every frame without a key, opens all the rest in one batch (frames
 * grouped by device), settles each device's trust in its keys, then takes
 * the frames in request order; rejections and in-request duplicates go into
 * `results`.
 */
function openEntries(entries: ParsedEntry[], work: Map<string, DeviceWork>, bySlot: DeviceWork[], results: DeviceResult[], keys: RowKeys, ctx: IngestContext, second: boolean): Opened {
  const out: Opened = { candidates: [], reused: [] };
  // Frames that pass the keyless checks, in request order: entry, index, device.
  const entryOf: number[] = [];
  const indexOf: number[] = [];
  const workOf: DeviceWork[] = [];
  const perSlot = new Uint32Array(keys.state.length + 1);
  for (let e = 0; e < entries.length; e++) {
    const entry = entries[e]!;
    const w = work.get(entry.serial);
    for (let index = 0; index < entry.bytes.length; index++) {
      const reason = w ? keylessCheck(w, entry.bytes[index]) : REASONS.unknownSerial;
      if (reason !== undefined) {
        results[e]!.rejected.push({ index, reason });
        continue;
      }
      entryOf.push(e);
      indexOf.push(index);
      workOf.push(w!);
      perSlot[w!.slot + 1]!++;
    }
  }
  const n = workOf.length;
  if (n === 0) return out;
  // Grouped by slot (a counting sort that keeps request order within a device).
  for (let s = 1; s < perSlot.length; s++) perSlot[s]! += perSlot[s - 1]!;
  const at = new Uint32Array(n);
  const frames: Uint8Array[] = new Array(n);
  const slots = new Uint32Array(n);
  for (let f = 0; f < n; f++) {
    const w = workOf[f]!;
    const p = perSlot[w.slot]!++;
    at[f] = p;
    frames[p] = entries[entryOf[f]!]!.bytes[indexOf[f]!]!;
    slots[p] = w.slot;
  }
  const aes = ctx.aes ?? deviceAes().aes;
  const opened = openFrames(aes, keys, frames, slots);
  // Keys unwrapped without their tag check: confirmed once a frame authenticated under them, before anything
  // of it is used; when none did, the budgeted audit may check them. Keys whose blob fails either way
  // authenticate nothing: every frame of the device gets REASON_UNWRAP.
  for (let p = 0; p < n; ) {
    const s = slots[p]!;
    let end = p;
    let any = false;
    for (; end < n && slots[end] === s; end++) if (opened[end]) any = true;
    const w = bySlot[s]!;
    if (keys.state[s] === KEYS_UNVERIFIED) {
      const keyRow = w.plan?.primary.row ?? w.row;
      const broken = any ? !ctx.keyring.confirm(keyRow, rowKeysOf(keys, s)) : ctx.keyring.auditFails(keyRow, keys, s);
      if (broken) {
        for (let q = p; q < end; q++) {
          opened[q]?.plaintext.fill(0);
          opened[q] = undefined;
        }
        keyProblem(w, REASON_UNWRAP, ctx);
      } else {
        w.verified = any;
      }
    }
    if (any && w.problem === undefined) w.cipher = new DeviceCipher(rowKeysOf(keys, s), aes);
    p = end;
  }
  const other = second ? openUnderOther(frames, slots, opened, bySlot, ctx, aes) : undefined;
  for (let f = 0; f < n; f++) {
    const w = workOf[f]!;
    const o = opened[at[f]!];
    const e = entryOf[f]!;
    const index = indexOf[f]!;
    const epoch = w.plan ? (other?.has(at[f]!) ? w.plan.other!.epoch : w.plan.primary.epoch) : 0;
    const reason = o ? accept(w, e, index, entries[e]!, o, results[e]!, out, ctx, epoch) : (w.problem ?? REASONS.authentication);
    if (reason !== undefined) results[e]!.rejected.push({ index, reason });
  }
  return out;
}

/**
 * Key renewal's second key (server/renewal.ts): the frames that failed under a
 * device's first key, tried under its other one (pending renewal, or the key
 * before its current one), so no frame is tried under more than two keys.
 * Fills `opened` in place; returns the positions opened so.
 */
function openUnderOther(frames: Uint8Array[], slots: Uint32Array, opened: (OpenedFrame | undefined)[], bySlot: DeviceWork[], ctx: IngestContext, aes: ReturnType<typeof deviceAes>['aes']): Set<number> | undefined {
  let positions: number[] | undefined;
  const devices: DeviceWork[] = [];
  const slots2: number[] = [];
  for (let p = 0; p < frames.length; p++) {
    const w = bySlot[slots[p]!]!;
    if (opened[p] || !w.plan?.other || (w.problem !== undefined && w.problem !== REASON_UNWRAP)) continue;
    if (devices[devices.length - 1] !== w) devices.push(w);
    (positions ??= []).push(p);
    slots2.push(devices.length - 1);
  }
  if (!positions) return undefined;
  const keys = ctx.keyring.keysFor(devices.map((w) => w.plan!.other!.row));
  const done = new Set<number>();
  try {
    const usable = positions.filter((_, q) => keys.state[slots2[q]!] !== KEYS_NONE);
    const usableSlots = slots2.filter((s) => keys.state[s] !== KEYS_NONE);
    const result = openFrames(aes, keys, usable.map((p) => frames[p]!), usableSlots);
    const trusted = new Map<number, boolean>();
    for (let q = 0; q < usable.length; q++) {
      const o = result[q];
      if (!o) continue;
      const s = usableSlots[q]!;
      let ok = trusted.get(s);
      if (ok === undefined) {
        ok = keys.state[s] === KEYS_VERIFIED || ctx.keyring.confirm(devices[s]!.plan!.other!.row, rowKeysOf(keys, s));
        trusted.set(s, ok);
      }
      if (!ok) {
        o.plaintext.fill(0);
        continue;
      }
      opened[usable[q]!] = o;
      done.add(usable[q]!);
    }
  } finally {
    keys.sealKeys.fill(0);
    keys.nonceSalts.fill(0);
  }
  return done;
}

/** The reason a frame is rejected before any key is used, or undefined. */
function keylessCheck(w: DeviceWork, bytes: Uint8Array | undefined): string | undefined {
  if (w.problem !== undefined || w.slot < 0) return w.problem ?? REASONS.revoked;
  if (!bytes) return REASONS.badBase64;
  if (bytes.length !== w.row.frameSize) return REASONS.frameSize(w.row.frameSize, bytes.length);
  if ((bytes[0]! | bytes[1]! | bytes[2]! | bytes[3]!) === 0) return REASONS.counterZero;
  return undefined;
}

/** An authenticated frame: undefined when it became a candidate or an in-request duplicate, else the rejection's reason. */
function accept(w: DeviceWork, entry: number, index: number, e: ParsedEntry, o: OpenedFrame, result: DeviceResult, out: Opened, ctx: IngestContext, keyEpoch: number): string | undefined {
  const bytes = e.bytes[index]!;
  const frame = e.frames[index]!;
  const { counter, plaintext } = o;
  // Under the key before the current one, only counters below c_e: above it that key is an old-key holder's.
  const plan = w.plan;
  if (plan?.other?.role === 'previous' && keyEpoch === plan.other.epoch && plan.commitCounter !== null && counter >= plan.commitCounter) {
    plaintext.fill(0);
    return REASONS.authentication;
  }
  w.authenticated = true;
  const seen = (w.seen ??= new Map());
  const earlier = seen.get(counter);
  if (earlier) {
    if (equalBytes(earlier.bytes, bytes)) {
      result.duplicates++;
      return undefined;
    }
    out.reused.push({ serial: w.row.serial, counter });
    return REASONS.reused;
  }
  let decoded: Decoded | undefined;
  let content: string;
  try {
    decoded = decodePlaintext(plaintext);
    content = JSON.stringify(decoded);
  } catch (err) {
    // Authentic but not understood: stored undecoded so the device's outbox still drains.
    content = JSON.stringify({ type: 'malformed', code: plaintext[0], error: (err as Error).message });
  }
  // A REKEY part (docs/protocol.md section 12.3): its bytes are public (epoch, enc) and kept for reassembly.
  const part = decoded?.type === 'unknown' ? rekeyPart(plaintext) : undefined;
  if (part) content = rekeyContent(part.index, part.bytes, keyEpoch);
  const c: Candidate = {
    entry,
    index,
    serial: w.row.serial,
    counter,
    bytes,
    decoded,
    typeCode: plaintext[0]!,
    content,
    rx: frame.rx,
    ...clampRx(frame.rx, ctx.now, ctx.maxRelayDelay),
    keyEpoch,
  };
  seen.set(counter, c);
  out.candidates.push(c);
  return undefined;
}
