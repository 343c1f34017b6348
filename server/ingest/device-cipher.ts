// AES-128-CCM of many devices at once (RFC 3610 with M = 8, L = 2, no
// associated data; docs/protocol.md sections 3 to 6) on AES-128 under many
// keys (aes.ts): the request path's frame checks and acks, byte-identical to
// protocol/frame.ts openFrame and protocol/ack.ts makeAck
// (test/server/ingest/device-cipher.test.ts runs both on the vectors, random
// frames and every flipped bit, on each AES route).
//
// Why: node:crypto cannot re-key a cipher object, so CCM per device cost an
// OpenSSL context and its calls for a few AES blocks, about 5 us, and a junk
// request naming 100 devices paid it 100 times (bench/junk-uplink.ts). Here a
// whole request's frames take 1 + k AES calls, k = the plaintext blocks of a
// frame (1 for F = 20): the B_0 and counter blocks A_0..A_k of every frame of
// every device in one call, then the CBC-MAC chains of every frame side by
// side, one call per plaintext block. AES stays in OpenSSL (constant time);
// the tag is compared in constant time (every byte, no early exit); a frame
// whose tag fails releases no plaintext, and the scratch holding key streams
// and plaintexts is zeroed before returning.
import { expectCounter } from '../../protocol/bytes.js';
import { ACK_LEN, ArgumentError, COUNTER_LEN, DOMAIN_ACK, DOMAIN_UPLINK, KEY_LEN, NONCE_SALT_LEN, TAG_LEN, checkDeviceKeys, checkFrameSize, type DeviceKeys } from '../../protocol/index.js';
import { deviceAes, type ManyKeyAes } from './aes.js';

const BLOCK = 16;
/** B_0 flags: no associated data, M' = (M - 2) / 2 = 3, L' = L - 1 = 1 (RFC 3610 section 2.2). */
const FLAGS_B0 = (((TAG_LEN - 2) / 2) << 3) | 1;
/** A_i flags: L' = 1 (RFC 3610 section 2.3). */
const FLAGS_A = 1;

/** An opened frame: its cleartext counter and plaintext. */
export interface OpenedFrame {
  counter: number;
  plaintext: Uint8Array;
}

/** Several devices' keys by slot: seal key i at 16i of `sealKeys`, nonce salt i at 8i of `nonceSalts`. */
export interface SlotKeys {
  sealKeys: Uint8Array;
  nonceSalts: Uint8Array;
}

/**
 * Scratch shared by every call: the work is synchronous, so one call never
 * sees another's; grown to the largest request, zeroed after each use.
 */
let scratch = new Uint8Array(64 * 1024);
function scratchOf(bytes: number): Uint8Array {
  if (scratch.length < bytes) scratch = new Uint8Array(Math.max(bytes, 2 * scratch.length));
  return scratch;
}

/** Writes flags || salt of `slot` || counter (the 4 bytes of `head` at `h`) || domain || a 16-bit value (length or block index). */
function block(into: Uint8Array, at: number, flags: number, salts: Uint8Array, slot: number, head: Uint8Array, h: number, domain: number, value: number): void {
  into[at] = flags;
  const s = slot * NONCE_SALT_LEN;
  for (let i = 0; i < NONCE_SALT_LEN; i++) into[at + 1 + i] = salts[s + i]!;
  for (let i = 0; i < COUNTER_LEN; i++) into[at + 1 + NONCE_SALT_LEN + i] = head[h + i]!;
  into[at + 1 + NONCE_SALT_LEN + COUNTER_LEN] = domain;
  into[at + BLOCK - 2] = value >>> 8;
  into[at + BLOCK - 1] = value & 0xff;
}

function checkSlots(keys: SlotKeys): number {
  const n = keys.sealKeys.length / KEY_LEN;
  if (!Number.isInteger(n) || keys.nonceSalts.length !== n * NONCE_SALT_LEN) {
    throw new ArgumentError('keys', `expected 16 bytes of seal key and 8 of nonce salt per device, got ${keys.sealKeys.length} and ${keys.nonceSalts.length}`);
  }
  return n;
}

/**
 * Opens frames of several devices. `frames[i]` belongs to device `slots[i]`;
 * slots must not decrease (a device's frames together); each frame is its
 * device's fixed size F (the caller checked it against the registry, and
 * that its counter is not 0). Per frame, in order: its counter and
 * plaintext, or undefined when its tag does not verify.
 */
export function openFrames(aes: ManyKeyAes, keys: SlotKeys, frames: readonly Uint8Array[], slots: ArrayLike<number>): (OpenedFrame | undefined)[] {
  const devices = checkSlots(keys);
  const n = frames.length;
  if (slots.length !== n) throw new ArgumentError('slots', `expected one per frame (${n}), got ${slots.length}`);
  if (n === 0) return [];
  // Where each frame's blocks go: round 1 (B_0, A_0..A_k), plaintext (k blocks), MAC (1 block).
  const counts = new Uint32Array(devices);
  const blocksOf = new Uint8Array(n); // k per frame: at most 15 (F <= 244)
  let round1 = 0;
  let plainBlocks = 0;
  let rounds = 0;
  let uniform = true;
  let last = 0;
  for (let f = 0; f < n; f++) {
    const slot = slots[f]!;
    if (!(slot >= last && slot < devices && Number.isInteger(slot))) throw new ArgumentError('slots', `expected non-decreasing device slots below ${devices}, got ${slot} after ${last}`);
    last = slot;
    const k = Math.ceil((checkFrameSize(frames[f]!.length) - COUNTER_LEN - TAG_LEN) / BLOCK);
    blocksOf[f] = k;
    counts[slot]! += k + 2;
    round1 += k + 2;
    plainBlocks += k;
    if (f > 0 && k !== blocksOf[0]) uniform = false;
    if (k > rounds) rounds = k;
  }
  const bytes = (round1 + plainBlocks + 2 * n) * BLOCK;
  const s = scratchOf(bytes);
  const first = s.subarray(0, round1 * BLOCK);
  const plain = s.subarray(round1 * BLOCK, (round1 + plainBlocks) * BLOCK);
  const mac = s.subarray((round1 + plainBlocks) * BLOCK, (round1 + plainBlocks + n) * BLOCK);
  const gather = s.subarray((round1 + plainBlocks + n) * BLOCK, bytes);
  const salts = keys.nonceSalts;
  plain.fill(0); // zero padding of each frame's last block
  try {
    // Round 1: per frame B_0, A_0, A_1..A_k, giving X_1 = E(B_0), S_0 and the key stream S_1..S_k.
    for (let f = 0, at = 0; f < n; f++) {
      const frame = frames[f]!;
      const k = blocksOf[f]!;
      const m = frame.length - COUNTER_LEN - TAG_LEN;
      const salt = slots[f]! * NONCE_SALT_LEN;
      for (let i = 0; i <= k + 1; i++, at += BLOCK) {
        first[at] = i === 0 ? FLAGS_B0 : FLAGS_A;
        for (let j = 0; j < NONCE_SALT_LEN; j++) first[at + 1 + j] = salts[salt + j]!;
        first[at + 9] = frame[0]!;
        first[at + 10] = frame[1]!;
        first[at + 11] = frame[2]!;
        first[at + 12] = frame[3]!;
        first[at + 13] = DOMAIN_UPLINK;
        const value = i === 0 ? m : i - 1; // B_0: the message length; A_i: i
        first[at + 14] = value >>> 8;
        first[at + 15] = value & 0xff;
      }
    }
    aes.encrypt(keys.sealKeys, counts, first, first);
    // Plaintext P = C xor S; the MAC chain starts at X_1.
    for (let f = 0, at = 0, p = 0; f < n; f++) {
      const frame = frames[f]!;
      const k = blocksOf[f]!;
      const m = frame.length - COUNTER_LEN - TAG_LEN;
      for (let i = 0; i < m; i++) plain[p + i] = frame[COUNTER_LEN + i]! ^ first[at + 2 * BLOCK + i]!;
      for (let i = 0; i < BLOCK; i++) mac[f * BLOCK + i] = first[at + i]!;
      at += (k + 2) * BLOCK;
      p += k * BLOCK;
    }
    // X_{j+1} = E(X_j xor P_j), for every frame that still has a block j: one call per j. Frames of one
    // size (the usual request) chain in place; mixed sizes gather the frames still going.
    for (let j = 0; j < rounds; j++) {
      if (uniform) {
        for (let f = 0, p = j * BLOCK; f < n; f++, p += rounds * BLOCK) for (let i = 0; i < BLOCK; i++) mac[f * BLOCK + i]! ^= plain[p + i]!;
        if (j === 0) for (let f = 0; f < n; f++) counts[slots[f]!] = 0;
        if (j === 0) for (let f = 0; f < n; f++) counts[slots[f]!]!++;
        aes.encrypt(keys.sealKeys, counts, mac, mac);
        continue;
      }
      counts.fill(0);
      let g = 0;
      for (let f = 0, p = 0; f < n; f++) {
        const k = blocksOf[f]!;
        if (j < k) {
          for (let i = 0; i < BLOCK; i++) gather[g + i] = mac[f * BLOCK + i]! ^ plain[p + j * BLOCK + i]!;
          counts[slots[f]!]!++;
          g += BLOCK;
        }
        p += k * BLOCK;
      }
      const part = gather.subarray(0, g);
      aes.encrypt(keys.sealKeys, counts, part, part);
      g = 0;
      for (let f = 0; f < n; f++) {
        if (j >= blocksOf[f]!) continue;
        for (let i = 0; i < BLOCK; i++) mac[f * BLOCK + i] = gather[g + i]!;
        g += BLOCK;
      }
    }
    // T = X_{k+1} xor S_0, first 8 bytes, against the frame's tag: every byte compared.
    const result: (OpenedFrame | undefined)[] = new Array(n);
    for (let f = 0, at = 0, p = 0; f < n; f++) {
      const frame = frames[f]!;
      const k = blocksOf[f]!;
      const m = frame.length - COUNTER_LEN - TAG_LEN;
      let diff = 0;
      for (let i = 0; i < TAG_LEN; i++) diff |= mac[f * BLOCK + i]! ^ first[at + BLOCK + i]! ^ frame[COUNTER_LEN + m + i]!;
      result[f] = diff === 0 ? { counter: ((frame[0]! << 24) | (frame[1]! << 16) | (frame[2]! << 8) | frame[3]!) >>> 0, plaintext: plain.slice(p, p + m) } : undefined;
      at += (k + 2) * BLOCK;
      p += k * BLOCK;
    }
    return result;
  } finally {
    s.fill(0, 0, bytes);
  }
}

/**
 * The 12-byte acks for device `slots[i]` and N = `counters[i]`: N (4, BE) ||
 * the CCM tag of the empty message under nonce(N, 0x02) (makeAck). Slots must
 * not decrease.
 */
export function makeAcks(aes: ManyKeyAes, keys: SlotKeys, slots: ArrayLike<number>, counters: ArrayLike<number>): Uint8Array[] {
  const devices = checkSlots(keys);
  const n = slots.length;
  if (counters.length !== n) throw new ArgumentError('counters', `expected one per slot (${n}), got ${counters.length}`);
  const counts = new Uint32Array(devices);
  const acks: Uint8Array[] = new Array(n);
  let last = 0;
  for (let i = 0; i < n; i++) {
    const slot = slots[i]!;
    if (!(slot >= last && slot < devices && Number.isInteger(slot))) throw new ArgumentError('slots', `expected non-decreasing device slots below ${devices}, got ${slot} after ${last}`);
    last = slot;
    const counter = expectCounter('counter', counters[i]);
    const ack = new Uint8Array(ACK_LEN);
    ack[0] = counter >>> 24;
    ack[1] = (counter >>> 16) & 0xff;
    ack[2] = (counter >>> 8) & 0xff;
    ack[3] = counter & 0xff;
    acks[i] = ack;
    counts[slot]! += 2;
  }
  const blocks = scratchOf(2 * n * BLOCK).subarray(0, 2 * n * BLOCK);
  try {
    for (let i = 0; i < n; i++) {
      block(blocks, 2 * i * BLOCK, FLAGS_B0, keys.nonceSalts, slots[i]!, acks[i]!, 0, DOMAIN_ACK, 0);
      block(blocks, (2 * i + 1) * BLOCK, FLAGS_A, keys.nonceSalts, slots[i]!, acks[i]!, 0, DOMAIN_ACK, 0);
    }
    aes.encrypt(keys.sealKeys, counts, blocks, blocks);
    for (let i = 0; i < n; i++) for (let t = 0; t < TAG_LEN; t++) acks[i]![COUNTER_LEN + t] = blocks[2 * i * BLOCK + t]! ^ blocks[(2 * i + 1) * BLOCK + t]!;
    return acks;
  } finally {
    blocks.fill(0);
  }
}

/** One device's CCM (frames and acks) on the same code: for callers with one device. */
export class DeviceCipher {
  private readonly keys: SlotKeys;

  constructor(
    keys: DeviceKeys,
    private readonly aes: ManyKeyAes = deviceAes().aes,
  ) {
    checkDeviceKeys(keys);
    this.keys = { sealKeys: new Uint8Array(keys.sealKey), nonceSalts: new Uint8Array(keys.nonceSalt) };
  }

  /** Frames of the device's fixed size F (each exactly F bytes, counter != 0: the caller checked both). */
  openFrames(frames: readonly Uint8Array[], frameSize: number): (OpenedFrame | undefined)[] {
    checkFrameSize(frameSize);
    for (const frame of frames) if (frame.length !== frameSize) throw new ArgumentError('frame', `expected ${frameSize} bytes (the device's frame size), got ${frame.length}`);
    return openFrames(this.aes, this.keys, frames, new Uint8Array(frames.length));
  }

  /** The 12-byte ack for N = counter (makeAck). */
  ack(counter: number): Uint8Array {
    expectCounter('counter', counter);
    return makeAcks(this.aes, this.keys, [0], [counter])[0]!;
  }
}
