// AES-128-CCM of one device (RFC 3610 with M = 8, L = 2, no associated data;
// docs/protocol.md sections 3 to 6) on ONE reusable AES-128-ECB cipher object:
// the request path's frame checks and acks, byte-identical to protocol/frame.ts
// openFrame and protocol/ack.ts makeAck (test/server/ingest/device-cipher.test.ts
// runs both on the vectors, random frames and every flipped byte).
//
// Why: node:crypto cannot re-key or re-nonce a CCM object, so openFrame and
// makeAck each build an OpenSSL cipher context (about 4 us here) for a few
// AES blocks. A junk request naming 100 serials paid two per serial
// (bench/junk-uplink.ts), an honest request of 50 frames 51. Here a device
// costs one context per request: the counter blocks A_i and the B_0 block of
// all its frames go through one AES call, then the CBC-MACs of all its frames
// advance side by side, one call per plaintext block (one for F = 20).
// AES itself stays in OpenSSL (constant time, AES-NI); tags are compared with
// timingSafeEqual; a frame whose tag fails releases no plaintext.
import { createCipheriv, timingSafeEqual, type Cipher } from 'node:crypto';
import { expectCounter } from '../../protocol/bytes.js';
import { ACK_LEN, ArgumentError, COUNTER_LEN, DOMAIN_ACK, DOMAIN_UPLINK, NONCE_SALT_LEN, TAG_LEN, checkDeviceKeys, checkFrameSize, readU32BE, writeU32BE, type DeviceKeys } from '../../protocol/index.js';

const BLOCK = 16;
/** B_0 flags: no associated data, M' = (M - 2) / 2 = 3, L' = L - 1 = 1 (RFC 3610 section 2.2). */
const FLAGS_B0 = (((TAG_LEN - 2) / 2) << 3) | 1;
/** A_i flags: L' = 1 (RFC 3610 section 2.3). */
const FLAGS_A = 1;
const MAX_COUNTER_BLOCKS = 0xffff;

/** An opened frame: its cleartext counter and plaintext. */
export interface OpenedFrame {
  counter: number;
  plaintext: Uint8Array;
}

export class DeviceCipher {
  private readonly ecb: Cipher;
  private readonly salt: Uint8Array;

  constructor(keys: DeviceKeys) {
    checkDeviceKeys(keys);
    this.ecb = createCipheriv('aes-128-ecb', keys.sealKey, null);
    this.ecb.setAutoPadding(false);
    this.salt = keys.nonceSalt;
  }

  /**
   * Opens frames of the device's fixed size F (each exactly F bytes, counter
   * != 0: the caller checked both). Per frame, in order: its counter and
   * plaintext, or undefined when its tag does not verify.
   */
  openFrames(frames: readonly Uint8Array[], frameSize: number): (OpenedFrame | undefined)[] {
    checkFrameSize(frameSize);
    const n = frames.length;
    if (n === 0) return [];
    const m = frameSize - COUNTER_LEN - TAG_LEN;
    const k = Math.ceil(m / BLOCK);
    const per = (k + 2) * BLOCK;
    // One call: per frame B_0, A_0, A_1..A_k, giving X_1 = E(B_0), S_0 and the key stream S_1..S_k.
    const first = Buffer.allocUnsafe(n * per); // every byte is written below
    for (let f = 0; f < n; f++) {
      const frame = frames[f]!;
      if (frame.length !== frameSize) throw new ArgumentError('frame', `expected ${frameSize} bytes (the device's frame size), got ${frame.length}`);
      const at = f * per;
      this.block(first, at, FLAGS_B0, frame, DOMAIN_UPLINK, m);
      for (let i = 0; i <= k; i++) this.block(first, at + (i + 1) * BLOCK, FLAGS_A, frame, DOMAIN_UPLINK, i);
    }
    const out = this.aes(first);
    // Plaintext P = C xor S, then the CBC-MAC chains X_{j+1} = E(X_j xor P_j), all frames per call.
    const plain = Buffer.allocUnsafe(n * k * BLOCK).fill(0); // zero padding of each frame's last block
    const x = Buffer.allocUnsafe(n * BLOCK);
    for (let f = 0; f < n; f++) {
      const frame = frames[f]!;
      const at = f * per;
      for (let i = 0; i < m; i++) plain[f * k * BLOCK + i] = frame[COUNTER_LEN + i]! ^ out[at + 2 * BLOCK + i]!;
      out.copy(x, f * BLOCK, at, at + BLOCK);
    }
    let mac: Buffer = x;
    for (let j = 0; j < k; j++) {
      for (let f = 0; f < n; f++) {
        for (let i = 0; i < BLOCK; i++) mac[f * BLOCK + i]! ^= plain[(f * k + j) * BLOCK + i]!;
      }
      mac = this.aes(mac);
    }
    const result: (OpenedFrame | undefined)[] = new Array(n);
    const expected = Buffer.allocUnsafe(TAG_LEN);
    for (let f = 0; f < n; f++) {
      const frame = frames[f]!;
      const s0 = f * per + BLOCK;
      for (let i = 0; i < TAG_LEN; i++) expected[i] = mac[f * BLOCK + i]! ^ out[s0 + i]!;
      const tag = frame.subarray(frameSize - TAG_LEN);
      const body = plain.subarray(f * k * BLOCK, f * k * BLOCK + m);
      if (timingSafeEqual(expected, tag)) {
        result[f] = { counter: readU32BE(frame, 0), plaintext: new Uint8Array(body) };
      } else {
        body.fill(0);
        result[f] = undefined;
      }
    }
    return result;
  }

  /** The 12-byte ack for N = counter: N (4, BE) || the CCM tag of the empty message under nonce(N, 0x02) (makeAck). */
  ack(counter: number): Uint8Array {
    expectCounter('counter', counter);
    const head = new Uint8Array(COUNTER_LEN);
    writeU32BE(head, 0, counter);
    const blocks = Buffer.allocUnsafe(2 * BLOCK);
    this.block(blocks, 0, FLAGS_B0, head, DOMAIN_ACK, 0);
    this.block(blocks, BLOCK, FLAGS_A, head, DOMAIN_ACK, 0);
    const out = this.aes(blocks);
    const ack = new Uint8Array(ACK_LEN);
    ack.set(head, 0);
    for (let i = 0; i < TAG_LEN; i++) ack[COUNTER_LEN + i] = out[i]! ^ out[BLOCK + i]!;
    return ack;
  }

  /** Writes flags || nonce (salt || counter from `head` || domain) || a 16-bit value (message length or block index). */
  private block(into: Buffer, at: number, flags: number, head: Uint8Array, domain: number, value: number): void {
    if (value > MAX_COUNTER_BLOCKS) throw new ArgumentError('frame', 'longer than CCM with L = 2 allows');
    into[at] = flags;
    into.set(this.salt, at + 1);
    for (let i = 0; i < COUNTER_LEN; i++) into[at + 1 + NONCE_SALT_LEN + i] = head[i]!;
    into[at + 1 + NONCE_SALT_LEN + COUNTER_LEN] = domain;
    into[at + BLOCK - 2] = value >>> 8;
    into[at + BLOCK - 1] = value & 0xff;
  }

  /** AES-128 of whole blocks. ECB without padding keeps no state between calls and returns every block. */
  private aes(blocks: Buffer): Buffer {
    const out = this.ecb.update(blocks);
    if (out.length !== blocks.length) throw new Error(`AES-128-ECB returned ${out.length} bytes for ${blocks.length}`);
    return out;
  }
}
