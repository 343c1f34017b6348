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

export interface Outbox {
  readonly capacity: number;
  readonly frameSize: number;
  /** The ring: slot i occupies ring[i * frameSize ..]. */
  readonly ring: Uint8Array;
  count(): number;
  /** Ring offset of the i-th oldest frame. */
  offsetOf(i: number): number;
  counterAt(i: number): number;
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
  /** Lost frames not yet reported: 0 when none. */
  gapFirst(): number;
  gapCount(): number;
  clearGap(): void;
  /** Frames dropped since start-up. */
  dropped(): number;
}

export function createOutbox(capacity: number, frameSize: number): Outbox {
  if (!(capacity >= 2)) throw new Error('outbox capacity expected at least 2 frames, got ' + capacity);
  const ring = new Uint8Array(capacity * frameSize);
  // Counters go in and out through a DataView: one native call instead of a
  // JS helper's four shifted byte accesses, on every frame (docs/firmware.md,
  // "DataView for counters").
  const view = new DataView(ring.buffer);
  const reportFirst = new Uint32Array(capacity);
  let head = 0;
  let n = 0;
  let lostFirst = 0;
  let lostLast = 0;
  let droppedTotal = 0;

  function slot(i: number): number {
    const s = head + i;
    return s >= capacity ? s - capacity : s;
  }

  function dropOldest(): void {
    const c = view.getUint32(head * frameSize);
    const covered = reportFirst[head]!;
    if (lostFirst === 0) lostFirst = c;
    if (covered !== 0 && covered < lostFirst) lostFirst = covered;
    lostLast = c;
    head = head + 1 === capacity ? 0 : head + 1;
    n--;
    droppedTotal++;
  }

  return {
    capacity: capacity,
    frameSize: frameSize,
    ring: ring,
    count: function (): number {
      return n;
    },
    offsetOf: function (i: number): number {
      return slot(i) * frameSize;
    },
    counterAt: function (i: number): number {
      return view.getUint32(slot(i) * frameSize);
    },
    push: function (counter: number, gapFirst: number): number {
      if (n === capacity) dropOldest();
      const s = slot(n);
      reportFirst[s] = gapFirst;
      n++;
      const at = s * frameSize;
      view.setUint32(at, counter);
      return at;
    },
    makeRoom: function (): void {
      if (n === capacity) dropOldest();
    },
    ack: function (ackN: number): number {
      let freed = 0;
      while (n > 0 && view.getUint32(head * frameSize) <= ackN) {
        head = head + 1 === capacity ? 0 : head + 1;
        n--;
        freed++;
      }
      if (lostFirst !== 0 && lostLast <= ackN) {
        lostFirst = 0;
        lostLast = 0;
      }
      return freed;
    },
    gapFirst: function (): number {
      return lostFirst;
    },
    gapCount: function (): number {
      return lostFirst === 0 ? 0 : lostLast - lostFirst + 1;
    },
    clearGap: function (): void {
      lostFirst = 0;
      lostLast = 0;
    },
    dropped: function (): number {
      return droppedTotal;
    },
  };
}
