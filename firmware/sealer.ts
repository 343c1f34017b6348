// Seals frames and checks acknowledgements on the device (design brief,
// "Frames" and "Delivery"). Byte layout: docs/protocol.md. The nonce and tag
// buffers are allocated once; a seal allocates only the frame it returns,
// which the outbox keeps until it is acknowledged.
import { ACK_LEN, COUNTER_LEN, DOMAIN_ACK, DOMAIN_UPLINK, FRAME_OVERHEAD, NONCE_LEN, NONCE_SALT_LEN, TAG_LEN } from '../protocol/constants.js';
import type { Ccm } from '../hal/types.js';

export interface SealerOptions {
  ccm: Ccm;
  nonceSalt: Uint8Array;
  frameSize: number;
}

export interface Sealer {
  /** Plaintext bytes per frame (F - 12). */
  plaintextSize: number;
  /** Seals `plaintext` (exactly plaintextSize bytes) under `counter` into a new frame. */
  seal(counter: number, plaintext: Uint8Array): Uint8Array;
  /** Seals into out[at .. at + frameSize) without allocating (the outbox's ring). */
  sealInto(counter: number, plaintext: Uint8Array, out: Uint8Array, at: number): void;
  /** True when `ack` is 12 bytes whose tag proves the server stored frames 1..N. */
  ackValid(ack: Uint8Array): boolean;
}

const EMPTY = new Uint8Array(0);

function putCounter(buf: Uint8Array, at: number, counter: number): void {
  buf[at] = (counter >>> 24) & 255;
  buf[at + 1] = (counter >>> 16) & 255;
  buf[at + 2] = (counter >>> 8) & 255;
  buf[at + 3] = counter & 255;
}

export function createSealer(opts: SealerOptions): Sealer {
  const ccm = opts.ccm;
  const frameSize = opts.frameSize;
  const ptSize = frameSize - FRAME_OVERHEAD;
  if (opts.nonceSalt.length !== NONCE_SALT_LEN) throw new Error('nonce salt expected 8 bytes, got ' + opts.nonceSalt.length);
  if (!(ptSize >= 1 && frameSize <= 244)) throw new Error('frame size expected 13..244, got ' + frameSize);
  const nonce = new Uint8Array(NONCE_LEN);
  nonce.set(opts.nonceSalt);
  const tag = new Uint8Array(TAG_LEN);

  function sealInto(counter: number, plaintext: Uint8Array, out: Uint8Array, at: number): void {
    if (!(counter >= 1 && counter <= 0xffffffff)) throw new Error('counter expected 1..4294967295, got ' + counter);
    if (plaintext.length !== ptSize) throw new Error('plaintext expected ' + ptSize + ' bytes, got ' + plaintext.length);
    putCounter(out, at, counter);
    putCounter(nonce, NONCE_SALT_LEN, counter);
    nonce[12] = DOMAIN_UPLINK;
    ccm.seal(nonce, plaintext, out, at + COUNTER_LEN);
  }

  return {
    plaintextSize: ptSize,
    seal: function (counter: number, plaintext: Uint8Array): Uint8Array {
      const frame = new Uint8Array(frameSize);
      sealInto(counter, plaintext, frame, 0);
      return frame;
    },
    sealInto: sealInto,
    ackValid: function (ack: Uint8Array): boolean {
      if (!ack || ack.length !== ACK_LEN) return false;
      if ((ack[0]! | ack[1]! | ack[2]! | ack[3]!) === 0) return false;
      nonce.set(ack.subarray(0, COUNTER_LEN), NONCE_SALT_LEN);
      nonce[12] = DOMAIN_ACK;
      ccm.seal(nonce, EMPTY, tag, 0);
      let diff = 0;
      for (let i = 0; i < TAG_LEN; i++) diff |= tag[i]! ^ ack[COUNTER_LEN + i]!;
      return diff === 0;
    },
  };
}

/** N of an acknowledgement; only meaningful once ackValid(ack) is true. */
export function ackCounter(ack: Uint8Array): number {
  return ((ack[0]! << 24) | (ack[1]! << 16) | (ack[2]! << 8) | ack[3]!) >>> 0;
}
