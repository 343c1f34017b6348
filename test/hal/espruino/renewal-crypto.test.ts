// The board's renewal crypto (hal/espruino/renewal-crypto.ts) under Node, on a stand-in for the
// interpreter written here: flat blocks with addresses (more than 16 bytes, as Espruino 2v29 allocates
// them), Storage strings with a flash address or 0, E.nativeCall resolving an address inside one of the
// two committed images to its entry, and each entry's contract (docs/firmware.md, "Renewal kernels")
// run with @noble on the same bytes at the same addresses. What it shows in `npm test`, without the
// interpreter: the glue lays out and labels what the kernels get so that renewal.json's derivations
// come out; what it refuses before executing a byte; that nothing but the result survives a call.
// The real kernels on the real interpreter: test/firmware/renewal-crypto-arm.test.ts.
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { expand } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EGlobal, EspruinoStorageModule } from '../../../hal/espruino/globals.js';
import { espruinoRenewalCrypto, renewalImageNumbers } from '../../../hal/espruino/renewal-crypto.js';
import { IMAGE as CURVE } from '../../../kernel/curve25519/image.js';
import { IMAGE as HKDF } from '../../../kernel/hkdf-sha256/image.js';
import { ANNOUNCE_CONTEXT } from '../../../protocol/announce.js';
import { crc32 } from '../../../protocol/wire/crc32.js';
import { CURVE_KERNEL_FILE_NAME, HKDF_KERNEL_FILE_NAME } from '../../../protocol/wire/names.js';
import { curveKernel, hkdfKernel } from '../../helpers/renewal-check.js';

const VECTORS = JSON.parse(readFileSync(new URL('../../vectors/renewal.json', import.meta.url), 'utf8')) as {
  derivation: { ingest_public_key: string; info: string; psk: string; psk_id: string; ikm: string; enc: string; seal_key: string; nonce_salt: string; chain: string }[];
  announce: { renewal_public_key: string; announce: string }[];
};
const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const cat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));
const text = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1'));

// RFC 9180 section 4, for the stand-in entries: LabeledExtract / LabeledExpand.
const labeledExtract = (suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array) => hmac(sha256, salt, cat(text('HPKE-v1'), suite, text(label), ikm));
const labeledExpand = (suite: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, L: number) => expand(sha256, prk, cat(Uint8Array.of(L >> 8, L & 255), text('HPKE-v1'), suite, text(label), info), L);
const KEM_SUITE = text('KEM\x00\x20');

const FLASH = { [CURVE_KERNEL_FILE_NAME]: 0x00060000, [HKDF_KERNEL_FILE_NAME]: 0x00068000 };

/** The interpreter's parts the backend uses, over a memory model; `calls` lists the entries run. */
function machine(files: Map<string, Uint8Array>, options: { xip?: boolean; noFlat?: boolean } = {}) {
  const regions: { base: number; bytes: Uint8Array; writable: boolean }[] = [];
  const bases = new WeakMap<ArrayBufferLike, number>();
  const flat = new WeakMap<object, Uint8Array>();
  let next = 0x20000000;
  const calls: string[] = [];
  const flatCopies: number[] = [];
  const place = (buf: ArrayBufferLike): number => {
    let b = bases.get(buf);
    if (b === undefined) {
      b = next;
      next += (buf.byteLength + 7) & ~3;
      bases.set(buf, b);
      regions.push({ base: b, bytes: new Uint8Array(buf), writable: true });
    }
    return b;
  };
  const at = (addr: number, n: number, write = false): Uint8Array => {
    const r = regions.find((x) => addr >= x.base && addr + n <= x.base + x.bytes.length);
    if (!r) throw new Error(`stand-in: pointer 0x${addr.toString(16)} (+${n}) is in no flat block: the interpreter would crash`);
    if (write && !r.writable) throw new Error('stand-in: write to flash');
    return r.bytes.subarray(addr - r.base, addr - r.base + n);
  };
  const read = (name: string): string | undefined => {
    const f = files.get(name);
    return f && Buffer.from(f).toString('latin1');
  };
  const entries = (image: typeof CURVE | typeof HKDF): Map<number, string> => new Map(Object.entries(image.entries).map(([n, o]) => [o, n]));
  const images = [
    { bytes: curveKernel(), entries: entries(CURVE) },
    { bytes: hkdfKernel(), entries: entries(HKDF) },
  ];
  const run: Record<string, (a: number, b: number, c: number, d: number) => number> = {
    hmac_sha256: (out, key, msg, lens) => (at(out, 32, true).set(hmac(sha256, at(key, lens & 0xffff).slice(), at(msg, lens >>> 16).slice())), 0),
    hkdf_expand: (okm, prk, info, lens) => (at(okm, lens >>> 16, true).set(expand(sha256, at(prk, 32).slice(), at(info, lens & 0xffff).slice(), lens >>> 16)), 0),
    x25519: (out, k, u) => {
      let r: Uint8Array;
      try {
        r = x25519.scalarMult(at(k, 32).slice(), at(u, 32).slice());
      } catch {
        at(out, 32, true).fill(0);
        return -1;
      }
      at(out, 32, true).set(r);
      return 0;
    },
    x25519_base: (out, k) => (at(out, 32, true).set(x25519.scalarMultBase(at(k, 32).slice())), 0),
    ed25519_verify: (sig, msg, len, pk) => (ed25519.verify(at(sig, 64).slice(), at(msg, len).slice(), at(pk, 32).slice(), { zip215: false }) ? 1 : 0),
    hpke_extract_and_expand: (ss, dh, enc, pkr) => {
      const d = at(dh, 32).slice();
      if (d.every((b) => b === 0)) return -3;
      at(ss, 32, true).set(labeledExpand(KEM_SUITE, labeledExtract(KEM_SUITE, new Uint8Array(0), 'eae_prk', d), 'shared_secret', cat(at(enc, 32), at(pkr, 32)), 32));
      return 0;
    },
    hpke_key_schedule: (ctx, ss, infoLp, psk) => {
      const c = at(ctx, HKDF.constants.CTX_SIZE, true);
      const suite = cat(text('HPKE\x00\x20\x00\x01'), c.subarray(0, 2));
      const info = at(infoLp + 1, at(infoLp, 1)[0]!).slice();
      const p = psk ? at(psk, 32).slice() : new Uint8Array(0);
      const id = psk ? at(psk + 33, at(psk + 32, 1)[0]!).slice() : new Uint8Array(0);
      const empty = new Uint8Array(0);
      const ksc = cat(Uint8Array.of(psk ? 1 : 0), labeledExtract(suite, empty, 'psk_id_hash', id), labeledExtract(suite, empty, 'info_hash', info));
      const secret = labeledExtract(suite, at(ss, 32).slice(), 'secret', p);
      c.set(labeledExpand(suite, secret, 'exp', ksc, 32), 4);
      return 0;
    },
    hpke_export: (out, ctx, ecLp, L) => {
      const c = at(ctx, HKDF.constants.CTX_SIZE);
      at(out, L, true).set(labeledExpand(cat(text('HPKE\x00\x20\x00\x01'), c.subarray(0, 2)), c.slice(4, 36), 'sec', at(ecLp + 1, at(ecLp, 1)[0]!).slice(), L));
      return 0;
    },
  };
  const E = {
    CRC32: (s: string) => crc32(text(s)) | 0,
    hwRand: () => {
      throw new Error('Timeout on Random number');
    },
    toUint8Array: (s: string) => text(s),
    toFlatString: (s: string) => {
      const o = {};
      flat.set(o, text(s));
      flatCopies.push(s.length);
      return o;
    },
    getAddressOf: (v: unknown): number => {
      if (options.noFlat) return 0;
      if (ArrayBuffer.isView(v)) return v.buffer.byteLength > 16 ? place(v.buffer) + v.byteOffset : 0;
      if (typeof v === 'object' && v !== null && flat.has(v)) return place(flat.get(v)!.buffer);
      if (typeof v === 'string' && (options.xip ?? true)) {
        for (const [name, base] of Object.entries(FLASH)) {
          if (read(name) === v) {
            if (!regions.some((r) => r.base === base)) regions.push({ base, bytes: text(v), writable: false });
            return base;
          }
        }
      }
      return 0;
    },
    nativeCall: (addr: number, sig: string, data?: object) => {
      expect(sig).toBe('int(int,int,int,int)');
      const target = (addr + (data ? E.getAddressOf(data) : 0)) >>> 0;
      if (!(target & 1)) throw new Error('stand-in: ARM-mode call on a Cortex-M4');
      return (a: number, b: number, c: number, d: number) => {
        const r = regions.find((x) => target - 1 >= x.base && target - 1 < x.base + x.bytes.length)!;
        const image = images.find((i) => Buffer.from(i.bytes).equals(Buffer.from(r.bytes)));
        const name = image?.entries.get(target - 1 - r.base);
        if (!name) throw new Error('stand-in: call into bytes that are not a committed kernel entry');
        calls.push(name);
        return run[name]!(a >>> 0, b >>> 0, c >>> 0, d >>> 0);
      };
    },
  };
  return { E: E as unknown as EGlobal, Storage: { read } as unknown as EspruinoStorageModule, calls, flatCopies, regions };
}

const IMAGES = renewalImageNumbers(CURVE, HKDF);
const bothFiles = () =>
  new Map([
    [CURVE_KERNEL_FILE_NAME, curveKernel()],
    [HKDF_KERNEL_FILE_NAME, hkdfKernel()],
  ]);
const expected = (v: (typeof VECTORS.derivation)[number]) => v.enc + v.seal_key + v.nonce_salt + v.chain;
const setup = (hal: ReturnType<typeof espruinoRenewalCrypto>, v: (typeof VECTORS.derivation)[number], change: Partial<Record<'pk' | 'info' | 'psk' | 'pskId' | 'ikm', Uint8Array>> = {}) =>
  hal.setupPskS(change.pk ?? hex(v.ingest_public_key), change.info ?? hex(v.info), change.psk ?? hex(v.psk), change.pskId ?? hex(v.psk_id), change.ikm ?? hex(v.ikm));

describe('renewal crypto on the kernels (hal/espruino/renewal-crypto.ts), on an interpreter stand-in', () => {
  it('derives every PSK-mode vector of renewal.json, with the kernels in place, in the order of RFC 9180', () => {
    for (const v of VECTORS.derivation) {
      const m = machine(bothFiles());
      expect(toHex(setup(espruinoRenewalCrypto(m.E, m.Storage, IMAGES), v))).toBe(expected(v));
      expect(m.calls).toEqual(['hmac_sha256', 'hkdf_expand', 'x25519_base', 'x25519', 'hpke_extract_and_expand', 'hpke_key_schedule', 'hpke_export', 'hpke_export', 'hpke_export']);
      expect(m.flatCopies).toEqual([]);
    }
  });

  it('copies the kernels into flat strings only where Storage strings have no address', () => {
    const m = machine(bothFiles(), { xip: false });
    const v = VECTORS.derivation[2]!;
    expect(toHex(setup(espruinoRenewalCrypto(m.E, m.Storage, IMAGES), v))).toBe(expected(v));
    expect(m.flatCopies).toEqual([CURVE.size, HKDF.size]);
  });

  it('leaves nothing of a call in RAM but its result: the work block is zero after success and after a refusal', () => {
    const m = machine(bothFiles());
    const hal = espruinoRenewalCrypto(m.E, m.Storage, IMAGES);
    const v = VECTORS.derivation[0]!;
    setup(hal, v);
    const blocks = () => m.regions.filter((r) => r.writable && r.bytes.length === 548);
    expect(blocks()).toHaveLength(1);
    expect(blocks()[0]!.bytes.every((b) => b === 0)).toBe(true);
    expect(() => setup(hal, v, { pk: new Uint8Array(32) })).toThrow(`kernel ${CURVE_KERNEL_FILE_NAME} refused the renewal: x25519 with the announced ingest key returned -1`);
    expect(blocks()).toHaveLength(2);
    expect(blocks()[1]!.bytes.every((b) => b === 0)).toBe(true);
  });

  it('verifies the ANNOUNCE signatures of renewal.json with the curve kernel alone, and refuses a flipped bit', () => {
    const m = machine(new Map([[CURVE_KERNEL_FILE_NAME, curveKernel()]]));
    const hal = espruinoRenewalCrypto(m.E, m.Storage, IMAGES);
    for (const a of VECTORS.announce) {
      const msg = cat(text(ANNOUNCE_CONTEXT), hex(a.announce.slice(0, 88)));
      const sig = hex(a.announce.slice(88, 216));
      expect(hal.verify(hex(a.renewal_public_key), msg, sig)).toBe(true);
      sig[5]! ^= 0x10;
      expect(hal.verify(hex(a.renewal_public_key), msg, sig)).toBe(false);
    }
    expect(m.calls.every((c) => c === 'ed25519_verify')).toBe(true);
  });

  it('refuses a missing, damaged or foreign kernel file before calling anything, saying which and what to do', () => {
    const v = VECTORS.derivation[0]!;
    const cases: [Map<string, Uint8Array>, string][] = [
      [new Map([[CURVE_KERNEL_FILE_NAME, curveKernel()]]), `kernel ${HKDF_KERNEL_FILE_NAME} is missing: provision this device with sealpost flash`],
      [new Map([[CURVE_KERNEL_FILE_NAME, curveKernel().map((b, i) => (i === 4800 ? b ^ 1 : b))], [HKDF_KERNEL_FILE_NAME, hkdfKernel()]]), `kernel ${CURVE_KERNEL_FILE_NAME} is damaged or not this firmware's: flash the device again`],
      [new Map([[CURVE_KERNEL_FILE_NAME, curveKernel()], [HKDF_KERNEL_FILE_NAME, curveKernel()]]), `kernel ${HKDF_KERNEL_FILE_NAME} is damaged or not this firmware's: flash the device again`],
    ];
    for (const [files, message] of cases) {
      const m = machine(files);
      expect(() => setup(espruinoRenewalCrypto(m.E, m.Storage, IMAGES), v)).toThrow(message);
      expect(m.calls).toEqual([]);
    }
  });

  it('names the argument of the wrong length, answers false for a key or signature of another length, refuses to run without flat RAM, and passes on hwRand\'s exception', () => {
    const m = machine(bothFiles());
    const hal = espruinoRenewalCrypto(m.E, m.Storage, IMAGES);
    const v = VECTORS.derivation[0]!;
    expect(() => setup(hal, v, { pk: new Uint8Array(31) })).toThrow('renewal recipient public key expected 32 bytes, got 31');
    expect(() => setup(hal, v, { info: new Uint8Array(65) })).toThrow('renewal info expected at most 64 bytes, got 65');
    expect(() => setup(hal, v, { psk: new Uint8Array(33) })).toThrow('renewal psk expected 32 bytes, got 33');
    expect(() => setup(hal, v, { pskId: new Uint8Array(0) })).toThrow('renewal psk_id expected 1 to 64 bytes, got 0');
    expect(() => setup(hal, v, { ikm: new Uint8Array(16) })).toThrow('renewal ikm expected 32 bytes, got 16');
    expect(m.calls).toEqual([]);
    // A key or signature of another length is no valid signature: false, as the plain backend answers, without a kernel call.
    expect(hal.verify(new Uint8Array(32), new Uint8Array(64), new Uint8Array(65))).toBe(false);
    expect(hal.verify(new Uint8Array(31), new Uint8Array(64), new Uint8Array(64))).toBe(false);
    expect(m.calls).toEqual([]);
    const none = machine(bothFiles(), { noFlat: true });
    expect(() => setup(espruinoRenewalCrypto(none.E, none.Storage, IMAGES), v)).toThrow(/has no flat RAM/);
    expect(none.calls).toEqual([]);
    expect(() => hal.hwRand()).toThrow('Timeout on Random number');
  });

  it('refuses image numbers for a context block of another size', () => {
    expect(() => renewalImageNumbers(CURVE, { ...HKDF, constants: { ...HKDF.constants, CTX_SIZE: 140 } })).toThrow(/context block is 140 bytes; renewal-crypto.ts lays out 136/);
  });
});
