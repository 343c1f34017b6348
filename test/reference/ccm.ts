// An independent AES-CCM (RFC 3610 section 2, any tag length M and nonce
// length) written straight from the RFC on top of @noble/ciphers' AES block,
// used only to cross-check the host (OpenSSL) and device implementations.
import { ecb } from '@noble/ciphers/aes.js';

function block(key: Uint8Array, input: Uint8Array): Uint8Array {
  return ecb(key, { disablePadding: true }).encrypt(input);
}

export function referenceCcm(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, tagLen: number) {
  const L = 15 - nonce.length;
  // CBC-MAC over B0 || encoded AAD || plaintext, each zero-padded to a block.
  const b0 = new Uint8Array(16);
  b0[0] = (aad.length > 0 ? 64 : 0) | (((tagLen - 2) / 2) << 3) | (L - 1);
  b0.set(nonce, 1);
  for (let i = 0, len = plaintext.length; i < L; i++, len = Math.floor(len / 256)) b0[15 - i] = len & 255;
  const parts: number[] = [...b0];
  if (aad.length > 0) {
    const head = [(aad.length >> 8) & 255, aad.length & 255, ...aad];
    while (head.length % 16) head.push(0);
    parts.push(...head);
  }
  const body = [...plaintext];
  while (body.length % 16) body.push(0);
  parts.push(...body);
  let x: Uint8Array = new Uint8Array(16);
  for (let off = 0; off < parts.length; off += 16) {
    const y = new Uint8Array(16);
    for (let i = 0; i < 16; i++) y[i] = x[i]! ^ parts[off + i]!;
    x = block(key, y);
  }
  const counterBlock = (i: number) => {
    const a = new Uint8Array(16);
    a[0] = L - 1;
    a.set(nonce, 1);
    for (let j = 0, v = i; j < L; j++, v = Math.floor(v / 256)) a[15 - j] = v & 255;
    return block(key, a);
  };
  const ciphertext = new Uint8Array(plaintext.length);
  for (let off = 0; off < plaintext.length; off += 16) {
    const s = counterBlock(off / 16 + 1);
    for (let i = 0; i < 16 && off + i < plaintext.length; i++) ciphertext[off + i] = plaintext[off + i]! ^ s[i]!;
  }
  const s0 = counterBlock(0);
  const tag = new Uint8Array(tagLen);
  for (let i = 0; i < tagLen; i++) tag[i] = x[i]! ^ s0[i]!;
  return { ciphertext, tag };
}

export function referenceAesBlock(key: Uint8Array, input: Uint8Array): Uint8Array {
  return block(key, input);
}
