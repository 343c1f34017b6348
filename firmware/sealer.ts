// Seals frames and checks acknowledgements on the device (design brief,
// "Frames" and "Delivery"). Byte layout: docs/protocol.md. The nonce and tag
// buffers are allocated once and frames are sealed in place in the outbox's
// ring, so a seal allocates nothing.
import { ACK_LEN, COUNTER_LEN, DOMAIN_ACK, DOMAIN_UPLINK, FRAME_OVERHEAD, NONCE_LEN, NONCE_SALT_LEN, TAG_LEN } from '../protocol/constants.js';
import type { Ccm } from '../hal/types.js';
import { get32 } from '../protocol/be.js';

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

const EMPTY = new Uint8Array(0);

export function createSealer(opts: SealerOptions): Sealer {
  const ccm = opts.ccm;
  const frameSize = opts.frameSize;
  const ptSize = frameSize - FRAME_OVERHEAD;
  if (opts.nonceSalt.length !== NONCE_SALT_LEN) throw new Error('nonce salt expected 8 bytes, got ' + opts.nonceSalt.length);
  if (!(ptSize >= 1 && frameSize <= 244)) throw new Error('frame size expected 13..244, got ' + frameSize);
  // One native call per counter write: on the interpreter a DataView store
  // costs about half of four byte stores with shifts (measured, Linux build).
  const nonce = new Uint8Array(NONCE_LEN);
  nonce.set(opts.nonceSalt);
  nonce[12] = DOMAIN_UPLINK;
  const nonceView = new DataView(nonce.buffer);
  // The ring is bound here, not passed per call: comparing typed arrays with
  // === costs about 120k instructions on the interpreter (it compares
  // contents), more than the native CCM call itself (measured, Linux build).
  const ring = opts.ring;
  const ringView = new DataView(ring.buffer, ring.byteOffset, ring.length);
  const frame = ccm.framer ? ccm.framer(opts.nonceSalt, ptSize, ring, DOMAIN_UPLINK) : undefined;
  const expected = new Uint8Array(ACK_LEN);
  const ackTag = ccm.framer ? ccm.framer(opts.nonceSalt, 0, expected, DOMAIN_ACK) : undefined;

  // The checks are written out, not a helper: a JS call costs about 15k
  // instructions on the interpreter, 6% of a native-ccm seal.
  function sealInto(counter: number, plaintext: Uint8Array, at: number): void {
    if (!(counter >= 1 && counter <= 0xffffffff)) throw new Error('counter expected 1..4294967295, got ' + counter);
    if (plaintext.length !== ptSize) throw new Error('plaintext expected ' + ptSize + ' bytes, got ' + plaintext.length);
    if (frame) {
      frame(counter, plaintext, at);
      return;
    }
    ringView.setUint32(at, counter);
    nonceView.setUint32(8, counter);
    ccm.seal(nonce, plaintext, ring, at + COUNTER_LEN);
  }

  return {
    sealInto: sealInto,
    ackValid: function (ack: Uint8Array): boolean {
      if (!ack || ack.length !== ACK_LEN) return false;
      if ((ack[0]! | ack[1]! | ack[2]! | ack[3]!) === 0) return false;
      if (ackTag) {
        ackTag(ackCounter(ack), EMPTY, 0);
        expected.set(expected.subarray(COUNTER_LEN), 0);
      } else {
        nonce.set(ack.subarray(0, COUNTER_LEN), NONCE_SALT_LEN);
        nonce[12] = DOMAIN_ACK;
        ccm.seal(nonce, EMPTY, expected, 0);
        nonce[12] = DOMAIN_UPLINK;
      }
      let diff = 0;
      for (let i = 0; i < TAG_LEN; i++) diff |= expected[i]! ^ ack[COUNTER_LEN + i]!;
      return diff === 0;
    },
  };
}

/** N of an acknowledgement; only meaningful once ackValid(ack) is true. */
export function ackCounter(ack: Uint8Array): number {
  return get32(ack, 0);
}
