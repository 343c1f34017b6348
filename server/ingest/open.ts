// Opening a request's frames (docs/protocol.md section 5; docs/server.md,
// "Ingest"), before any transaction: each registered device's keys from its
// key row (server/keys.ts: cached, or all rows unwrapped in one AES call and
// confirmed once a frame authenticates, never derived twice), then the checks that need no
// key (canonical padded base64, protocol/base64.ts, done by uplink.ts; the device's frame size; counter
// != 0), then all of a device's frames opened together on one cipher
// (device-cipher.ts), and per frame in request order an in-request replay
// check and decodePlaintext. Anything wrong with one frame rejects that
// frame with a reason.
import { decodePlaintext, equalBytes, readU32BE, type Decoded } from '../../protocol/index.js';
import { REASON_UNWRAP } from '../keys.js';
import type { DeviceKeyRow } from '../storage/types.js';
import { DeviceCipher, type OpenedFrame } from './device-cipher.js';
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
export function openRequest(rows: DeviceKeyRow[], entries: ParsedEntry[], ctx: IngestContext): OpenedRequest {
  const work = new Map<string, DeviceWork>();
  const newlyWrapped: { serial: string; keysWrapped: Uint8Array }[] = [];
  const active = rows.filter((row) => row.status === 'active');
  const lookups = ctx.keyring.keysFor(active);
  const lookup = new Map(active.map((row, i) => [row, lookups[i]!]));
  for (const row of rows) {
    const w: DeviceWork = { row, cipher: undefined, keys: undefined, verified: false, problem: undefined, authenticated: false };
    work.set(row.serial, w);
    const got = lookup.get(row);
    if (!got) {
      w.problem = REASONS.revoked;
      ctx.keyring.forget(row.serial);
    } else if (got.problem !== undefined) {
      keyProblem(w, got.problem, ctx);
    } else {
      w.keys = got.keys;
      w.verified = got.verified;
      w.cipher = new DeviceCipher(got.keys);
      // A row imported without the private key: derived just now, stored so it is never derived again.
      if (got.wrapped) newlyWrapped.push({ serial: row.serial, keysWrapped: got.wrapped });
    }
  }
  const results: DeviceResult[] = entries.map((e) => ({ serial: e.serial, ack: null, accepted: 0, duplicates: 0, rejected: [] }));
  const { candidates, reused } = openEntries(entries, work, results, ctx);
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
  w.cipher = undefined;
  w.keys = undefined;
  ctx.onKeyProblem?.(w.row.serial, w.row.ingestKeyId, reason);
}

/**
 * Opens a device's frames. Keys unwrapped without their tag check are
 * confirmed once a frame authenticates under them, before anything of it is
 * used; when none does, the budgeted audit may check them. Keys whose blob
 * fails either way authenticate nothing: every frame gets REASON_UNWRAP.
 */
function openDevice(w: DeviceWork, frames: Uint8Array[], ctx: IngestContext): (OpenedFrame | undefined)[] {
  const got = w.cipher!.openFrames(frames, w.row.frameSize);
  if (w.verified) return got;
  const any = got.some((o) => o !== undefined);
  const broken = any ? !ctx.keyring.confirm(w.row, w.keys!) : ctx.keyring.auditFails(w.row, w.keys!);
  if (!broken) {
    w.verified = any;
    return got;
  }
  for (const o of got) o?.plaintext.fill(0);
  keyProblem(w, REASON_UNWRAP, ctx);
  return got.map(() => undefined);
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

/** A frame that passed the checks without a key, waiting for its device's cipher. */
interface ToOpen {
  w: DeviceWork;
  entry: number;
  index: number;
  bytes: Uint8Array;
}

/** Checks every frame, then opens each device's frames together; rejections and in-request duplicates go into `results`. */
function openEntries(entries: ParsedEntry[], work: Map<string, DeviceWork>, results: DeviceResult[], ctx: IngestContext): Opened {
  const toOpen: ToOpen[] = [];
  const perDevice = new Map<DeviceWork, Uint8Array[]>();
  entries.forEach((e, entry) => {
    const w = work.get(e.serial);
    e.bytes.forEach((bytes, index) => {
      const reason = w ? keylessCheck(w, bytes) : REASONS.unknownSerial;
      if (reason !== undefined) return void results[entry]!.rejected.push({ index, reason });
      toOpen.push({ w: w!, entry, index, bytes: bytes! });
      const list = perDevice.get(w!);
      if (list) list.push(bytes!);
      else perDevice.set(w!, [bytes!]);
    });
  });
  const opened = new Map<DeviceWork, (OpenedFrame | undefined)[]>();
  for (const [w, frames] of perDevice) opened.set(w, openDevice(w, frames, ctx));

  const out: Opened = { candidates: [], reused: [] };
  const next = new Map<DeviceWork, number>();
  for (const f of toOpen) {
    const i = next.get(f.w) ?? 0;
    next.set(f.w, i + 1);
    const o = opened.get(f.w)![i];
    const reason = o ? accept(f, o, entries[f.entry]!.frames[f.index]!, results[f.entry]!, out, ctx) : (f.w.problem ?? REASONS.authentication);
    if (reason !== undefined) results[f.entry]!.rejected.push({ index: f.index, reason });
  }
  return out;
}

/** The reason a frame is rejected before any key is used, or undefined. */
function keylessCheck(w: DeviceWork, bytes: Uint8Array | undefined): string | undefined {
  if (w.problem !== undefined || !w.cipher) return w.problem ?? REASONS.revoked;
  if (!bytes) return REASONS.badBase64;
  if (bytes.length !== w.row.frameSize) return REASONS.frameSize(w.row.frameSize, bytes.length);
  if (readU32BE(bytes, 0) === 0) return REASONS.counterZero;
  return undefined;
}

/** An authenticated frame: undefined when it became a candidate or an in-request duplicate, else the rejection's reason. */
function accept(f: ToOpen, o: OpenedFrame, frame: UplinkFrame, result: DeviceResult, out: Opened, ctx: IngestContext): string | undefined {
  const { w, bytes } = f;
  const { counter, plaintext } = o;
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
  } catch (e) {
    // Authentic but not understood: stored undecoded so the device's outbox still drains.
    content = JSON.stringify({ type: 'malformed', code: plaintext[0], error: (e as Error).message });
  }
  const c: Candidate = {
    entry: f.entry,
    index: f.index,
    serial: w.row.serial,
    counter,
    bytes,
    decoded,
    typeCode: plaintext[0]!,
    content,
    rx: frame.rx,
    ...clampRx(frame.rx, ctx.now, ctx.maxRelayDelay),
  };
  seen.set(counter, c);
  out.candidates.push(c);
  return undefined;
}
