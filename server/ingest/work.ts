// The working state of one uplink request as it passes the ingest steps
// (open.ts, store.ts, settle.ts, time.ts, acks.ts): each opened frame as a
// candidate for storage, and per registered device its key row and cipher.
import type { Decoded } from '../../protocol/index.js';
import type { DeviceKeyRow, TimeSource } from '../storage/types.js';
import type { DeviceCipher } from './device-cipher.js';
import type { KeyPlan } from '../renewal.js';

/** An authenticated frame on its way into storage. */
export interface Candidate {
  /** Position of the device entry in the request, and of the frame in it. */
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
  /** The epoch of the key that opened it (key renewal; 0 for the registry's key). */
  keyEpoch: number;
  // filled in for samples once placed in a boot
  boot?: number;
  uptime?: number;
}

/** One registered device named by the request. */
export interface DeviceWork {
  /** The device's key row as read before the transaction (committed state, no lock). */
  row: DeviceKeyRow;
  /** Its index in the request's RowKeys (keys of active rows), or -1 (revoked). */
  slot: number;
  /** Its CCM, made once a frame authenticated under verified keys: its ack comes from it. */
  cipher: DeviceCipher | undefined;
  /** Its keys are trusted (cached, derived, or the wrapped blob's tag checked): only then may a frame count. */
  verified: boolean;
  /** Why its frames are rejected without opening them (revoked, keys unavailable). */
  problem: string | undefined;
  /** Opened frames by counter, to tell an in-request replay from a reused counter (made on the first). */
  seen?: Map<number, Candidate>;
  /** At least one of its frames authenticated (under verified keys): the request stores and settles it, and it gets an ack. */
  authenticated: boolean;
  /** Key renewal: the keys its frames are tried under when it has epoch rows (server/renewal.ts); else its row's. */
  plan?: KeyPlan;
}

export type Typed<T extends Decoded['type']> = Candidate & { decoded: Extract<Decoded, { type: T }> };

export function isType<T extends Decoded['type']>(c: Candidate, type: T): c is Typed<T> {
  return c.decoded !== undefined && c.decoded.type === type;
}

/**
 * A copy of a fresh candidate for settling to annotate (boot, uptime), field
 * by field with every field present: all copies share one shape, so the
 * per-sample loops of settling read them without going megamorphic (a spread
 * copy, then two fields added, made several shapes per request).
 */
export function settlingCopy(c: Candidate): Candidate {
  return {
    entry: c.entry,
    index: c.index,
    serial: c.serial,
    counter: c.counter,
    bytes: c.bytes,
    decoded: c.decoded,
    typeCode: c.typeCode,
    content: c.content,
    rx: c.rx,
    bound: c.bound,
    source: c.source,
    keyEpoch: c.keyEpoch,
    boot: undefined,
    uptime: undefined,
  };
}
