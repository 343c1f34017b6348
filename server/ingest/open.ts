// Opening a request's frames (docs/protocol.md section 5; docs/server.md,
// "Ingest"): each registered device's keys from its row (server/keys.ts:
// cached, or unwrapped, never derived twice), then per frame the checks that
// need no key (strict base64, done by uplink.ts; the device's frame size;
// counter != 0), openFrame, an in-request replay check and decodePlaintext.
// Anything wrong with one frame rejects that frame with a reason.
import { AuthenticationError, decodePlaintext, equalBytes, openFrame, readU32BE, type Decoded, type DeviceKeys } from '../../protocol/index.js';
import { DeviceKeyError } from '../keys.js';
import type { DeviceRow } from '../storage/types.js';
import { clampRx } from './time.js';
import { REASONS, type DeviceResult, type IngestContext, type UplinkFrame } from './types.js';
import type { Candidate, DeviceWork } from './work.js';

/** The device's keys, or the reason its frames are rejected; `wrapped` when they were derived just now. */
export function deviceWork(row: DeviceRow, ctx: IngestContext): { work: DeviceWork; wrapped?: Uint8Array } {
  const w: DeviceWork = { row: { ...row }, keys: undefined, problem: undefined, seen: new Map(), fresh: [], authenticated: false };
  if (row.status !== 'active') {
    w.problem = REASONS.revoked;
    ctx.keyring.forget(row.serial);
    return { work: w };
  }
  try {
    const got = ctx.keyring.deviceKeys(row);
    w.keys = got.keys;
    return got.wrapped ? { work: w, wrapped: got.wrapped } : { work: w };
  } catch (e) {
    if (!(e instanceof DeviceKeyError)) throw e;
    w.problem = e.message;
    ctx.onKeyProblem?.(row.serial, row.ingestKeyId, e.message);
    return { work: w };
  }
}

/** What opening a request's frames produced, besides each entry's rejections and duplicates in `results`. */
export interface Opened {
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

/** Opens every frame of the request's entries; rejections and in-request duplicates go into `results`. */
export function openEntries(entries: ParsedEntry[], work: Map<string, DeviceWork>, results: DeviceResult[], ctx: IngestContext): Opened {
  const out: Opened = { candidates: [], reused: [] };
  entries.forEach((e, entry) => {
    const w = work.get(e.serial);
    e.frames.forEach((frame, index) => {
      const reason = w ? openOne(w, entry, index, frame, e.bytes[index], results[entry]!, out, ctx) : REASONS.unknownSerial;
      if (reason !== undefined) results[entry]!.rejected.push({ index, reason });
    });
  });
  return out;
}

/** One frame of a registered device: undefined when it became a candidate or an in-request duplicate, else the rejection's reason. */
function openOne(
  w: DeviceWork,
  entry: number,
  index: number,
  frame: UplinkFrame,
  bytes: Uint8Array | undefined,
  result: DeviceResult,
  out: Opened,
  ctx: IngestContext,
): string | undefined {
  if (w.problem !== undefined || !w.keys) return w.problem ?? REASONS.revoked;
  if (!bytes) return REASONS.badBase64;
  if (bytes.length !== w.row.frameSize) return REASONS.frameSize(w.row.frameSize, bytes.length);
  if (readU32BE(bytes, 0) === 0) return REASONS.counterZero;
  const opened = open(w.keys, bytes, w.row.frameSize);
  if (!opened) return REASONS.authentication;
  const { counter, plaintext } = opened;
  w.authenticated = true;
  const earlier = w.seen.get(counter);
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
  };
  w.seen.set(counter, c);
  out.candidates.push(c);
  return undefined;
}

/** openFrame, or undefined when the frame fails authentication. */
function open(keys: DeviceKeys, bytes: Uint8Array, frameSize: number): { counter: number; plaintext: Uint8Array } | undefined {
  // A junk frame fails by two exceptions (OpenSSL's in ccmDecrypt, then AuthenticationError)
  // whose stacks nobody reads; capturing them was about a third of a junk frame's cost
  // (bench/junk-uplink.ts). openFrame's arguments are checked above, so nothing else throws.
  const stackLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return openFrame(keys, bytes, frameSize);
  } catch (e) {
    if (e instanceof AuthenticationError) return undefined;
    throw e;
  } finally {
    Error.stackTraceLimit = stackLimit;
  }
}
