// CryptoHal per backend. A board entry imports only the one its profile
// names, so the bundle carries only that code. The AES builtin is passed in:
// require("crypto").AES on a board, the stand-in in the simulation.
import { aes128 } from '../plain/aes128.js';
import { plainCcm } from '../plain/crypto.js';
import type { CryptoHal, EspruinoAes } from '../types.js';
import { nativeAesCcm, nativeCcm } from './crypto.js';

function plainBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  aes128(key)(block, 0, out, 0);
  return out;
}

/** native-ccm: AES.ccmEncrypt per frame; the key check value in plain JS (once, at boot). */
export function nativeCcmCrypto(aes: EspruinoAes): CryptoHal {
  return {
    ccm: function (key: Uint8Array) {
      return nativeCcm(aes, key);
    },
    encryptBlock: plainBlock,
  };
}

/** native-aes: CCM from AES.encrypt CBC + ECB. */
export function nativeAesCrypto(aes: EspruinoAes): CryptoHal {
  return {
    ccm: function (key: Uint8Array, maxMsgLen: number) {
      return nativeAesCcm(aes, key, maxMsgLen);
    },
    encryptBlock: function (key: Uint8Array, block: Uint8Array): Uint8Array {
      const r = aes.encrypt!(block, key, { mode: 'ECB' });
      if (!r) throw new Error('AES.encrypt ECB failed');
      return new Uint8Array(r);
    },
  };
}

/** plain-js: everything in JS. */
export function plainCrypto(): CryptoHal {
  return { ccm: plainCcm, encryptBlock: plainBlock };
}
