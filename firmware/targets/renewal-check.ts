// Runs the board's renewal crypto (hal/espruino/renewal-crypto.ts, the curve25519 and hkdf-sha256
// kernels read from Storage as the factory writes them) on the interpreter itself, bundled as the
// firmware is: `dist/renewal-check.js` as .bootcde on Espruino's 32-bit ARM build under qemu-arm
// (ESPRUINO_ARM_BIN) or on a board, with sealpost.c25 and sealpost.hkd in Storage
// (test/firmware/renewal-crypto-arm.test.ts). The console gets three commands, each answering one
// line "R<id> ...":
//   RENEW(id, pkR, info, psk, pskId, ikm, meter)  hex inputs; answers the 88 bytes of setupPskS in hex
//       (or "ERR <message>"), the milliseconds it took and process.memory().usage before, at the
//       deepest kernel call (meter true: E.nativeCall wrapped to read the usage before every call,
//       which costs time, so timed runs pass false) and after it returned (the 88-byte result held);
//   VERIFY(id, pk, msg, sig)  answers 1 or 0 (or "ERR <message>") and the milliseconds;
//   RAND(id)  answers two words of hwRand (or "ERR <message>").
import { espruinoE, exposeGlobal, printLine as print, secondsNow, storageModule } from '../../hal/espruino/globals.js';
import type { EGlobal } from '../../hal/espruino/globals.js';
import { espruinoRenewalCrypto, renewalImageNumbers } from '../../hal/espruino/renewal-crypto.js';
import { IMAGE as CURVE } from '../../kernel/curve25519/image.js';
import { IMAGE as HKDF } from '../../kernel/hkdf-sha256/image.js';
import { fromHexUnchecked, toHex } from '../../protocol/wire/hex.js';

declare const process: { memory(): { usage: number } };
declare function setInterval(fn: () => void, ms: number): unknown;

const E = espruinoE();
const IMAGE = renewalImageNumbers(CURVE, HKDF);
let deepest = 0;

function usage(): number {
  return process.memory().usage;
}

// The interpreter's E with nativeCall wrapped: every kernel call first reads the variables in use.
const METERED = {
  CRC32: E.CRC32,
  getAddressOf: E.getAddressOf,
  toFlatString: E.toFlatString,
  toUint8Array: E.toUint8Array,
  hwRand: E.hwRand,
  nativeCall: function (addr: number, sig: string, data?: string) {
    const f = E.nativeCall(addr, sig, data);
    return function (a: number, b: number, c: number, d: number): number {
      const u = usage();
      if (u > deepest) deepest = u;
      return f(a, b, c, d);
    };
  },
} as unknown as EGlobal;

function ms(since: number): string {
  return ((secondsNow() - since) * 1000).toFixed(0);
}

exposeGlobal('RENEW', function (id: number, pk: string, info: string, psk: string, pskId: string, ikm: string, meter: boolean) {
  const k = fromHexUnchecked(pk);
  const i = fromHexUnchecked(info);
  const p = fromHexUnchecked(psk);
  const q = fromHexUnchecked(pskId);
  const m = fromHexUnchecked(ikm);
  // Every local exists before the first reading, so the readings differ only by what the call holds.
  let out: Uint8Array | undefined;
  let err = '';
  let took = '';
  let after = 0;
  let t = 0;
  const before = usage();
  deepest = 0;
  t = secondsNow();
  try {
    out = espruinoRenewalCrypto(meter ? METERED : E, storageModule(), IMAGE).setupPskS(k, i, p, q, m);
  } catch (e) {
    err = 'ERR ' + (e as Error).message;
  }
  took = ms(t);
  after = usage();
  print('R' + id + ' ' + (out ? toHex(out) : err) + ' ' + took + ' ' + before + ' ' + deepest + ' ' + after);
});

exposeGlobal('VERIFY', function (id: number, pk: string, msg: string, sig: string) {
  const t = secondsNow();
  let r: string;
  try {
    r = espruinoRenewalCrypto(E, storageModule(), IMAGE).verify(fromHexUnchecked(pk), fromHexUnchecked(msg), fromHexUnchecked(sig)) ? '1' : '0';
  } catch (e) {
    r = 'ERR ' + (e as Error).message;
  }
  print('R' + id + ' ' + r + ' ' + ms(t));
});

exposeGlobal('RAND', function (id: number) {
  const hal = espruinoRenewalCrypto(E, storageModule(), IMAGE);
  let r: string;
  try {
    r = hal.hwRand() + ' ' + hal.hwRand();
  } catch (e) {
    r = 'ERR ' + (e as Error).message;
  }
  print('R' + id + ' ' + r);
});

// The Linux build reads console input only while something is pending on its event loop.
setInterval(function () {}, 50);
print('RENEWAL CHECK READY');
