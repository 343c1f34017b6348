// A stand-in for the parts of Espruino that run the compiled AES-CCM kernel (kernel/aes-ccm/), for
// the native-kernel backend (hal/espruino/kernel.ts) under Node: E.getAddressOf(x, true),
// E.nativeCall, E.toFlatString, E.toUint8Array and require("Storage").read, over a model of the
// interpreter's memory. Node cannot execute Thumb code, so a call runs the entry point's contract
// (docs/firmware.md, "Compiled kernel") with host crypto (protocol/), reading and writing the same
// bytes at the same addresses the real kernel would. The real thing is proven elsewhere: the
// committed binary under qemu-arm (test/kernel/aes-ccm.test.ts) and the firmware bundle on the
// 32-bit ARM interpreter (test/firmware/kernel-arm.test.ts).
//
// Memory semantics, after Espruino 2v29 (src/jsvar.c jsvGetDataPointer, src/jswrap_arraybuffer.c,
// ../shared/espruino.md "Native code"):
// - a typed array or ArrayBuffer of more than 16 bytes is flat and has an address (its data plus
//   byteOffset); 16 bytes or fewer have address 0 (the real interpreter stores them in one or two
//   ordinary blocks);
// - E.toFlatString(x) copies x's bytes into a new flat string with an address; E.toUint8Array of
//   it shares those bytes;
// - a Storage string has a flash address when `xip` is set (an nRF52, execute in place) and 0
//   otherwise (the Linux builds, whose flash is a file);
// - E.nativeCall(addr, sig, data) calls addr + the address of data (as a flat string);
// - a pointer that falls outside every flat block, a call in ARM mode (even address) or a call into
//   bytes that are not the committed image throws, where the interpreter would crash or worse.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import { makeAck, sealFrame } from '../../protocol/index.js';
import { aesEncryptBlock } from '../../protocol/ccm.js';

const RAM_BASE = 0x20000000;
const FLASH_BASE = 0x00070000;
const FLAT_ABOVE = 16;
const CTX = IMAGE.constants.CTX_SIZE;
const SIGNATURE = 'int(int,int,int,int)';

/** The committed image's bytes. */
export function kernelImage(): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../../kernel/aes-ccm/${IMAGE.file}`, import.meta.url)));
}

export interface KernelMachineOptions {
  /** The Storage files, read when the firmware asks (so a test may change them). */
  files(): Map<string, Uint8Array>;
  /** Storage strings have a flash address (a board) instead of 0 (the Linux builds). Default true. */
  xip?: boolean;
  /** Fault injection: every frame the kernel seals has its last byte flipped (a miscompiled kernel). */
  wrongOutput?: boolean;
}

export interface KernelMachine {
  E: {
    getAddressOf(v: unknown, flat: boolean): number;
    nativeCall(addr: number, signature: string, data?: unknown): (a: number, b: number, c: number, d: number) => number;
    toFlatString(data: unknown): unknown;
    toUint8Array(s: unknown): Uint8Array;
  };
  /** require("Storage").read: a file as a latin1 string. */
  read(name: string): string | undefined;
  /** Kernel calls so far, by entry name. */
  calls: Record<string, number>;
  /** Bytes copied into flat strings so far (the image copied to RAM shows here). */
  flatCopies: number[];
}

interface Region {
  base: number;
  bytes: Uint8Array;
  writable: boolean;
}

function sboxTable(): Uint8Array {
  // FIPS-197 section 5.1.1: multiplicative inverse in GF(2^8), then the affine map.
  const s = new Uint8Array(256);
  let p = 1;
  let q = 1;
  do {
    p = p ^ ((p << 1) & 0xff) ^ (p & 0x80 ? 0x1b : 0);
    q ^= q << 1;
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    const x = q ^ ((q << 1) | (q >> 7)) ^ ((q << 2) | (q >> 6)) ^ ((q << 3) | (q >> 5)) ^ ((q << 4) | (q >> 4));
    s[p] = (x ^ 0x63) & 0xff;
  } while (p !== 1);
  s[0] = 0x63;
  return s;
}

const SBOX = sboxTable();

/** AES-128 round keys (FIPS-197 section 5.2), as aes_ccm_init leaves them in the context block. */
function roundKeys(key: Uint8Array): Uint8Array {
  const w = new Uint8Array(176);
  w.set(key);
  let rcon = 1;
  for (let i = 16; i < 176; i += 4) {
    let t = [w[i - 4]!, w[i - 3]!, w[i - 2]!, w[i - 1]!];
    if (i % 16 === 0) {
      t = [SBOX[t[1]!]! ^ rcon, SBOX[t[2]!]!, SBOX[t[3]!]!, SBOX[t[0]!]!];
      rcon = (rcon << 1) ^ (rcon & 0x80 ? 0x11b : 0);
    }
    for (let j = 0; j < 4; j++) w[i + j] = w[i - 16 + j]! ^ t[j]!;
  }
  return w;
}

export function kernelMachine(options: KernelMachineOptions): KernelMachine {
  const entryAt = new Map<number, string>(Object.entries(IMAGE.entries).map(([name, off]) => [off, name]));
  const xip = options.xip ?? true;
  const regions: Region[] = [];
  const bufferBase = new WeakMap<ArrayBufferLike, number>();
  const flatStrings = new WeakMap<object, ArrayBuffer>();
  const verified = new WeakSet<Uint8Array>();
  let nextRam = RAM_BASE;
  const calls: Record<string, number> = {};
  const flatCopies: number[] = [];

  function place(buf: ArrayBuffer): number {
    let base = bufferBase.get(buf);
    if (base === undefined) {
      base = nextRam;
      nextRam += (buf.byteLength + 7) & ~3;
      bufferBase.set(buf, base);
      regions.push({ base, bytes: new Uint8Array(buf), writable: true });
    }
    return base;
  }

  function fileAddress(s: string): number {
    let i = 0;
    for (const [, bytes] of options.files()) {
      if (Buffer.from(bytes).toString('latin1') === s) {
        const base = FLASH_BASE + i * 0x1000;
        const known = regions.find((r) => r.base === base);
        if (known) known.bytes = bytes.slice();
        else regions.push({ base, bytes: bytes.slice(), writable: false });
        return base;
      }
      i++;
    }
    return 0;
  }

  function addressOf(v: unknown): number {
    if (v instanceof ArrayBuffer) return v.byteLength > FLAT_ABOVE ? place(v) : 0;
    if (ArrayBuffer.isView(v)) return v.buffer.byteLength > FLAT_ABOVE ? place(v.buffer as ArrayBuffer) + v.byteOffset : 0;
    if (typeof v === 'object' && v !== null && flatStrings.has(v)) return place(flatStrings.get(v)!);
    if (typeof v === 'string') return xip ? fileAddress(v) : 0;
    return 0;
  }

  function bytesOf(data: unknown): Uint8Array {
    if (typeof data === 'string') return Uint8Array.from(Buffer.from(data, 'latin1'));
    if (typeof data === 'object' && data !== null && flatStrings.has(data)) return new Uint8Array(flatStrings.get(data)!).slice();
    if (data instanceof ArrayBuffer) return new Uint8Array(data).slice();
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    throw new Error(`E.toFlatString stand-in: cannot take ${typeof data}`);
  }

  function at(addr: number, n: number, write = false): Uint8Array {
    const a = addr >>> 0;
    const r = regions.find((x) => a >= x.base && a + n <= x.base + x.bytes.length);
    if (!r) throw new Error(`kernel stand-in: pointer 0x${a.toString(16)} (+${n}) is in no flat block: the real interpreter would crash here`);
    if (write && !r.writable) throw new Error(`kernel stand-in: write to flash at 0x${a.toString(16)}`);
    return r.bytes.subarray(a - r.base, a - r.base + n);
  }

  function keysOf(ctx: number) {
    const c = at(ctx, CTX);
    return { sealKey: c.slice(0, 16), nonceSalt: c.slice(176, 184), len: new DataView(c.buffer, c.byteOffset).getUint32(184, true) };
  }

  const ENTRIES: Record<string, (a: number, b: number, c: number, d: number) => number> = {
    aes_ccm_init(ctx, key, salt, len) {
      if (len < 1 || len > IMAGE.constants.MAX_MSG) return -1;
      const c = at(ctx, CTX, true);
      const k = at(key, 16).slice();
      const s = at(salt, 8).slice();
      c.set(roundKeys(k));
      c.set(s, 176);
      new DataView(c.buffer, c.byteOffset).setUint32(184, len, true);
      return 0;
    },
    aes_ccm_seal(ctx, msg, dst, counter) {
      const k = keysOf(ctx);
      if (counter >>> 0 === 0) return -1;
      const m = at(msg, k.len).slice();
      if ((msg >>> 0) !== (dst >>> 0) + 4 && (msg >>> 0) < (dst >>> 0) + k.len + 12 && (dst >>> 0) < (msg >>> 0) + k.len) {
        throw new Error('kernel stand-in: aes_ccm_seal with msg overlapping dst other than at dst + 4 (outside the contract)');
      }
      const frame = sealFrame(k, counter >>> 0, m, k.len + 12);
      if (options.wrongOutput) frame[frame.length - 1]! ^= 1;
      at(dst, k.len + 12, true).set(frame);
      return k.len + 12;
    },
    aes_ccm_ack(ctx, dst, counter) {
      if (counter >>> 0 === 0) return -1;
      at(dst, 12, true).set(makeAck(keysOf(ctx), counter >>> 0));
      return 12;
    },
    aes_ccm_ack_check(ctx, ack) {
      const a = at(ack, 12);
      const n = new DataView(a.buffer, a.byteOffset).getUint32(0);
      if (n === 0) return 0;
      const good = makeAck(keysOf(ctx), n);
      let diff = 0;
      for (let i = 4; i < 12; i++) diff |= good[i]! ^ a[i]!;
      return diff === 0 ? 1 : 0;
    },
    aes_block(ctx, input, out) {
      const block = aesEncryptBlock(keysOf(ctx).sealKey, at(input, 16).slice());
      at(out, 16, true).set(block);
      return 0;
    },
  };

  function run(target: number, args: number[]): number {
    if (!(target & 1)) throw new Error(`kernel stand-in: call to 0x${target.toString(16)} in ARM mode: a Cortex-M4 faults (pass offset | 1)`);
    const pc = (target - 1) >>> 0;
    const r = regions.find((x) => pc >= x.base && pc < x.base + x.bytes.length);
    if (!r) throw new Error(`kernel stand-in: call to 0x${pc.toString(16)}, which is in no flat block or flash file`);
    if (!verified.has(r.bytes)) {
      const sha = createHash('sha256').update(r.bytes.subarray(0, IMAGE.size)).digest('hex');
      if (r.bytes.length < IMAGE.size || sha !== IMAGE.sha256) throw new Error('kernel stand-in: executing bytes that are not the committed kernel image: behaviour undefined');
      verified.add(r.bytes);
    }
    const name = entryAt.get(pc - r.base);
    if (!name) throw new Error(`kernel stand-in: 0x${(pc - r.base).toString(16)} is not an entry point of the kernel`);
    calls[name] = (calls[name] ?? 0) + 1;
    return ENTRIES[name]!(args[0]! | 0, args[1]! | 0, args[2]! | 0, args[3]! | 0);
  }

  return {
    E: {
      getAddressOf: (v, flat) => {
        if (!flat) throw new Error('E.getAddressOf stand-in: only flat addresses (second argument true) are modelled');
        return addressOf(v);
      },
      nativeCall: (addr, signature, data) => {
        if (signature !== SIGNATURE) throw new Error(`E.nativeCall stand-in: signature ${signature}, the kernel's entries are ${SIGNATURE}`);
        if (data !== undefined && typeof data !== 'string' && !(typeof data === 'object' && data !== null && flatStrings.has(data))) throw new Error('E.nativeCall stand-in: data must be a string');
        return (a, b, c, d) => {
          const base = data === undefined ? 0 : typeof data === 'string' ? place(copyFlat(data)) : addressOf(data);
          return run((base + addr) >>> 0, [a, b, c, d]);
        };
      },
      toFlatString: (data) => {
        const s = new String('');
        flatStrings.set(s, copyFlat(data));
        return s;
      },
      toUint8Array: (s) => {
        if (typeof s === 'object' && s !== null && flatStrings.has(s)) return new Uint8Array(flatStrings.get(s)!).slice();
        if (typeof s === 'string') return Uint8Array.from(Buffer.from(s, 'latin1'));
        throw new Error('E.toUint8Array stand-in: expects a string');
      },
    },
    read: (name) => {
      const f = options.files().get(name);
      return f === undefined ? undefined : Buffer.from(f).toString('latin1');
    },
    calls,
    flatCopies,
  };

  function copyFlat(data: unknown): ArrayBuffer {
    const bytes = bytesOf(data);
    const buf = new ArrayBuffer(bytes.length);
    new Uint8Array(buf).set(bytes);
    flatCopies.push(bytes.length);
    place(buf);
    return buf;
  }
}
