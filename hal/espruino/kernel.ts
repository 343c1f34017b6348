// native-kernel: the compiled AES-CCM kernel (kernel/aes-ccm/, docs/firmware.md "Compiled kernel")
// called through E.nativeCall. The factory writes it as the Storage file sealpost.krn; on an nRF52
// require("Storage").read gives a string pointing into memory-mapped flash, which runs in place
// (E.getAddressOf(..., true) non-zero, 4-byte aligned); where that address is 0 (the Linux builds,
// whose flash is a file) the image is copied once into a flat string in RAM.
//
// Every pointer handed to the kernel is the address of a flat block, read again before each call
// (a defragmentation may move it) and checked: a 16-byte Uint8Array has address 0 (not flat), and
// passing 0 makes the interpreter fault (docs/espruino-notes.md). Counters go in as `counter | 0`,
// the same 32 bits as an int; the kernel reads them as unsigned.
//
// Before the first use the file's length and CRC-32 are compared with the image this firmware was
// built with (a damaged or foreign file is never executed), then the kernel seals a frame of
// test/vectors/seal.json and the bytes are compared: on any difference this backend throws, the
// device prints why and seals nothing.
import type { Ccm, CryptoHal, Framer } from '../types.js';
import { KERNEL_FILE_NAME, PROVISION_HINT } from '../../protocol/wire/names.js';
import type { EGlobal, EspruinoStorageModule } from './globals.js';
import { RENEWAL } from '../features.js';

// The interpreter's base64 decoder (a global on Espruino, Node and browsers alike).
declare function atob(data: string): string;

/**
 * What the firmware needs of kernel/aes-ccm/image.ts, flat: [length, CRC-32, offsets of aes_ccm_init,
 * aes_ccm_seal, aes_ccm_ack and aes_block, CTX_SIZE]. Seven numbers, so a bundle carries no object
 * with key names (about 130 bytes on MDBT42Q, whose bundle is at its budget); board entries write
 * the numbers out (tools/board-entries.ts, checked against image.ts by test/tools/board-entries.test.ts),
 * everything else takes imageNumbers(IMAGE).
 */
export type KernelImage = readonly [size: number, crc32: number, init: number, seal: number, ack: number, block: number, ctxSize: number];

/** The flat KernelImage of an image.ts IMAGE. */
export function imageNumbers(i: {
  size: number;
  crc32: number;
  entries: { aes_ccm_init: number; aes_ccm_seal: number; aes_ccm_ack: number; aes_block: number };
  constants: { CTX_SIZE: number };
}): KernelImage {
  return [i.size, i.crc32, i.entries.aes_ccm_init, i.entries.aes_ccm_seal, i.entries.aes_ccm_ack, i.entries.aes_block, i.constants.CTX_SIZE];
}

/** A kernel entry point through E.nativeCall, "int(int,int,int,int)". */
export type Native = (a: number, b: number, c: number, d: number) => number;

/**
 * The kernel's entry points as E.nativeCall functions ("int(int,int,int,int)"), in the order of
 * KernelImage: a tuple, like KernelImage, so a bundle carries no key names.
 */
export type KernelEntries = readonly [init: Native, seal: Native, ack: Native, block: Native];

const SIG = 'int(int,int,int,int)';
/**
 * seal.json vector 18: key (16) || salt (8) || plaintext (8) || frame (20), counter 2^31, so the
 * self-test also proves a counter above 2^31 - 1 reaches the kernel as unsigned
 * (test/hal/espruino/kernel.test.ts checks these bytes against the vector file).
 */
export const SELFTEST_VECTOR = 'cNV6fYbebqisbdooQZw4y447qW11/hUJ49OwSQAAAACAAAAAkt9l64v+A/Qvtw0xyT3A/g==';
export const SELFTEST_COUNTER = 2147483648;

function refuse(why: string): Error {
  return new Error('kernel ' + KERNEL_FILE_NAME + ' ' + why);
}

/**
 * The refusals of another kernel file, worded as this backend's: "kernel <name> <why>". (This backend
 * keeps its own `refuse` with the name folded in: a wrapper around this one costs the board bundles
 * about 40 bytes, and Puck.js has fewer than 70 left.)
 */
export function kernelRefusal(name: string): (why: string) => Error {
  return function (why: string): Error {
    return new Error('kernel ' + name + ' ' + why);
  };
}

/**
 * Reads the kernel Storage file `name` and checks it against the image this firmware was built with
 * (`image`: its length, then its CRC-32, then anything), by length and CRC-32 (E.CRC32): a missing, damaged or foreign file is never executed, the error
 * says which and what to do (`refuse` words the error). Returns the maker of its entry points (offset -> "int(int,int,int,int)"
 * function): in place (flash address, 4-byte aligned), or from a flat copy in RAM, whose address
 * E.nativeCall adds itself at every call when handed the copy as its data. The copy lives as long as
 * the maker does. Shared by this backend (sealpost.krn) and the renewal crypto
 * (hal/espruino/renewal-crypto.ts: sealpost.c25, sealpost.hkd).
 */
export function kernelFile(E: EGlobal, S: EspruinoStorageModule, name: string, image: readonly number[], refuse: (why: string) => Error): (offset: number) => Native {
  const code = S.read(name);
  if (code === undefined) throw refuse('is missing: ' + PROVISION_HINT);
  if (code.length !== image[0] || E.CRC32(code as unknown as Uint8Array) >>> 0 !== image[1]) throw refuse('is damaged or not this firmware\'s: flash the device again');
  let at = E.getAddressOf(code, true);
  let copy: string | undefined;
  if (!at || at & 3) {
    at = 0;
    copy = E.toFlatString(code);
    if (!copy) throw refuse('has no flat RAM');
  }
  return function (offset: number): Native {
    return E.nativeCall(at + offset + 1, SIG, copy);
  };
}

// A Uint8Array above ~14 bytes is allocated flat when a contiguous block is free (Espruino 2v29,
// jswrap_arraybuffer.c); without one the kernel cannot run. Addresses are read again before every
// call: a defragmentation may move a flat block.
function addressOf(E: EGlobal, b: Uint8Array): number {
  const a = E.getAddressOf(b, true);
  if (!a) throw refuse('has no flat RAM');
  return a;
}

/** The native-kernel CryptoHal: E and Storage are the interpreter's (stand-ins under Node, sim/espruino/kernel.ts). */
export function kernelCrypto(E: EGlobal, S: EspruinoStorageModule, image: KernelImage): CryptoHal {
  const CTX = image[6];
  let kernel: KernelEntries | undefined;

  function load(): KernelEntries {
    if (kernel) return kernel;
    const fn = kernelFile(E, S, KERNEL_FILE_NAME, image, refuse);
    const k: KernelEntries = [fn(image[2]), fn(image[3]), fn(image[4]), fn(image[5])];
    // The self-test runs the path every frame takes: a framer sealing into a ring. Only a kernel that
    // passes is kept; one that throws on the way (a wrong return value) is refused the same.
    const v = E.toUint8Array(atob(SELFTEST_VECTOR));
    const ring = new Uint8Array(20);
    kernelEngine(E, k, CTX, v.subarray(0, 16), 8).framer(v.subarray(16, 24), 8, ring, 1)(SELFTEST_COUNTER, v.subarray(24, 32), 0);
    if (ring.join() !== v.subarray(32).join()) throw refuse('failed its self-test');
    return (kernel = k);
  }

  return {
    ccm: function (key: Uint8Array, maxMsgLen: number): Ccm {
      return kernelEngine(E, load(), CTX, key, maxMsgLen);
    },
    encryptBlock: function (key: Uint8Array, block: Uint8Array): Uint8Array {
      const k = load();
      // ctx | block (16), encrypted in place | key (16, also read as the salt).
      const t = new Uint8Array(CTX + 32);
      t.set(block, CTX);
      t.set(key, CTX + 16);
      const a = addressOf(E, t);
      const b = a + CTX;
      k[0](a, b + 16, b + 16, 1);
      k[3](a, b, b, 0);
      const out = new Uint8Array(t.subarray(CTX, CTX + 16));
      t.fill(0);
      return out;
    },
  };
}

/**
 * A CCM engine over a kernel's entry points (one context block): its framers seal in the engine's
 * own flat block and copy each frame into the ring. kernelCrypto hands the verified kernel's entries;
 * bench/ times this glue with stand-ins of the same signature (firmware/targets/bench-seal.ts).
 */
export function kernelEngine(E: EGlobal, k: KernelEntries, CTX: number, key: Uint8Array, maxMsgLen: number): Ccm {
  // ctx | one frame (the kernel seals here, then one native copy puts it into the ring) | key and
  // salt while init runs. The kernel so writes only into this block, whatever ring it is given.
  const w = new Uint8Array(CTX + 12 + (maxMsgLen > 24 ? maxMsgLen : 24));
  addressOf(E, w);
  let len = 0;
  let salt: Uint8Array | undefined;

  return {
    framer: function (nonceSalt: Uint8Array, n: number, ring: Uint8Array, domain: number): Framer {
      // One context per engine: its framers share the nonce salt (the sealer's do).
      // Domain 1 seals frames (aes_ccm_seal), domain 2 acks (aes_ccm_ack); with RENEWAL on, the empty
      // message under any other domain (RENEW_ACK, domain 3) comes from aes_block (kernelEmpty).
      const other = RENEWAL && !n && domain !== 2 && domain >= 0 && domain <= 255 && domain % 1 === 0;
      // (kernelEmpty builds its blocks from its own salt and uses only the context's round keys, so
      // it neither checks nor changes the context's salt: firmware/renewal.ts hands the same salt
      // as a fresh subarray to each of its framers.)
      if ((!other && salt && salt !== nonceSalt) || !(other || (domain === 2 ? !n : domain === 1 && n > 0 && n <= maxMsgLen && (!len || len === n)))) throw refuse('has no such framer');
      if (!other) salt = nonceSalt;
      if (n) len = n;
      w.set(key, CTX);
      w.set(other && salt ? salt : nonceSalt, CTX + 16);
      const a = addressOf(E, w);
      k[0](a, a + CTX, a + CTX + 16, len || 1);
      w.fill(0, CTX);
      if (other) return /*@__NOINLINE__*/ kernelEmpty(E, w, k[3], CTX, nonceSalt, domain, ring);
      return /*@__NOINLINE__*/ kernelFramer(E, w, n ? k[1] : k[2], CTX, n, ring);
    },
  };
}

// The function a framer returns, made here at top level rather than inside framer(): a function made
// two scopes deep keeps a copied array of both scopes, so each framer kept the engine's scope (E,
// the entries, the key, the salt, ...) and framer()'s own for good, about 20 variables on the
// interpreter for the two framers a device makes; made here it keeps only these parameters
// (docs/firmware.md, "Fifth pass"). Boot-only like kernelEngine: the build frees the name after boot
// (rollup.config.mjs, BOOT_ONLY).
function kernelFramer(E: EGlobal, w: Uint8Array, entry: Native, CTX: number, n: number, ring: Uint8Array): Framer {
  // Made once: every statement costs tens of microseconds on the interpreter (docs/firmware.md, "Cost").
  const out = new Uint8Array(w.buffer, w.byteOffset + CTX, n + 12);
  // The last offset a frame fits at. The frame's size is out.length: each name kept in this scope
  // costs a variable for good. The errors are written out, not made by refuse(), which only boot
  // calls and the build so frees (rollup.config.mjs, BOOT_ONLY).
  const end = ring.length - n - 12;
  // Counter and length checked here, per frame: this function is the sealer's sealInto (hal/ccm.ts).
  return function (counter: number, msg: Uint8Array, at: number): void {
    if (!(counter >= 1 && counter <= 0xffffffff)) throw new Error('counter expected 1..4294967295, got ' + counter);
    if (msg.length !== n) throw new Error('plaintext expected ' + n + ' bytes, got ' + msg.length);
    const a = E.getAddressOf(w, true);
    if (!a || at > end) throw new Error('kernel ' + KERNEL_FILE_NAME + ' has no flat RAM or ring room');
    w.set(msg, CTX + 4);
    if ((n ? entry(a, a + CTX + 4, a + CTX, counter | 0) : entry(a, a + CTX, counter | 0, 0)) !== out.length) throw new Error('kernel ' + KERNEL_FILE_NAME + ' failed');
    ring.set(out, at);
  };
}

/**
 * A framer of the empty message under any domain (RENEWAL builds only; terser drops it from the
 * others): the aes-ccm kernel's entries fix domains 1 and 2, and RENEW_ACK is CCM of the empty
 * message under domain 3 (docs/protocol.md section 3). With no message and no associated data
 * CCM's tag is the first 8 bytes of E(B0) XOR E(A0) (RFC 3610 2.2, 2.3), B0 = 0x19 || salt ||
 * counter || domain || 0x0000 and A0 = 0x01 || salt || counter || domain || 0x0000: two calls of
 * aes_block under the engine's context, in its flat block. Writes counter (4, BE) || tag (8), as
 * the ack framer does. Top level for the reason kernelFramer is.
 */
function kernelEmpty(E: EGlobal, w: Uint8Array, block: Native, CTX: number, salt: Uint8Array, domain: number, ring: Uint8Array): Framer {
  return function (counter: number, msg: Uint8Array, at: number): void {
    if (!(counter >= 1 && counter <= 0xffffffff)) throw new Error('counter expected 1..4294967295, got ' + counter);
    if (msg.length !== 0) throw new Error('plaintext expected 0 bytes, got ' + msg.length);
    const a = E.getAddressOf(w, true);
    if (!a || at > ring.length - 12) throw new Error('kernel ' + KERNEL_FILE_NAME + ' has no flat RAM or ring room');
    for (let i = 0; i < 32; i += 16) {
      w[CTX + i] = i ? 0x01 : 0x19;
      w.set(salt, CTX + i + 1);
      w[CTX + i + 9] = counter >>> 24;
      w[CTX + i + 10] = counter >>> 16;
      w[CTX + i + 11] = counter >>> 8;
      w[CTX + i + 12] = counter;
      w[CTX + i + 13] = domain;
      w[CTX + i + 14] = 0;
      w[CTX + i + 15] = 0;
      block(a, a + CTX + i, a + CTX + i, 0);
    }
    ring[at] = counter >>> 24;
    ring[at + 1] = counter >>> 16;
    ring[at + 2] = counter >>> 8;
    ring[at + 3] = counter;
    for (let i = 0; i < 8; i++) ring[at + 4 + i] = w[CTX + i]! ^ w[CTX + 16 + i]!;
    w.fill(0, CTX);
  };
}
