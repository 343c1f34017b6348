// Runs the committed seal and ack vectors through every device crypto backend
// this build has, on the interpreter itself: `dist/crypto-selftest.js` with a
// `var SEALPOST_VECTORS = {...}` line put in front (see README, "Checking a
// bundle on Espruino"). Prints one line per backend and a final verdict.
// native-kernel runs when Storage holds the kernel file (sealpost.krn, as the
// factory writes it) and the build executes Thumb code (a board, or the 32-bit
// ARM build under qemu-arm; never put the file on the x86-64 build).
import { cryptoAes, espruinoE, printLine, storageModule } from '../../hal/espruino/globals.js';
import { kernelCrypto, imageNumbers } from '../../hal/espruino/kernel.js';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import { KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { nativeAesCcm, nativeCcm } from '../../hal/espruino/crypto.js';
import { plainCcm } from '../../hal/plain/crypto.js';
import { createSealer } from '../sealer.js';
import type { Ccm } from '../../hal/types.js';
import { fromHexUnchecked, toHex } from '../../protocol/wire/hex.js';

const print = printLine();

interface SealVector {
  seal_key: string;
  nonce_salt: string;
  counter: number;
  frame_size: number;
  plaintext: string;
  frame: string;
}
interface AckVector {
  seal_key: string;
  nonce_salt: string;
  counter: number;
  ack: string;
}
interface RenewAckVector {
  seal_key: string;
  nonce_salt: string;
  epoch: number;
  renew_ack: string;
}
// renew (test/vectors/renewal.json renew_ack) is optional: without it the line says renew 0/0.
declare const SEALPOST_VECTORS: { seal: SealVector[]; ack: AckVector[]; renew?: RenewAckVector[] };

type Make = (key: Uint8Array, maxMsgLen: number) => Ccm;

function run(name: string, make: Make): boolean {
  let sealOk = 0;
  let ackOk = 0;
  const seal = SEALPOST_VECTORS.seal;
  const ack = SEALPOST_VECTORS.ack;
  for (let i = 0; i < seal.length; i++) {
    const v = seal[i]!;
    const ring = new Uint8Array(v.frame_size);
    const sealer = createSealer({ ccm: make(fromHexUnchecked(v.seal_key), v.frame_size - 12), nonceSalt: fromHexUnchecked(v.nonce_salt), frameSize: v.frame_size, ring: ring });
    sealer.sealInto(v.counter, fromHexUnchecked(v.plaintext), 0);
    if (toHex(ring) === v.frame) sealOk++;
    else print('SELFTEST ' + name + ' seal vector ' + i + ' differs');
  }
  for (let i = 0; i < ack.length; i++) {
    const v = ack[i]!;
    const sealer = createSealer({ ccm: make(fromHexUnchecked(v.seal_key), 8), nonceSalt: fromHexUnchecked(v.nonce_salt), frameSize: 20, ring: new Uint8Array(20) });
    const good = fromHexUnchecked(v.ack);
    const bad = fromHexUnchecked(v.ack);
    bad[11] = bad[11]! ^ 1;
    if (sealer.ackValid(good) && !sealer.ackValid(bad)) ackOk++;
    else print('SELFTEST ' + name + ' ack vector ' + i + ' wrong');
  }
  // RENEW_ACK as firmware/renewal.ts checks it: the tag of a domain-3 framer of the empty message
  // under the new key, compared with the received one; a wrong key must not give it.
  let renewOk = 0;
  const renew = SEALPOST_VECTORS.renew || [];
  for (let i = 0; i < renew.length; i++) {
    const v = renew[i]!;
    const want = toHex(fromHexUnchecked(v.renew_ack).subarray(8));
    const t = new Uint8Array(12);
    make(fromHexUnchecked(v.seal_key), 8).framer(fromHexUnchecked(v.nonce_salt), 0, t, 3)(v.epoch, new Uint8Array(0), 0);
    const key = fromHexUnchecked(v.seal_key);
    key[0] = key[0]! ^ 1;
    const u = new Uint8Array(12);
    make(key, 8).framer(fromHexUnchecked(v.nonce_salt), 0, u, 3)(v.epoch, new Uint8Array(0), 0);
    if (toHex(t.subarray(4)) === want && toHex(u.subarray(4)) !== want) renewOk++;
    else print('SELFTEST ' + name + ' renew vector ' + i + ' wrong');
  }
  print('SELFTEST ' + name + ' seal ' + sealOk + '/' + seal.length + ' ack ' + ackOk + '/' + ack.length + ' renew ' + renewOk + '/' + renew.length);
  return sealOk === seal.length && ackOk === ack.length && renewOk === renew.length;
}

const aes = cryptoAes();
let pass = run('plain-js', plainCcm);
if (aes.encrypt) pass = run('native-aes', function (key: Uint8Array, max: number) { return nativeAesCcm(aes, key, max); }) && pass;
else print('SELFTEST native-aes unavailable on this build');
if (aes.ccmEncrypt) pass = run('native-ccm', function (key: Uint8Array) { return nativeCcm(aes, key); }) && pass;
else print('SELFTEST native-ccm unavailable on this build');
const storage = storageModule();
if (storage.read(KERNEL_FILE_NAME) !== undefined) {
  const kernel = kernelCrypto(espruinoE(), storage, imageNumbers(IMAGE));
  try {
    pass = run('native-kernel', kernel.ccm) && pass;
  } catch (e) {
    print('SELFTEST native-kernel ' + (e as Error).message);
    pass = false;
  }
} else print('SELFTEST native-kernel unavailable (no ' + KERNEL_FILE_NAME + ' in Storage)');
print(pass ? 'SELFTEST PASS' : 'SELFTEST FAIL');
