// The committed curve25519 kernel image (kernel/curve25519/curve25519.bin) executed by qemu-arm through
// kernel/curve25519/harness.c: RFC 7748 sections 5.2 and 6.1 (with the 1 and 1,000 iteration results),
// RFC 8032 section 7.1 (TEST 1, 2, 3, 1024, SHA(abc)), FIPS 180-4's SHA-512("abc"), every case of
// Wycheproof's x25519_test.json and ed25519_test.json, and 10,000 random cases each of X25519 and
// Ed25519 verification (plus 2,000 of SHA-512) against @noble/curves and @noble/hashes, with
// mutated signatures, keys and messages, small-order and mixed-order points, non-canonical encodings.
// Every kernel call runs on a painted stack; the deepest must stay under 2 KB.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { IMAGE } from '../../kernel/curve25519/image.js';
import { buildCurveHarness, countCurveInstructions, runCurve25519, startCurve25519 } from '../../kernel/curve25519/run.js';
import { kernelFiles } from '../../kernel/build.js';
import { missingEmulation } from '../../kernel/harness.js';

const RANDOM_X25519 = 10_000;
const RANDOM_ED25519 = 10_000;
const RANDOM_SHA512 = 2_000;
const STACK_LIMIT = 2048;
const SLOW = 600_000;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const le = (n: bigint): Uint8Array => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 255n);
  return out;
};
const fromLe = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);

/** Deterministic bytes from a printed seed: SHA-256(seed || counter) blocks. */
function stream(seed: string): { bytes(n: number): Uint8Array; int(n: number): number } {
  let counter = 0;
  let pool = Buffer.alloc(0);
  const bytes = (n: number): Uint8Array => {
    while (pool.length < n) pool = Buffer.concat([pool, createHash('sha256').update(`${seed}/${counter++}`).digest()]);
    const out = new Uint8Array(pool.subarray(0, n));
    pool = pool.subarray(n);
    return out;
  };
  return { bytes, int: (n: number) => Buffer.from(bytes(4)).readUInt32LE(0) % n };
}
const SEED = process.env.SEALPOST_TEST_SEED ?? randomBytes(8).toString('hex');

const nobleX25519 = (scalar: Uint8Array, u: Uint8Array): string => {
  try {
    return hex(x25519.getSharedSecret(scalar, u));
  } catch {
    return 'rejected';
  }
};
const nobleVerify = (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): number => {
  try {
    return ed25519.verify(sig, msg, pk, { zip215: false }) ? 1 : 0;
  } catch {
    return 0;
  }
};
/**
 * Genuine keys from a 32-byte secret through OpenSSL (node:crypto), which makes them faster than noble:
 * noble is the reference checked against, not the source of inputs. PKCS#8 of RFC 8410.
 */
const privateKey = (algorithm: 'x25519' | 'ed25519', secret: Uint8Array): KeyObject =>
  createPrivateKey({ key: Buffer.concat([Buffer.from(`302e020100300506032b65${algorithm === 'x25519' ? '6e' : '70'}04220420`, 'hex'), secret]), format: 'der', type: 'pkcs8' });
const rawPublic = (key: KeyObject): Uint8Array => new Uint8Array(createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(12));
const vcmd = (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): string => `V ${hex(sig)} ${msg.length ? hex(msg) : '-'} ${hex(pk)}`;

describe('curve25519 kernel image', () => {
  it('is the file image.ts describes (size, SHA-256) and within its 7.5 KB budget', () => {
    const bin = readFileSync(kernelFiles('curve25519').bin);
    expect(bin.length).toBe(IMAGE.size);
    expect(createHash('sha256').update(bin).digest('hex')).toBe(IMAGE.sha256);
    for (const offset of Object.values(IMAGE.entries)) expect(offset % 2 === 0 && offset < IMAGE.size).toBe(true);
    expect(IMAGE.size).toBeLessThanOrEqual(7680);
  });
});

const missing = missingEmulation();
if (missing) console.warn(`test/kernel/curve25519.test.ts: emulated kernel tests skipped: ${missing}`);

describe.skipIf(missing !== undefined)(`curve25519 kernel under qemu-arm${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let harness = '';
  let deepest = 0;
  /** Runs commands whose answers end with the stack bytes used; returns the answers without them. */
  const strip = (line: string): string => {
    const cut = line.lastIndexOf(' ');
    deepest = Math.max(deepest, Number(line.slice(cut + 1)));
    return line.slice(0, cut);
  };
  const run = (commands: string[]): string[] => runCurve25519(harness, commands).map(strip);
  /** The kernel's answers, computed by qemu while this process computes noble's. */
  const start = (commands: string[]): Promise<string[]> => startCurve25519(harness, commands).then((lines) => lines.map(strip));
  beforeAll(() => {
    harness = buildCurveHarness();
  });

  it('computes RFC 7748 section 5.2 and 6.1', () => {
    const commands = [
      'X a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4 e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c',
      'X 4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493',
      'B 77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
      'B 5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb',
      'X 77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
      'X 5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb 8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    ];
    const rfc = [
      'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552 0',
      '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957 0',
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a 0',
      'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f 0',
      '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742 0',
      '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742 0',
    ];
    // the transcription is right: noble gives the same values
    const noble = commands.map((c) => {
      const [op, k, u] = c.split(' ');
      return `${op === 'B' ? hex(x25519.getPublicKey(unhex(k!))) : nobleX25519(unhex(k!), unhex(u!))} 0`;
    });
    expect(noble).toEqual(rfc);
    expect(run(commands)).toEqual(rfc);
  });

  it('reaches RFC 7748 section 5.2 after 1 and 1,000 iterations', () => {
    const nine = '09'.padEnd(64, '0');
    expect(runCurve25519(harness, [`I ${nine} ${nine} 1`, `I ${nine} ${nine} 1000`])).toEqual([
      '422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079',
      '684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51',
    ]);
  }, SLOW);

  it('verifies RFC 8032 section 7.1 TEST 1, 2, 3, 1024 and SHA(abc), and refuses each with one bit flipped', () => {
    const vectors = JSON.parse(readFileSync(new URL('../vectors/rfc8032.json', import.meta.url), 'utf8')) as { name: string; pk: string; msg: string; sig: string }[];
    expect(vectors.map((v) => v.name)).toEqual(['TEST 1', 'TEST 2', 'TEST 3', 'TEST 1024', 'TEST SHA(abc)']);
    const commands: string[] = [];
    const expected: string[] = [];
    for (const v of vectors) {
      const [pk, msg, sig] = [unhex(v.pk), unhex(v.msg), unhex(v.sig)];
      expect(nobleVerify(sig, msg, pk)).toBe(1); // the transcription is right
      commands.push(vcmd(sig, msg, pk));
      expected.push('1');
      for (const part of ['sig', 'pk', 'msg'] as const) {
        const copy = { sig: sig.slice(), pk: pk.slice(), msg: msg.slice() };
        if (copy[part].length === 0) continue;
        copy[part][5 % copy[part].length]! ^= 0x10;
        commands.push(vcmd(copy.sig, copy.msg, copy.pk));
        expected.push('0');
      }
    }
    expect(run(commands)).toEqual(expected);
    // TEST SHA(abc)'s message is SHA-512("abc") (FIPS 180-4 C.1), computed by the kernel's own SHA-512.
    expect(run(['H 616263'])).toEqual([vectors[4]!.msg]);
  });

  it('agrees with Wycheproof x25519_test.json and @noble/curves on every tcId', () => {
    const file = JSON.parse(readFileSync(new URL('../vectors/wycheproof/x25519_test.json', import.meta.url), 'utf8')) as {
      testGroups: { tests: { tcId: number; public: string; private: string; shared: string; result: string; flags: string[] }[] }[];
    };
    const tests = file.testGroups.flatMap((g) => g.tests);
    expect(tests.length).toBe(518);
    const out = run(tests.map((t) => `X ${t.private} ${t.public}`));
    const rows = tests.map((t, i) => {
      const [shared, ret] = out[i]!.split(' ');
      const noble = nobleX25519(unhex(t.private), unhex(t.public));
      // The kernel computes every case (RFC 7748's decoding: bit 255 masked, u >= p taken mod p); an all-zero
      // result is reported by -1, which the device treats as a refusal, as noble refuses such keys.
      const kernel = ret === '-1' ? 'rejected' : shared;
      return { tcId: t.tcId, kernel, noble, shared: t.shared, ret, result: t.result };
    });
    expect(rows.filter((r) => r.kernel !== r.noble)).toEqual([]);
    // Wycheproof's expected shared value, byte for byte, on every case (zero results included, as all-zero bytes).
    expect(rows.filter((r) => out[r.tcId - 1]!.split(' ')[0] !== r.shared)).toEqual([]);
    // Exactly the all-zero cases are refused.
    expect(rows.filter((r) => (r.ret === '-1') !== (r.shared === '0'.repeat(64)))).toEqual([]);
  });

  it('agrees with Wycheproof ed25519_test.json and @noble/curves (zip215: false) on every tcId', () => {
    const file = JSON.parse(readFileSync(new URL('../vectors/wycheproof/ed25519_test.json', import.meta.url), 'utf8')) as {
      testGroups: { publicKey: { pk: string }; tests: { tcId: number; msg: string; sig: string; result: string }[] }[];
    };
    const tests = file.testGroups.flatMap((g) => g.tests.map((t) => ({ ...t, pk: g.publicKey.pk })));
    expect(tests.length).toBe(151);
    // The kernel takes a 64-byte signature; a signature of another length is refused by its caller
    // (the device's ANNOUNCE has a fixed layout), as noble refuses it.
    const sized = tests.filter((t) => t.sig.length === 128);
    const out = run(sized.map((t) => vcmd(unhex(t.sig), unhex(t.msg), unhex(t.pk))));
    const kernel = new Map(sized.map((t, i) => [t.tcId, Number(out[i])]));
    const rows = tests.map((t) => ({
      tcId: t.tcId,
      kernel: kernel.get(t.tcId) ?? 0,
      noble: nobleVerify(unhex(t.sig), unhex(t.msg), unhex(t.pk)),
      wycheproof: t.result === 'valid' ? 1 : 0,
    }));
    expect(rows.filter((r) => r.kernel !== r.noble)).toEqual([]);
    // Where Wycheproof's result differs from both: none (no case here has a small-order key or an
    // equation that holds only with the cofactor).
    expect(rows.filter((r) => r.kernel !== r.wycheproof)).toEqual([]);
    expect(sized.length).toBeGreaterThan(100);
  });

  it(`agrees with @noble/hashes on ${RANDOM_SHA512} random SHA-512 messages (0..400 bytes; seed ${SEED})`, () => {
    const rnd = stream(`${SEED}/sha512`);
    const msgs = Array.from({ length: RANDOM_SHA512 }, (_, i) => rnd.bytes(i < 300 ? i : rnd.int(401)));
    const out = run(msgs.map((m) => `H ${m.length ? hex(m) : '-'}`));
    const bad = msgs.flatMap((m, i) => (out[i] === hex(sha512(m)) ? [] : [{ seed: SEED, msg: hex(m) }]));
    expect(bad).toEqual([]);
  }, SLOW);

  it(`agrees with @noble/curves on ${RANDOM_X25519} random X25519 cases (seed ${SEED})`, async () => {
    const rnd = stream(`${SEED}/x25519`);
    // Encodings of the points of small order (all-zero result for every clamped scalar): Wycheproof's.
    const zero = JSON.parse(readFileSync(new URL('../vectors/wycheproof/x25519_test.json', import.meta.url), 'utf8'))
      .testGroups.flatMap((g: { tests: { public: string; flags: string[] }[] }) => g.tests)
      .filter((t: { flags: string[] }) => t.flags.includes('ZeroSharedSecret'))
      .map((t: { public: string }) => t.public) as string[];
    const cases: { scalar: Uint8Array; u: Uint8Array | undefined }[] = [];
    for (let i = 0; i < RANDOM_X25519; i++) {
      const scalar = rnd.bytes(32);
      const kind = i % 10;
      let u: Uint8Array | undefined;
      if (kind === 0) u = undefined; // x25519_base
      else if (kind <= 3) u = rnd.bytes(32); // high bit set half the time: masked
      else if (kind <= 6) u = rawPublic(privateKey('x25519', rnd.bytes(32))); // a genuine public key
      else if (kind === 7) {
        u = le(P + BigInt(rnd.int(19))); // non-canonical u in [p, 2^255)
        if (rnd.int(2)) u[31]! |= 0x80;
      } else if (kind === 8) u = unhex(zero[rnd.int(zero.length)]!);
      else {
        u = rawPublic(privateKey('x25519', rnd.bytes(32)));
        u[31]! |= 0x80; // a genuine key with bit 255 set: the same result as without
      }
      cases.push({ scalar, u });
    }
    const kernelOut = start(cases.map((c) => (c.u ? `X ${hex(c.scalar)} ${hex(c.u)}` : `B ${hex(c.scalar)}`)));
    const nobleOut = cases.map((c) => (c.u ? nobleX25519(c.scalar, c.u) : hex(x25519.getPublicKey(c.scalar))));
    const out = await kernelOut;
    const bad = cases.flatMap((c, i) => {
      const [shared, ret] = out[i]!.split(' ');
      const kernel = ret === '-1' ? (shared === '0'.repeat(64) ? 'rejected' : 'rejected-nonzero') : shared;
      const noble = nobleOut[i];
      return kernel === noble ? [] : [{ seed: SEED, i, scalar: hex(c.scalar), u: c.u && hex(c.u), kernel, noble }];
    });
    expect(bad.slice(0, 5)).toEqual([]);
  }, SLOW);

  it(`agrees with @noble/curves on ${RANDOM_ED25519} random Ed25519 verifications, mutated and adversarial (seed ${SEED})`, async () => {
    const rnd = stream(`${SEED}/ed25519`);
    const Point = ed25519.Point;
    // The 8 points of order dividing 8, as multiples of one of order 8.
    const decodable = (): typeof Point.BASE => {
      for (;;) {
        try {
          return Point.fromBytes(rnd.bytes(32));
        } catch {
          // not a point: draw again
        }
      }
    };
    let t8 = Point.ZERO;
    while (t8.multiplyUnsafe(4n).equals(Point.ZERO)) {
      const q = decodable();
      t8 = q.multiplyUnsafe(L - 1n).add(q); // [L]Q: Q's torsion part, of order 8 for half the points
    }
    const torsion = Array.from({ length: 8 }, (_, i) => (i === 0 ? Point.ZERO : t8.multiplyUnsafe(BigInt(i))));
    expect(torsion.every((t) => t.multiplyUnsafe(8n).equals(Point.ZERO))).toBe(true);
    expect(new Set(torsion.map((t) => t.toHex())).size).toBe(8);
    // Non-canonical and degenerate encodings: y = p + j (j < 19) with either sign, and x = 0 with the sign bit set.
    const special = (): Uint8Array => {
      const which = rnd.int(3);
      if (which === 0) {
        const b = le(P + BigInt(rnd.int(19)));
        if (rnd.int(2)) b[31]! |= 0x80;
        return b;
      }
      if (which === 1) {
        const b = le(rnd.int(2) ? 1n : P - 1n); // y = 1 (identity) or -1 (order 2): x = 0
        b[31]! |= 0x80;
        return b;
      }
      return torsion[rnd.int(8)]!.toBytes();
    };
    const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m;
    const hashToScalar = (...parts: Uint8Array[]): bigint => mod(fromLe(sha512(Buffer.concat(parts))), L);
    const cases: { sig: Uint8Array; msg: Uint8Array; pk: Uint8Array; kind: number }[] = [];
    // 2,500 genuine signatures (a fifth of them over 64 bytes, ANNOUNCE's length), each the base of 4 cases.
    const signed = Array.from({ length: RANDOM_ED25519 / 4 }, (_, i) => {
      const key = privateKey('ed25519', rnd.bytes(32));
      const msg = rnd.bytes(i % 5 === 0 ? 64 : rnd.int(300));
      return { pk: rawPublic(key), msg, sig: new Uint8Array(sign(null, msg, key)) };
    });
    for (let i = 0; i < RANDOM_ED25519; i++) {
      const base = signed[i % signed.length]!;
      let pk: Uint8Array = base.pk.slice();
      let msg: Uint8Array = base.msg.slice();
      let sig: Uint8Array = base.sig.slice();
      const kind = i % 12;
      if (kind === 1) sig[rnd.int(64)]! ^= 1 << rnd.int(8);
      else if (kind === 2 && msg.length > 0) msg[rnd.int(msg.length)]! ^= 1 << rnd.int(8);
      else if (kind === 3) pk[rnd.int(32)]! ^= 1 << rnd.int(8);
      else if (kind === 4) sig.set(le(fromLe(sig.subarray(32)) + L), 32); // S + L: the same point, refused
      else if (kind === 5) sig.set(special(), 0); // R small-order or badly encoded
      else if (kind === 6) pk = special(); // A small-order or badly encoded
      else if (kind === 7) {
        // A of small order with a signature that satisfies the equation: R = [r]B, S = r (k A vanishes under [8]).
        const a = torsion[rnd.int(8)]!;
        pk = a.toBytes();
        const r = mod(fromLe(rnd.bytes(32)), L);
        sig = new Uint8Array(64);
        sig.set(Point.BASE.multiply(r || 1n).toBytes(), 0);
        sig.set(le(r || 1n), 32);
      } else if (kind === 8 || kind === 9) {
        // Mixed-order key and R: A = [a]B + T_A, R = [r]B + T_R, S = r + k a. [S]B - [k]A - R = -[k]T_A - T_R:
        // the cofactored equation holds, the cofactorless one only when that torsion sum is zero.
        const a = mod(fromLe(rnd.bytes(32)), L) || 1n;
        const r = mod(fromLe(rnd.bytes(32)), L) || 1n;
        const A = Point.BASE.multiply(a).add(torsion[rnd.int(8)]!);
        const R = Point.BASE.multiply(r).add(torsion[kind === 8 ? rnd.int(8) : 0]!);
        pk = A.toBytes();
        const k = hashToScalar(R.toBytes(), pk, msg);
        sig = new Uint8Array(64);
        sig.set(R.toBytes(), 0);
        sig.set(le(mod(r + k * a, L)), 32);
      } else if (kind === 10) {
        sig = rnd.bytes(64); // random bytes: S >= L or R not a point, mostly
        if (rnd.int(2)) sig[63]! &= 0x0f;
      } else if (kind === 11) msg = rnd.bytes(msg.length); // another message
      cases.push({ sig, msg, pk, kind });
    }
    const kernelOut = start(cases.map((c) => vcmd(c.sig, c.msg, c.pk)));
    const nobleOut = cases.map((c) => nobleVerify(c.sig, c.msg, c.pk));
    const out = await kernelOut;
    const bad = cases.flatMap((c, i) => {
      const noble = nobleOut[i];
      return Number(out[i]) === noble ? [] : [{ seed: SEED, i, kind: c.kind, sig: hex(c.sig), msg: hex(c.msg), pk: hex(c.pk), kernel: out[i], noble }];
    });
    expect(bad.slice(0, 5)).toEqual([]);
    // The adversarial kinds really exercise both outcomes.
    const accepted = (kind: number) => cases.filter((c, i) => c.kind === kind && out[i] === '1').length;
    expect(accepted(0)).toBeGreaterThan(0);
    expect(accepted(8) + accepted(9)).toBeGreaterThan(0); // cofactored-only signatures accepted, as by noble
    expect(accepted(7)).toBe(0); // small-order keys refused, as by noble's strict mode
  }, SLOW);

  it('keeps every call under 2 KB of stack (these, and every call of the tests above)', () => {
    const v = (JSON.parse(readFileSync(new URL('../vectors/rfc8032.json', import.meta.url), 'utf8')) as { pk: string; msg: string; sig: string }[])[3]!;
    const own = runCurve25519(harness, [
      `X ${'ff'.repeat(32)} ${'ff'.repeat(32)}`,
      `B ${'11'.repeat(32)}`,
      vcmd(unhex(v.sig), unhex(v.msg), unhex(v.pk)),
      `H ${v.msg}`,
    ]).map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)));
    expect(Math.min(...own)).toBeGreaterThan(0);
    expect(Math.max(...own, deepest)).toBeLessThan(STACK_LIMIT);
  });

  it('runs X25519 with the same instruction count for unrelated scalars and points (no secret-dependent branch)', () => {
    const a = `X ${'00'.repeat(31)}40 ${'09'.padEnd(64, '0')}`;
    const b = `X ${'ff'.repeat(32)} ${hex(x25519.getPublicKey(unhex('11'.repeat(32))))}`;
    const c = `X ${hex(unhex('a5'.repeat(32)))} ${'ee'.repeat(32)}`;
    const counts = [a, b, c].map((cmd) => countCurveInstructions(harness, [cmd]));
    expect(new Set(counts).size).toBe(1);
  }, SLOW);
});
