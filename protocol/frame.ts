// Frames on the wire (design brief, "Frames"; docs/protocol.md):
//   frame = counter (4, BE) || ciphertext (F - 12) || tag (8)
//   nonce = nonce_salt (8) || counter (4, BE) || domain (1)
import {
  COUNTER_LEN,
  DOMAIN_ACK,
  DOMAIN_UPLINK,
  FRAME_OVERHEAD,
  KEY_LEN,
  MAX_FRAME_SIZE,
  MIN_FRAME_SIZE,
  NONCE_LEN,
  NONCE_SALT_LEN,
  TAG_LEN,
} from './wire/constants.js';
import { expectBytes, expectCounter, expectInteger } from './bytes.js';
import { readU32BE, writeU32BE } from './wire/be.js';
import { ccmDecrypt, ccmEncrypt } from './ccm.js';
import { ArgumentError, AuthenticationError } from './errors.js';

/** The two secrets a device holds; the server re-derives them from the registry's `enc`. */
export interface DeviceKeys {
  sealKey: Uint8Array;
  nonceSalt: Uint8Array;
}

export interface OpenedFrame {
  counter: number;
  plaintext: Uint8Array;
}

export function checkDeviceKeys(keys: DeviceKeys): void {
  if (keys === null || typeof keys !== 'object') {
    throw new ArgumentError('keys', 'expected an object { sealKey, nonceSalt }');
  }
  expectBytes('sealKey', keys.sealKey, KEY_LEN);
  expectBytes('nonceSalt', keys.nonceSalt, NONCE_SALT_LEN);
}

export function checkFrameSize(frameSize: unknown): number {
  return expectInteger('frameSize', frameSize, MIN_FRAME_SIZE, MAX_FRAME_SIZE);
}

/** Plaintext bytes carried by a frame of size F. */
export function plaintextLength(frameSize: number): number {
  return checkFrameSize(frameSize) - FRAME_OVERHEAD;
}

export function buildNonce(nonceSalt: Uint8Array, counter: number, domain: number): Uint8Array {
  expectBytes('nonceSalt', nonceSalt, NONCE_SALT_LEN);
  expectCounter('counter', counter);
  if (domain !== DOMAIN_UPLINK && domain !== DOMAIN_ACK) {
    throw new ArgumentError('domain', `expected 0x01 (uplink) or 0x02 (ack), got ${String(domain)}`);
  }
  const nonce = new Uint8Array(NONCE_LEN);
  nonce.set(nonceSalt, 0);
  writeU32BE(nonce, NONCE_SALT_LEN, counter);
  nonce[NONCE_LEN - 1] = domain;
  return nonce;
}

/**
 * Seals one frame. `plaintext` must already be exactly F - 12 bytes (type byte,
 * encoded readings, zero padding): the frame hides type and length, so padding
 * is the codec's job and a short plaintext is a caller error, not silently padded.
 */
export function sealFrame(keys: DeviceKeys, counter: number, plaintext: Uint8Array, frameSize: number): Uint8Array {
  checkDeviceKeys(keys);
  const ptLen = plaintextLength(frameSize);
  expectCounter('counter', counter);
  expectBytes('plaintext', plaintext);
  if (plaintext.length !== ptLen) {
    throw new ArgumentError(
      'plaintext',
      `expected ${ptLen} bytes for frame size ${frameSize} (F - 12), got ${plaintext.length}; pad with zeros`,
    );
  }
  const { ciphertext, tag } = ccmEncrypt(keys.sealKey, buildNonce(keys.nonceSalt, counter, DOMAIN_UPLINK), plaintext);
  const frame = new Uint8Array(frameSize);
  writeU32BE(frame, 0, counter);
  frame.set(ciphertext, COUNTER_LEN);
  frame.set(tag, frameSize - TAG_LEN);
  return frame;
}

/** The cleartext counter of a frame, for routing and deduplication before opening it. */
export function frameCounter(frame: Uint8Array): number {
  expectBytes('frame', frame);
  if (frame.length < MIN_FRAME_SIZE) {
    throw new ArgumentError('frame', `expected at least ${MIN_FRAME_SIZE} bytes, got ${frame.length}`);
  }
  return expectCounter('frame counter', readU32BE(frame, 0));
}

/**
 * Opens a frame of the device's fixed size. Any authentication failure throws
 * AuthenticationError with one message and returns no plaintext.
 */
export function openFrame(keys: DeviceKeys, frame: Uint8Array, frameSize: number): OpenedFrame {
  checkDeviceKeys(keys);
  checkFrameSize(frameSize);
  expectBytes('frame', frame);
  if (frame.length !== frameSize) {
    throw new ArgumentError('frame', `expected ${frameSize} bytes (the device's frame size), got ${frame.length}`);
  }
  const counter = frameCounter(frame);
  const plaintext = ccmDecrypt(
    keys.sealKey,
    buildNonce(keys.nonceSalt, counter, DOMAIN_UPLINK),
    frame.subarray(COUNTER_LEN, frameSize - TAG_LEN),
    frame.subarray(frameSize - TAG_LEN),
  );
  if (plaintext === undefined) throw new AuthenticationError('frame');
  return { counter, plaintext };
}
