// Seal benchmark on the interpreter (bench/seal-espruino.ts). Seals
// SEALPOST_BENCH.frames 20-byte frames with one backend into one buffer, the
// way the device does (sealInto: nonce and frame assembly included), one per
// timer event as on a device, so the interpreter idles (and collects
// garbage) between seals. Prints the time per seal from getTime(). Under
// valgrind, a run with `seal: false` does the same events without sealing;
// the difference divided by the frame count is the cost of one seal.
import { nativeAesCcm, nativeCcm } from '../../hal/espruino/crypto.js';
import { plainCcm } from '../../hal/plain/crypto.js';
import { createSealer } from '../sealer.js';
import { cryptoAes, espruinoE, printLine as builtinPrint, secondsNow as builtinGetTime, storageModule } from '../../hal/espruino/globals.js';
import { kernelCrypto, kernelEngine, imageNumbers } from '../../hal/espruino/kernel.js';
import { KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import type { Ccm } from '../../hal/types.js';

declare const SEALPOST_BENCH: { backend: string; frames: number; seal: boolean };
declare const process: { memory(): unknown };
declare function setTimeout(fn: () => void, ms: number): unknown;

const KEY = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
const SALT = new Uint8Array([8, 7, 6, 5, 4, 3, 2, 1]);
const FRAME = 20;
const printLine = builtinPrint();
const secondsNow = builtinGetTime();

function engine(name: string): Ccm | undefined {
  const aes = cryptoAes();
  if (name === 'native-ccm') return aes.ccmEncrypt ? nativeCcm(aes, KEY) : undefined;
  if (name === 'native-aes') return aes.encrypt ? nativeAesCcm(aes, KEY, FRAME - 12) : undefined;
  if (name === 'plain-js') return plainCcm(KEY, FRAME - 12);
  // The native-kernel backend's glue (hal/espruino/kernel.ts kernelEngine: addresses, copies, the
  // call and its checks) with the kernel replaced by stand-ins of the same signature that return what
  // the entry points return: the x86-64 build cannot execute Thumb code. A JS function stands in for
  // the native one, so the call itself counts a little more than E.nativeCall's would.
  // The real kernel, where Storage holds it (a board flashed by sealpost flash).
  if (name === 'native-kernel') return storageModule().read(KERNEL_FILE_NAME) !== undefined ? kernelCrypto(espruinoE(), storageModule(), imageNumbers(IMAGE)).ccm(KEY, FRAME - 12) : undefined;
  if (name === 'native-kernel-glue') {
    const ok = function (): number {
      return 0;
    };
    // init, seal, ack, block (KernelEntries).
    const entries = [ok, function (): number { return FRAME; }, function (): number { return 12; }, ok] as const;
    return kernelEngine(espruinoE(), entries, IMAGE.constants.CTX_SIZE, KEY, FRAME - 12);
  }
  return undefined;
}

const ccm = engine(SEALPOST_BENCH.backend);
if (!ccm) {
  printLine('BENCH ' + SEALPOST_BENCH.backend + ' unavailable on this build');
} else {
  const out = new Uint8Array(FRAME);
  const sealer = createSealer({ ccm: ccm, nonceSalt: SALT, frameSize: FRAME, ring: out });
  const pt = new Uint8Array(FRAME - 12);
  const n = SEALPOST_BENCH.frames;
  const doSeal = SEALPOST_BENCH.seal;
  let i = 0;
  let spent = 0;
  const tick = function (): void {
    i++;
    if (i > n) {
      printLine('BENCH ' + SEALPOST_BENCH.backend + ' frames ' + n + ' ms/frame ' + (n > 0 ? (spent * 1000) / n : 0).toFixed(3) + ' last ' + out[19]);
      return;
    }
    // A garbage collection before every seal, outside the timed part: the
    // interpreter's allocator slows down as its free list fragments, and a
    // device idle between seals collects (src/jsinteractive.c, jsiIdle).
    process.memory();
    const t0 = secondsNow();
    if (doSeal) sealer.sealInto(i, pt, 0);
    spent += secondsNow() - t0;
    setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
}
