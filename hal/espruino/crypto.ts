// The device crypto backends built on Espruino's AES builtins. The AES object
// is passed in (require("crypto").AES on a board, a stand-in under Node), so
// nothing here reaches for a global.
//   native-ccm: one AES.ccmEncrypt per message (Bangle.js 2, Linux build).
//   native-aes: CCM composed from one CBC and one ECB call (Puck.js).
import { composeCcm } from '../ccm.js';
import type { BlockModes, Ccm, EspruinoAes } from '../types.js';

const TAG = 8;

function failed(what: string): Error {
  return new Error(what + ' failed (the builtin printed the reason)');
}

export function nativeCcm(aes: EspruinoAes, key: Uint8Array): Ccm {
  const ccmEncrypt = aes.ccmEncrypt;
  if (!ccmEncrypt) throw new Error('AES.ccmEncrypt is missing on this build: use crypto backend native-aes or plain-js');
  return {
    seal: function (nonce: Uint8Array, msg: Uint8Array, out: Uint8Array, at: number): void {
      const r = ccmEncrypt(msg, key, nonce, TAG);
      if (!r) throw failed('AES.ccmEncrypt');
      out.set(new Uint8Array(r.data), at);
      out.set(new Uint8Array(r.tag), at + msg.length);
    },
  };
}

export function nativeBlockModes(aes: EspruinoAes, key: Uint8Array): BlockModes {
  const encrypt = aes.encrypt;
  if (!encrypt) throw new Error('AES.encrypt is missing on this build: use crypto backend plain-js');
  const CBC = { mode: 'CBC' };
  const ECB = { mode: 'ECB' };
  return {
    cbcMac: function (data: Uint8Array): Uint8Array {
      const r = encrypt(data, key, CBC);
      if (!r) throw failed('AES.encrypt CBC');
      return new Uint8Array(r, data.length - 16, 16);
    },
    ecb: function (data: Uint8Array, out: Uint8Array): void {
      const r = encrypt(data, key, ECB);
      if (!r) throw failed('AES.encrypt ECB');
      out.set(new Uint8Array(r));
    },
  };
}

export function nativeAesCcm(aes: EspruinoAes, key: Uint8Array, maxMsgLen: number): Ccm {
  return composeCcm(nativeBlockModes(aes, key), maxMsgLen);
}
