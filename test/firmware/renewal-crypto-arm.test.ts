// Opt-in (ESPRUINO_ARM_BIN: Espruino 2v29 for 32-bit ARM Linux with USE_JIT=1 under qemu-arm, 2,630
// variables of 13 bytes as on a board, ../shared/espruino): the board's renewal crypto,
// hal/espruino/renewal-crypto.ts bundled as the firmware is (dist/renewal-check.js, built and checked by
// `npm run build`), as .bootcde with the two kernel files the factory writes (sealpost.c25, sealpost.hkd)
// in Storage. What it shows, through the console commands of firmware/targets/renewal-check.ts:
// - setupPskS reproduces every PSK-mode derivation of test/vectors/renewal.json (enc, seal key, nonce
//   salt, chain for the fixed ikm), with the kernels executed in place (a .boot0 prelude hands the
//   backend flat strings with an address, as memory-mapped flash is on an nRF52) and, after a restart,
//   copied into RAM (the Linux build's own Storage strings have address 0);
// - verify accepts RFC 8032 section 7.1's vectors and renewal.json's ANNOUNCE signatures, and refuses
//   each with one bit flipped in signature, key or message;
// - a small-order ingest key, an input of the wrong length, a damaged or foreign or missing kernel file
//   are refused with an error saying why (a damaged file is never executed); a 63-byte signature is
//   simply not valid;
// - the work block is held only while a call runs: the variables in use after setupPskS returns are
//   those before it plus its 88-byte result.
// Each case runs in its own directory: the Linux builds keep Storage in ./espruino.flash.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOUNCE_CONTEXT } from '../../protocol/announce.js';
import { CURVE_KERNEL_FILE_NAME, HKDF_KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { bootRenewalCheck, type RenewalCheck, curveKernel as curveBin, hkdfKernel as hkdfBin, KERNELS_IN_PLACE as IN_PLACE } from '../helpers/renewal-check.js';

const BIN = process.env.ESPRUINO_ARM_BIN;
const VECTORS = JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as {
  derivation: { serial: string; ingest_public_key: string; info: string; psk: string; psk_id: string; ikm: string; enc: string; seal_key: string; nonce_salt: string; chain: string }[];
  announce: { renewal_public_key: string; announce: string }[];
};
const RFC8032 = JSON.parse(readFileSync(new URL('../vectors/rfc8032.json', import.meta.url), 'utf8')) as { name: string; pk: string; msg: string; sig: string }[];

function flip(hex: string, bit: number): string {
  const b = Buffer.from(hex, 'hex');
  b[bit >> 3]! ^= 1 << (bit & 7);
  return b.toString('hex');
}

const boot = (files: Record<string, Uint8Array>, boot0?: string) => bootRenewalCheck(BIN!, files, boot0);

/** The answer's text up to its figures: the error message of a refused call. */
const said = (answer: string[], message: string) => expect(answer.join(' ').slice(0, message.length)).toBe(message);
const expected = (v: (typeof VECTORS.derivation)[number]) => v.enc + v.seal_key + v.nonce_salt + v.chain;
const announceSignatures = () =>
  VECTORS.announce.map((a) => ({ pk: a.renewal_public_key, msg: Buffer.from(ANNOUNCE_CONTEXT).toString('hex') + a.announce.slice(0, 88), sig: a.announce.slice(88, 216) }));

describe.runIf(BIN)('the renewal crypto bundle on the 32-bit ARM interpreter with the kernels in Storage ($ESPRUINO_ARM_BIN)', () => {
  let board: RenewalCheck;
  beforeAll(async () => {
    board = await boot({ [CURVE_KERNEL_FILE_NAME]: curveBin(), [HKDF_KERNEL_FILE_NAME]: hkdfBin() }, IN_PLACE);
  }, 300_000);
  afterAll(async () => {
    await board?.session.stop();
  });

  it('runs the kernels in place and reproduces every PSK-mode derivation of renewal.json', async () => {
    expect(board.session.lines.find((l) => l.startsWith('KERNELS at '))).toMatch(/^KERNELS at [1-9]\d* [1-9]\d*$/);
    let first = true;
    for (const v of VECTORS.derivation) {
      const [out, ms, before, , after] = await board.renew(v);
      expect(out, `${v.serial} ikm ${v.ikm.slice(0, 8)}`).toBe(expected(v));
      // What stays after the call: its 88-byte result (a Uint8Array, about 10 variables), nothing of the
      // work block. The interpreter's first call also keeps what it sets up once (measured: about 20
      // more variables, the same on every later call).
      if (!first) expect(Number(after) - Number(before)).toBeLessThanOrEqual(12);
      first = false;
      console.log(`renewal-crypto-arm in place: setupPskS ${ms} ms (qemu emulation), variables before ${before}, after ${after}`);
    }
    const [out, , before, deepest, after] = await board.renew(VECTORS.derivation[0]!, true);
    expect(out).toBe(expected(VECTORS.derivation[0]!));
    expect(Number(deepest)).toBeGreaterThan(Number(before));
    console.log(`renewal-crypto-arm in place: variables before ${before}, at the deepest kernel call ${deepest}, after ${after} (of 2,630)`);
  }, 600_000);

  it('verifies RFC 8032 7.1 and the ANNOUNCE signatures of renewal.json, and refuses each with one bit flipped in signature, key or message', async () => {
    for (const v of [...RFC8032, ...announceSignatures()]) {
      const answer = await board.verify(v.pk, v.msg, v.sig);
      expect(answer.join(' '), `${'name' in v ? v.name : 'ANNOUNCE'} valid`).toMatch(/^1 \d+$/);
      const ms = answer[1];
      console.log(`renewal-crypto-arm in place: verify of ${v.msg.length / 2} bytes ${ms} ms (qemu emulation)`);
      expect((await board.verify(v.pk, v.msg, flip(v.sig, 17))).join(' ')).toMatch(/^0 \d+$/);
      expect((await board.verify(v.pk, v.msg, flip(v.sig, 300))).join(' ')).toMatch(/^0 \d+$/);
      expect((await board.verify(flip(v.pk, 9), v.msg, v.sig)).join(' ')).toMatch(/^0 \d+$/);
      if (v.msg.length) expect((await board.verify(v.pk, flip(v.msg, 0), v.sig)).join(' ')).toMatch(/^0 \d+$/);
    }
  }, 900_000);

  it('refuses a small-order ingest key and inputs of the wrong length, saying why, and hands on hwRand', async () => {
    const v = VECTORS.derivation[0]!;
    said(await board.renew({ ...v, ingest_public_key: '00'.repeat(32) }), `ERR kernel ${CURVE_KERNEL_FILE_NAME} refused the renewal: x25519 with the announced ingest key returned -1`);
    said(await board.renew({ ...v, ikm: v.ikm.slice(2) }), 'ERR renewal ikm expected 32 bytes, got 31 ');
    said(await board.renew({ ...v, psk_id: '' }), 'ERR renewal psk_id expected 1 to 64 bytes, got 0 ');
    said(await board.renew({ ...v, info: 'ab'.repeat(65) }), 'ERR renewal info expected at most 64 bytes, got 65 ');
    expect((await board.verify(v.ingest_public_key, '', '00'.repeat(63))).join(' ')).toMatch(/^0 \d+$/);
    // After the refusals the kernels still give the right answer.
    expect((await board.renew(v))[0]).toBe(expected(v));
    const words = (await board.ask((id) => `RAND(${id})`)).map(Number);
    expect(words).toHaveLength(2);
    expect(words.every((w) => Number.isInteger(w))).toBe(true);
    expect(words[0]).not.toBe(words[1]);
  }, 600_000);

  it('copies the kernels into RAM where Storage strings have no address (the Linux build) and derives and verifies the same', async () => {
    const copied = await boot({ [CURVE_KERNEL_FILE_NAME]: curveBin(), [HKDF_KERNEL_FILE_NAME]: hkdfBin() });
    try {
      const v = VECTORS.derivation[1]!;
      expect((await copied.renew(v))[0]).toBe(expected(v));
      const [out, ms, before, deepest, after] = await copied.renew(v, true);
      expect(out).toBe(expected(v));
      expect(Number(after) - Number(before)).toBeLessThanOrEqual(12);
      console.log(`renewal-crypto-arm copied: setupPskS (metered) ${ms} ms; variables before ${before}, deepest ${deepest}, after ${after}`);
      const a = announceSignatures()[0]!;
      expect((await copied.verify(a.pk, a.msg, a.sig))[0]).toBe('1');
    } finally {
      await copied.session.stop();
    }
  }, 300_000);

  it('refuses a damaged, foreign or missing kernel file before executing it, saying which and what to do', async () => {
    const v = VECTORS.derivation[0]!;
    const a = announceSignatures()[0]!;
    const damaged = hkdfBin();
    damaged[1000]! ^= 0x04;
    const one = await boot({ [CURVE_KERNEL_FILE_NAME]: curveBin(), [HKDF_KERNEL_FILE_NAME]: damaged }, IN_PLACE);
    try {
      said(await one.renew(v), `ERR kernel ${HKDF_KERNEL_FILE_NAME} is damaged or not this firmware's: flash the device again`);
      // verify needs only the curve kernel, which is intact.
      expect((await one.verify(a.pk, a.msg, a.sig))[0]).toBe('1');
    } finally {
      await one.session.stop();
    }
    // The hkdf image under the curve kernel's name (a foreign file), and no hkdf file at all.
    const two = await boot({ [CURVE_KERNEL_FILE_NAME]: hkdfBin() });
    try {
      said(await two.verify(a.pk, a.msg, a.sig), `ERR kernel ${CURVE_KERNEL_FILE_NAME} is damaged or not this firmware's: flash the device again`);
      said(await two.renew(v), `ERR kernel ${CURVE_KERNEL_FILE_NAME} is damaged or not this firmware's: flash the device again`);
    } finally {
      await two.session.stop();
    }
    const three = await boot({ [CURVE_KERNEL_FILE_NAME]: curveBin() });
    try {
      said(await three.renew(v), `ERR kernel ${HKDF_KERNEL_FILE_NAME} is missing: provision this device with sealpost flash`);
    } finally {
      await three.session.stop();
    }
  }, 600_000);
});
