// AES-128-CCM (RFC 3610, NIST SP 800-38C) with an 8-byte tag, a 13-byte nonce
// and no associated data, as the design brief fixes it. The host side uses
// OpenSSL through node:crypto; test/hal/ccm.test.ts checks it against RFC 3610
// packet vector #1 and against an independent CCM built on @noble/ciphers.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { KEY_LEN, NONCE_LEN, TAG_LEN } from './wire/constants.js';

// A zero-length view into a real buffer: OpenSSL's CCM fails with "tag not
// set" when handed an empty buffer whose data pointer is null (as Node gives
// for randomBytes(0)), so empty messages (ack tags) always go in as this.
const EMPTY_MESSAGE = new Uint8Array(new ArrayBuffer(1), 0, 0);
const nonNull = (b: Uint8Array): Uint8Array => (b.length === 0 ? EMPTY_MESSAGE : b);

export interface Sealed {
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

/** Arguments are assumed checked by the caller (frame.ts, ack.ts). */
export function ccmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Sealed {
  const cipher = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: TAG_LEN });
  const head = cipher.update(nonNull(plaintext));
  const tail = cipher.final();
  const ciphertext = tail.length === 0 ? head : Buffer.concat([head, tail]);
  return { ciphertext: new Uint8Array(ciphertext), tag: new Uint8Array(cipher.getAuthTag()) };
}

/** Returns the plaintext, or undefined when the tag does not verify; never partial plaintext. */
export function ccmDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array | undefined {
  const decipher = createDecipheriv('aes-128-ccm', key, nonce, { authTagLength: TAG_LEN });
  decipher.setAuthTag(tag);
  const plaintext = decipher.update(nonNull(ciphertext));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return new Uint8Array(plaintext);
}

/** One AES-128 block in ECB mode. */
export function aesEncryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const cipher = createCipheriv('aes-128-ecb', key, null);
  cipher.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([cipher.update(block), cipher.final()]));
}

export const CCM_KEY_LEN = KEY_LEN;
export const CCM_NONCE_LEN = NONCE_LEN;
