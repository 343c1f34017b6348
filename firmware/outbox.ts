// The outbox (design brief, "Delivery"): sealed frames wait here, oldest
// first, until an acknowledgement with a valid tag frees them. It is one ring
// buffer of `capacity` frame slots allocated at start-up, so sealing writes
// straight into its slot and nothing is allocated per frame.
//
// When full, the oldest frame is dropped and remembered as lost. Frames are
// dropped strictly oldest first, so everything lost and not yet reported is
// one range [gapFirst, gapLast] that ends right below the oldest frame kept.
// If the dropped frame is itself a gap report, its range joins the pending
// one (the report is lost with it). The device seals a gap report for the
// pending range when a relay connects (docs/protocol.md section 5.1).
import { readU32BE } from '../protocol/wire/be.js';

export interface Outbox {
  readonly capacity: number;
  readonly frameSize: number;
  /** The ring: slot i occupies ring[i * frameSize ..]. */
  readonly ring: Uint8Array;
  // State as plain fields, not accessor methods: on the interpreter every
  // method is a function object kept for good (about 6 variables), a field
  // one or two names (docs/firmware.md, "Memory on the interpreter"). Only
  // push, makeRoom and ack change them, except that the device clears a
  // reported gap by setting gapFirst to 0.
  /** Frames held. */
  count: number;
  /** Slot of the oldest frame; the i-th oldest is in slot (head + i) % capacity. */
  head: number;
  /** Lost frames not yet reported: gapFirst..gapLast, gapFirst 0 when none. */
  gapFirst: number;
  gapLast: number;
  /** Frames dropped since start-up. */
  dropped: number;
  /**
   * Makes room for a new frame (dropping the oldest when full) and returns
   * the ring offset to seal it into. `gapFirst` is the first counter a gap
   * report covers, 0 for any other frame.
   */
  push(counter: number, gapFirst: number): number;
  /** Drops the oldest frame if the outbox is full, so the next push drops nothing. */
  makeRoom(): void;
  /** Frees every frame with counter <= n; returns how many were freed. */
  ack(n: number): number;
}

/** Ring offset of the i-th oldest frame. */
export function offsetOf(box: Outbox, i: number): number {
  return ((box.head + i) % box.capacity) * box.frameSize;
}

/** Counter of the i-th oldest frame (tests and tools; the device reads none back). */
export function counterAt(box: Outbox, i: number): number {
  return readU32BE(box.ring, offsetOf(box, i));
}

/** Lost frames not yet reported. */
export function gapCount(box: Outbox): number {
  return box.gapFirst === 0 ? 0 : box.gapLast - box.gapFirst + 1;
}

export function createOutbox(capacity: number, frameSize: number): Outbox {
  if (!(capacity >= 2)) throw new Error('outbox capacity expected at least 2 frames, got ' + capacity);
  const ring = new Uint8Array(capacity * frameSize);
  // Counters go in and out through a DataView: one native call instead of a
  // JS helper's four shifted byte accesses, on every frame (docs/firmware.md,
  // "DataView for counters").
  const view = new DataView(ring.buffer);
  const reportFirst = new Uint32Array(capacity);

  // Also the outbox's makeRoom: one function object instead of two, each kept
  // for good on the interpreter (docs/firmware.md, "Third pass").
  function dropOldest(): void {
    if (box.count !== capacity) return;
    const c = view.getUint32(box.head * frameSize);
    const covered = reportFirst[box.head]!;
    if (box.gapFirst === 0) box.gapFirst = c;
    if (covered !== 0 && covered < box.gapFirst) box.gapFirst = covered;
    box.gapLast = c;
    box.head = box.head + 1 === capacity ? 0 : box.head + 1;
    box.count--;
    box.dropped++;
  }

  const box: Outbox = {
    capacity: capacity,
    frameSize: frameSize,
    ring: ring,
    count: 0,
    head: 0,
    gapFirst: 0,
    gapLast: 0,
    dropped: 0,
    push: function (counter: number, gapFirst: number): number {
      // Tested here too: a JS call costs the interpreter about 15k instructions per seal.
      if (box.count === capacity) dropOldest();
      let s = box.head + box.count;
      if (s >= capacity) s -= capacity;
      reportFirst[s] = gapFirst;
      box.count++;
      const at = s * frameSize;
      view.setUint32(at, counter);
      return at;
    },
    makeRoom: dropOldest,
    ack: function (ackN: number): number {
      let freed = 0;
      while (box.count > 0 && view.getUint32(box.head * frameSize) <= ackN) {
        box.head = box.head + 1 === capacity ? 0 : box.head + 1;
        box.count--;
        freed++;
      }
      if (box.gapFirst !== 0 && box.gapLast <= ackN) box.gapFirst = 0;
      return freed;
    },
  };
  return box;
}
