// Seals frames and checks acknowledgements on the device (design brief,
// "Frames" and "Delivery"). Byte layout: docs/protocol.md. The backend's
// framers lay out nonce and CCM blocks once, and frames are sealed in place
// in the outbox's ring, so a seal allocates nothing.
import { ACK_LEN, COUNTER_LEN, DOMAIN_ACK, DOMAIN_UPLINK, FRAME_OVERHEAD, NONCE_SALT_LEN, TAG_LEN } from '../protocol/wire/constants.js';
import type { Ccm, Framer } from '../hal/types.js';
import { readU32BE } from '../protocol/wire/be.js';

export interface SealerOptions {
  ccm: Ccm;
  nonceSalt: Uint8Array;
  frameSize: number;
  /** Where sealInto writes frames (the outbox's ring). */
  ring: Uint8Array;
}

export interface Sealer {
  /** Seals `plaintext` (exactly F - 12 bytes) under `counter` into ring[at .. at + F), the ring given at creation. */
  sealInto(counter: number, plaintext: Uint8Array, at: number): void;
  /** True when `ack` is 12 bytes whose tag proves the server stored frames 1..N. */
  ackValid(ack: Uint8Array): boolean;
}

export function createSealer(opts: SealerOptions): Sealer {
  const frameSize = opts.frameSize;
  const ptSize = frameSize - FRAME_OVERHEAD;
  if (opts.nonceSalt.length !== NONCE_SALT_LEN) throw new Error('nonce salt expected 8 bytes, got ' + opts.nonceSalt.length);
  if (!(ptSize >= 1 && frameSize <= 244)) throw new Error('frame size expected 13..244, got ' + frameSize);
  // The ring is bound here, not passed per call: comparing typed arrays with
  // === costs about 120k instructions on the interpreter (it compares
  // contents), more than the native CCM call itself (measured, Linux build).
  // An ack is N || tag: the framer for the empty message writes exactly that
  // for the N it is given, to compare with what arrived.
  const expected = new Uint8Array(ACK_LEN);
  // Made by a function of their own, so the closure kept for good holds only
  // the two framers and the buffer, not this scope's options and sizes
  // (about 4 variables on the interpreter, docs/firmware.md "Fifth pass").
  // (Assigned, then returned: terser keeps the annotation on a declaration, not on a return; see
  // rollup.config.mjs, collapse_vars.)
  const sealer = /*@__NOINLINE__*/ sealerOf(opts.ccm.framer(opts.nonceSalt, ptSize, opts.ring, DOMAIN_UPLINK), opts.ccm.framer(opts.nonceSalt, 0, expected, DOMAIN_ACK), expected);
  return sealer;
}

function sealerOf(frame: Framer, ackTag: Framer, expected: Uint8Array): Sealer {
  return {
    // The framer itself, no wrapper: every backend's framer checks the counter (1..2^32-1) and the
    // plaintext length of each frame (hal/ccm.ts, hal/espruino/crypto.ts, hal/espruino/kernel.ts),
    // so a wrapper would only add a JS call per seal (about 15k instructions on the interpreter) and
    // a function the interpreter keeps for good (about 7 variables, docs/firmware.md "Fifth pass").
    sealInto: frame,
    ackValid: function (ack: Uint8Array): boolean {
      if (!ack || ack.length !== ACK_LEN) return false;
      const n = readU32BE(ack, 0);
      if (n === 0) return false;
      // The empty message made per check, not kept: a global costs about 5 variables for good.
      ackTag(n, new Uint8Array(0), 0);
      let diff = 0;
      for (let i = COUNTER_LEN; i < COUNTER_LEN + TAG_LEN; i++) diff |= expected[i]! ^ ack[i]!;
      return diff === 0;
    },
  };
}

/** N of an acknowledgement; only meaningful once ackValid(ack) is true. */
export function ackCounter(ack: Uint8Array): number {
  return readU32BE(ack, 0);
}
