// The committed hkdf-sha256 kernel image (kernel/hkdf-sha256/hkdf-sha256.bin) executed by qemu-arm
// through kernel/hkdf-sha256/harness.c: FIPS 180-4's SHA-256 examples, RFC 4231's HMAC-SHA256
// cases, RFC 5869 A.1-A.3, RFC 9180 A.1.2 (PSK mode) step by step and A.1.1 / A.7.1 (base mode),
// chain_0 of test/vectors/renewal.json, a renewal with this protocol's own inputs, the refusals,
// the stack bound, and random cases against @noble/hashes, a PSK-mode reference built on it
// (RFC 9180 section 5.1) and protocol/hpke.ts (base mode). The seed of the random cases is printed
// on failure; KERNEL_TEST_SEED=<n> repeats a run.
import { x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { kernelFiles } from '../../kernel/build.js';
import { missingEmulation } from '../../kernel/harness.js';
import { IMAGE } from '../../kernel/hkdf-sha256/image.js';
import { buildHkdfHarness, profileHkdf, renewalCommand, runHkdf } from '../../kernel/hkdf-sha256/run.js';
import { setupBaseS } from '../../protocol/hpke.js';

const RANDOM = 10_000;
const RANDOM_BASE = 500;

const hex = (b: Uint8Array): string => (b.length === 0 ? '-' : Buffer.from(b).toString('hex'));
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const be32 = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
const bytes = (n: number, f: (i: number) => number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => f(i));

// RFC 9180 section 5.1 and 5.3 for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256, written here on
// @noble/hashes' HKDF: the reference the kernel's PSK mode is compared with (protocol/hpke.ts has
// base mode only). psk undefined: base mode.
const VERSION = ascii('HPKE-v1');
const kemSuite = cat(ascii('KEM'), Uint8Array.of(0x00, 0x20));
const hpkeSuite = (aead: number): Uint8Array => cat(ascii('HPKE'), Uint8Array.of(0x00, 0x20, 0x00, 0x01, aead >> 8, aead & 255));
const labeledExtract = (suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array => extract(sha256, cat(VERSION, suite, ascii(label), ikm), salt);
const labeledExpand = (suite: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, L: number): Uint8Array =>
  expand(sha256, prk, cat(Uint8Array.of(L >> 8, L & 255), VERSION, suite, ascii(label), info), L);

interface Schedule {
  sharedSecret: Uint8Array;
  keyScheduleContext: Uint8Array;
  secret: Uint8Array;
  exporterSecret: Uint8Array;
  exports: Uint8Array[];
}

function reference(aead: number, dh: Uint8Array, enc: Uint8Array, pkR: Uint8Array, info: Uint8Array, psk: { psk: Uint8Array; id: Uint8Array } | undefined, exports: [Uint8Array, number][]): Schedule {
  const sharedSecret = labeledExpand(kemSuite, labeledExtract(kemSuite, new Uint8Array(0), 'eae_prk', dh), 'shared_secret', cat(enc, pkR), 32);
  const suite = hpkeSuite(aead);
  const empty = new Uint8Array(0);
  const keyScheduleContext = cat(Uint8Array.of(psk ? 1 : 0), labeledExtract(suite, empty, 'psk_id_hash', psk?.id ?? empty), labeledExtract(suite, empty, 'info_hash', info));
  const secret = labeledExtract(suite, sharedSecret, 'secret', psk?.psk ?? empty);
  const exporterSecret = labeledExpand(suite, secret, 'exp', keyScheduleContext, 32);
  return { sharedSecret, keyScheduleContext, secret, exporterSecret, exports: exports.map(([c, L]) => labeledExpand(suite, exporterSecret, 'sec', c, L)) };
}

const rCommand = (aead: number, dh: Uint8Array, enc: Uint8Array, pkR: Uint8Array, info: Uint8Array, psk: { psk: Uint8Array; id: Uint8Array } | undefined, exports: [Uint8Array, number][]): string =>
  `R ${aead.toString(16).padStart(4, '0')} ${hex(dh)} ${hex(enc)} ${hex(pkR)} ${hex(info)} ${psk ? hex(psk.psk) : '-'} ${psk ? hex(psk.id) : '-'}${exports.map(([c, L]) => ` ${hex(c)} ${L}`).join('')}`;
const rAnswer = (s: Schedule): string => [s.sharedSecret, s.exporterSecret, ...s.exports].map((b) => Buffer.from(b).toString('hex')).join(' ');

/** mulberry32: a small seeded generator, so that a failing random case can be run again. */
function rng(seed: number): { int: (lo: number, hi: number) => number; bytes: (n: number) => Uint8Array } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), bytes: (n) => bytes(n, () => Math.floor(next() * 256)) };
}

describe('hkdf-sha256 kernel image', () => {
  it('is the file image.ts describes, within its size budget (2.5 KB)', () => {
    const bin = readFileSync(kernelFiles('hkdf-sha256').bin);
    expect(bin.length).toBe(IMAGE.size);
    expect(createHash('sha256').update(bin).digest('hex')).toBe(IMAGE.sha256);
    expect(bin.length).toBeLessThanOrEqual(2560);
    for (const offset of Object.values(IMAGE.entries)) expect(offset % 2 === 0 && offset < IMAGE.size).toBe(true);
  });
});

const missing = missingEmulation();
if (missing) console.warn(`test/kernel/hkdf-sha256.test.ts: emulated kernel tests skipped: ${missing}`);

describe.skipIf(missing !== undefined)(`hkdf-sha256 kernel under qemu-arm${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let harness = '';
  beforeAll(() => {
    harness = buildHkdfHarness();
  });

  it('hashes the FIPS 180-4 / NIST SHA-256 examples', () => {
    const out = runHkdf(harness, [
      'H -',
      `H ${hex(ascii('abc'))}`,
      `H ${hex(ascii('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))}`,
      `H ${hex(ascii('abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu'))}`,
      'A 1000000',
    ]);
    expect(out).toEqual([
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
      'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
    ]);
  });

  it('computes RFC 4231 test cases 1-7 (HMAC-SHA256; case 5 truncated to 128 bits)', () => {
    const aa131 = bytes(131, () => 0xaa);
    const cases: [Uint8Array, Uint8Array, string][] = [
      [bytes(20, () => 0x0b), ascii('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
      [ascii('Jefe'), ascii('what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
      [bytes(20, () => 0xaa), bytes(50, () => 0xdd), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
      [bytes(25, (i) => i + 1), bytes(50, () => 0xcd), '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
      [bytes(20, () => 0x0c), ascii('Test With Truncation'), 'a3b6167473100ee06e0c796c2955552b'],
      [aa131, ascii('Test Using Larger Than Block-Size Key - Hash Key First'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
      [
        aa131,
        ascii('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
        '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
      ],
    ];
    const out = runHkdf(harness, cases.map(([k, m]) => `M ${hex(k)} ${hex(m)}`));
    expect(out.map((o, i) => o.slice(0, cases[i]![2].length))).toEqual(cases.map((c) => c[2]));
  });

  it('computes RFC 5869 A.1-A.3 (HKDF-SHA256: PRK through hmac_sha256, OKM through hkdf_expand)', () => {
    const cases = [
      {
        ikm: bytes(22, () => 0x0b), salt: bytes(13, (i) => i), info: bytes(10, (i) => 0xf0 + i), L: 42,
        prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
        okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
      },
      {
        ikm: bytes(80, (i) => i), salt: bytes(80, (i) => 0x60 + i), info: bytes(80, (i) => 0xb0 + i), L: 82,
        prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
        okm: 'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
      },
      {
        ikm: bytes(22, () => 0x0b), salt: new Uint8Array(0), info: new Uint8Array(0), L: 42,
        prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
        okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
      },
    ];
    const out = runHkdf(harness, cases.flatMap((c) => [`M ${hex(c.salt)} ${hex(c.ikm)}`, `E ${c.prk} ${hex(c.info)} ${c.L}`]));
    expect(out).toEqual(cases.flatMap((c) => [c.prk, c.okm]));
  });

  describe('RFC 9180 A.1.2: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, PSK mode', () => {
    // Transcribed from RFC 9180 appendix A.1.2 ("PSK Setup Information" and "Exported Values").
    const v = {
      info: '4f6465206f6e2061204772656369616e2055726e',
      skRm: 'c5eb01eb457fe6c6f57577c5413b931550a162c71a03ac8d196babbd4e5ce0fd',
      pkRm: '9fed7e8c17387560e92cc6462a68049657246a09bfa8ade7aefe589672016366',
      psk: '0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82',
      psk_id: '456e6e796e20447572696e206172616e204d6f726961',
      enc: '0ad0950d9fb9588e59690b74f1237ecdf1d775cd60be2eca57af5a4b0471c91b',
      shared_secret: '727699f009ffe3c076315019c69648366b69171439bd7dd0807743bde76986cd',
      key_schedule_context:
        '01e78d5cf6190d275863411ff5edd0dece5d39fa48e04eec1ed9b71be34729d18ccb6cffde367bb0565ba28bb02c90744a20f5ef37f30523526106f637abb05449',
      secret: '3728ab0b024b383b0381e432b47cced1496d2516957a76e2a9f5c8cb947afca4',
      exporter_secret: '3d76025dbbedc49448ec3f9080a1abab6b06e91c0b11ad23c912f043a0ee7655',
      exports: [
        ['-', 32, 'dff17af354c8b41673567db6259fd6029967b4e1aad13023c2ae5df8f4f43bf6'],
        ['00', 32, '6a847261d8207fe596befb52928463881ab493da345b10e1dcc645e3b94e2d95'],
        ['54657374436f6e74657874', 32, '8aff52b45a1be3a734bc7a41e20b4e055ad4c4d22104b0c20285a7c4302401cd'],
      ] as const,
    };
    // The RFC lists shared_secret, not the X25519 result: dh = X25519(skRm, enc), the receiver's side.
    const dh = (): string => hex(x25519.getSharedSecret(unhex(v.skRm), unhex(v.enc)));

    it('ExtractAndExpand(dh, enc || pkRm) gives shared_secret', () => {
      expect(runHkdf(harness, [`X ${dh()} ${v.enc} ${v.pkRm}`])).toEqual([v.shared_secret]);
    });

    it('the key schedule gives key_schedule_context, secret and exporter_secret', () => {
      expect(runHkdf(harness, [`K 0001 ${v.shared_secret} ${v.info} ${v.psk} ${v.psk_id}`])).toEqual([`${v.exporter_secret} ${v.secret} ${v.key_schedule_context}`]);
    });

    it('Export gives every listed exported value, alone and in the whole sequence', () => {
      expect(runHkdf(harness, v.exports.map(([c, L]) => `O 0001 ${v.exporter_secret} ${c} ${L}`))).toEqual(v.exports.map((e) => e[2]));
      const whole = `R 0001 ${dh()} ${v.enc} ${v.pkRm} ${v.info} ${v.psk} ${v.psk_id}${v.exports.map(([c, L]) => ` ${c} ${L}`).join('')}`;
      expect(runHkdf(harness, [whole])).toEqual([[v.shared_secret, v.exporter_secret, ...v.exports.map((e) => e[2])].join(' ')]);
    });

    it('the PSK-mode reference of this test agrees with the RFC (so the random cases compare with a checked reference)', () => {
      const s = reference(0x0001, unhex(dh()), unhex(v.enc), unhex(v.pkRm), unhex(v.info), { psk: unhex(v.psk), id: unhex(v.psk_id) }, v.exports.map(([c, L]) => [unhex(c === '-' ? '' : c), L]));
      expect([s.sharedSecret, s.keyScheduleContext, s.secret, s.exporterSecret, ...s.exports].map((b) => Buffer.from(b).toString('hex'))).toEqual([
        v.shared_secret, v.key_schedule_context, v.secret, v.exporter_secret, ...v.exports.map((e) => e[2]),
      ]);
    });
  });

  it('reproduces RFC 9180 A.1.1 and A.7.1 (base mode) from test/vectors/rfc9180.json', () => {
    const vectors = JSON.parse(readFileSync(new URL('../vectors/rfc9180.json', import.meta.url), 'utf8')) as {
      aead_id: number; info: string; skRm: string; pkRm: string; enc: string; exports: { exporter_context: string; L: number; exported_value: string }[];
    }[];
    const out = runHkdf(harness, vectors.map((v) => rCommand(v.aead_id, x25519.getSharedSecret(unhex(v.skRm), unhex(v.enc)), unhex(v.enc), unhex(v.pkRm), unhex(v.info), undefined, v.exports.map((e) => [unhex(e.exporter_context), e.L]))));
    expect(out.map((line) => line.split(' ').slice(2))).toEqual(vectors.map((v) => v.exports.map((e) => e.exported_value)));
  });

  it('derives chain_0 of every device of test/vectors/renewal.json (factory, base mode)', () => {
    const { provision } = JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as {
      provision: { ingest_public_key: string; serial: string; ephemeral_private_key: string; enc: string; chain_0: string }[];
    };
    const out = runHkdf(harness, provision.map((p) => {
      const dh = x25519.getSharedSecret(unhex(p.ephemeral_private_key), unhex(p.ingest_public_key));
      return rCommand(0xffff, dh, unhex(p.enc), unhex(p.ingest_public_key), ascii(`sealpost/v1 device ${p.serial}`), undefined, [[ascii('sealpost/v1 chain'), 32]]);
    }));
    expect(out.map((line) => line.split(' ')[2])).toEqual(provision.map((p) => p.chain_0));
  });

  it("runs a renewal with this protocol's inputs (docs/protocol.md 12) as the ingest server's SetupPSKR derives it", () => {
    // Device SP-000001 of renewal.json moves from epoch 0 to 1: psk = chain_0, psk_id = "sealpost/v1
    // chain" || epoch 0, info = "sealpost/v1 renew " || serial || epoch 1; fixed randomness.
    const { provision } = JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as { provision: { serial: string; chain_0: string }[] };
    const device = provision[0]!;
    const skNew = sha256(ascii('kernel test: ingest key of epoch 1'));
    const pkNew = x25519.getPublicKey(skNew);
    const skE = sha256(ascii('kernel test: renewal ephemeral key'));
    const enc = x25519.getPublicKey(skE);
    const info = cat(ascii('sealpost/v1 renew '), ascii(device.serial), be32(1));
    const psk = { psk: unhex(device.chain_0), id: cat(ascii('sealpost/v1 chain'), be32(0)) };
    const labels: [Uint8Array, number][] = [[ascii('sealpost/v1 seal key'), 16], [ascii('sealpost/v1 nonce salt'), 8], [ascii('sealpost/v1 chain'), 32]];
    // The server's side: dh from the new ingest private key and the device's enc.
    const server = reference(0xffff, x25519.getSharedSecret(skNew, enc), enc, pkNew, info, psk, labels);
    const command = renewalCommand({ dh: hex(x25519.getSharedSecret(skE, pkNew)), enc: hex(enc), pkR: hex(pkNew), info: hex(info), psk: hex(psk.psk), pskId: hex(psk.id) });
    const [line] = runHkdf(harness, [command]);
    expect(line).toBe(rAnswer(server));
    const [, , sealKey, nonceSalt, chain1] = line!.split(' ');
    expect([sealKey!.length, nonceSalt!.length, chain1!.length]).toEqual([32, 16, 64]);
    expect(chain1).not.toBe(device.chain_0);
  });

  it('accepts the longest inputs and refuses longer ones, writing nothing', () => {
    const ss = '55'.repeat(32);
    const psk = '44'.repeat(32);
    const b = (n: number): string => (n === 0 ? '-' : 'ab'.repeat(n));
    const ref = (info: number, id: number): Schedule => reference(0xffff, unhex('11'.repeat(32)), unhex('22'.repeat(32)), unhex('33'.repeat(32)), unhex(b(info).replace('-', '')), { psk: unhex(psk), id: unhex(b(id)) }, [[unhex(b(32)), 8160]]);
    const longest = ref(64, 64);
    const E = IMAGE.constants;
    expect([E.MAX_INFO, E.MAX_PSK_ID, E.MAX_EXPORTER_CONTEXT, E.MAX_EXPORT]).toEqual([64, 64, 32, 8160]);
    const out = runHkdf(harness, [
      `R ffff ${'11'.repeat(32)} ${'22'.repeat(32)} ${'33'.repeat(32)} ${b(64)} ${psk} ${b(64)} ${b(32)} 8160`,
      `K ffff ${ss} ${b(65)} ${psk} ${b(1)}`,
      `K ffff ${ss} ${b(1)} ${psk} ${b(65)}`,
      `K ffff ${ss} ${b(1)} ${psk} -`,
      `O ffff ${ss} ${b(33)} 16`,
      `O ffff ${ss} ${b(1)} 0`,
      `O ffff ${ss} ${b(1)} 8161`,
      `E ${ss} ${b(1)} 0`,
      `E ${ss} ${b(1)} 8161`,
      `E ${ss} ${b(1)} 8160`,
      `X ${'00'.repeat(32)} ${'22'.repeat(32)} ${'33'.repeat(32)}`,
      `X ${'00'.repeat(31)}01 ${'22'.repeat(32)} ${'33'.repeat(32)}`,
    ]);
    expect(out.slice(0, 1)).toEqual([rAnswer(longest)]);
    expect(out.slice(1, 11)).toEqual([
      `rc -${E.ERR_LENGTH}`, `rc -${E.ERR_LENGTH}`, `rc -${E.ERR_PSK}`, `rc -${E.ERR_LENGTH}`, `rc -${E.ERR_LENGTH}`, `rc -${E.ERR_LENGTH}`,
      `rc -${E.ERR_LENGTH}`, `rc -${E.ERR_LENGTH}`, Buffer.from(expand(sha256, unhex(ss), unhex('ab'), 8160)).toString('hex'), `rc -${E.ERR_ZERO_DH}`,
    ]);
    expect(out[11]).toMatch(/^[0-9a-f]{64}$/);
  });

  it(`uses at most KERNEL_STACK_BOUND (${IMAGE.constants.STACK_BOUND}) bytes of stack in every entry, longest inputs included`, () => {
    const b = (n: number): string => 'cd'.repeat(n);
    const out = runHkdf(harness, [
      'S',
      `H ${b(300)}`,
      `M ${b(200)} ${b(300)}`,
      `E ${b(32)} ${b(80)} 8160`,
      `R ffff ${b(32)} ${b(32)} ${b(32)} ${b(64)} ${b(32)} ${b(64)} ${b(32)} 8160 - 1`,
      `R ffff ${b(32)} ${b(32)} ${b(32)} - - - - 32`,
      'S',
    ]);
    const depth = Number(out.at(-1));
    expect(depth).toBeGreaterThan(100);
    expect(depth).toBeLessThanOrEqual(IMAGE.constants.STACK_BOUND);
    expect(depth).toBeLessThan(2048);
  });

  it('counts instructions and cycles per translation block exactly as one-instruction blocks do', () => {
    const command = `M ${'11'.repeat(32)} ${'22'.repeat(32)}`;
    const perBlock = profileHkdf(harness, [command]);
    expect(perBlock.instructions).toBeGreaterThan(10_000);
    expect(profileHkdf(harness, [command], true)).toEqual(perBlock);
    // Every instruction costs at least one cycle and, with this code's mix, well under four.
    expect(perBlock.cycles / perBlock.instructions).toBeGreaterThan(1);
    expect(perBlock.cycles / perBlock.instructions).toBeLessThan(4);
  });

  it(`agrees with @noble/hashes on ${RANDOM} random SHA-256, HMAC and HKDF cases each, and on ${RANDOM} random PSK-mode HPKE sequences`, () => {
    const seed = Number(process.env.KERNEL_TEST_SEED ?? Math.floor(Math.random() * 2 ** 32));
    const r = rng(seed);
    const commands: string[] = ['N 0'];
    const expected: string[] = ['0'];
    const boundary = [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128];
    for (let i = 0; i < RANDOM; i++) {
      const msg = r.bytes(i % 3 === 0 ? boundary[i % boundary.length]! : r.int(0, 200));
      commands.push(`H ${hex(msg)}`);
      expected.push(hex(sha256(msg)));
      const key = r.bytes(i % 5 === 0 ? [0, 32, 63, 64, 65, 150][i % 6]! : r.int(0, 100));
      const data = r.bytes(r.int(0, 200));
      commands.push(`M ${hex(key)} ${hex(data)}`);
      expected.push(hex(hmac(sha256, key, data)));
      const salt = r.bytes(r.int(0, 80));
      const ikm = r.bytes(r.int(0, 80));
      const info = r.bytes(r.int(0, 80));
      const L = i % 500 === 0 ? r.int(1, 8160) : r.int(1, 100);
      const prk = extract(sha256, ikm, salt);
      commands.push(`M ${hex(salt)} ${hex(ikm)}`, `E ${hex(prk)} ${hex(info)} ${L}`);
      expected.push(hex(prk), hex(expand(sha256, prk, info, L)));
      const psk = { psk: r.bytes(32), id: r.bytes(r.int(1, 64)) };
      const exports: [Uint8Array, number][] = [[r.bytes(r.int(0, 32)), r.int(1, 64)]];
      const aead = i % 4 === 0 ? 0x0001 : 0xffff;
      const args = [aead, r.bytes(32), r.bytes(32), r.bytes(32), r.bytes(r.int(0, 64)), psk, exports] as const;
      commands.push(rCommand(...args));
      expected.push(rAnswer(reference(...args)));
    }
    const started = Date.now();
    const out = runHkdf(harness, commands);
    const wrong = out.map((line, i) => (line === expected[i] ? -1 : i)).filter((i) => i >= 0);
    expect(wrong.slice(0, 3).map((i) => ({ seed, command: commands[i], got: out[i], want: expected[i] })), `KERNEL_TEST_SEED=${seed}`).toEqual([]);
    console.log(`hkdf-sha256 random cases (seed ${seed}): ${commands.length - 1} commands under qemu-arm in ${Date.now() - started} ms`);
  });

  it(`agrees with protocol/hpke.ts (base mode, export-only) on ${RANDOM_BASE} random setups`, () => {
    const seed = Number(process.env.KERNEL_TEST_SEED ?? Math.floor(Math.random() * 2 ** 32));
    const r = rng(seed);
    const commands: string[] = ['N 0'];
    const expected: string[] = ['0'];
    for (let i = 0; i < RANDOM_BASE; i++) {
      const skR = r.bytes(32);
      const pkR = x25519.getPublicKey(skR);
      const skE = r.bytes(32);
      const info = r.bytes(r.int(0, 64));
      const ctxs = [r.bytes(r.int(0, 32)), r.bytes(r.int(0, 32))];
      const Ls = [r.int(1, 64), r.int(1, 64)];
      const { enc, context } = setupBaseS(pkR, info, { ephemeralPrivateKey: skE });
      commands.push(rCommand(0xffff, x25519.getSharedSecret(skR, enc), enc, pkR, info, undefined, [[ctxs[0]!, Ls[0]!], [ctxs[1]!, Ls[1]!]]));
      expected.push([0, 1].map((j) => hex(context.export(ctxs[j]!, Ls[j]!))).join(' '));
    }
    const out = runHkdf(harness, commands).map((line, i) => (i === 0 ? line : line.split(' ').slice(2).join(' ')));
    const wrong = out.map((line, i) => (line === expected[i] ? -1 : i)).filter((i) => i >= 0);
    expect(wrong.slice(0, 3).map((i) => ({ seed, command: commands[i], got: out[i], want: expected[i] })), `KERNEL_TEST_SEED=${seed}`).toEqual([]);
  });
});
