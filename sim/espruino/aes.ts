// A stand-in for Espruino's `require("crypto").AES` under Node, written from
// libs/crypto/jswrap_crypto.c (Espruino 2v29) and ../shared/espruino.md:
// - errors print "ERROR: ..." and return undefined instead of throwing
//   (an unknown mode name is the one case that throws);
// - CTR ignores `iv` and restarts at a zero counter block on every call;
// - CFB is CFB8; OFB is listed but unimplemented (error);
// - ECB encrypts whole blocks only and leaves a trailing partial block zero;
// - CBC needs whole blocks and uses a zero IV unless one is given;
// - CCM has no associated data, nonce 7..13 bytes, even tag length 4..16.
// Which functions exist is chosen per board: `features` mirrors the table
// "Crypto builtins per board".
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { CryptoBackend, EspruinoAes, EspruinoData } from '../../hal/types.js';

/** Which builtins the simulated build has. */
export interface AesFeatures {
  aes?: boolean;
  ccm?: boolean;
}

export interface StandInOptions {
  features?: AesFeatures;
  /** Where "ERROR: ..." lines go; collected for tests. */
  print?: (line: string) => void;
}

/** The builtins of a board whose profile names `backend` ("Crypto builtins per board"). */
export function boardAesFeatures(backend: CryptoBackend): AesFeatures {
  if (backend === 'native-ccm') return { aes: false, ccm: true };
  if (backend === 'native-aes') return { aes: true, ccm: false };
  return { aes: false, ccm: false };
}

class EspruinoException extends Error {}

function bytesOf(data: unknown): Buffer | undefined {
  if (typeof data === 'string') return Buffer.from(Array.from(data, (ch) => ch.charCodeAt(0) & 255));
  if (data instanceof ArrayBuffer) return Buffer.from(new Uint8Array(data));
  if (ArrayBuffer.isView(data)) return Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (Array.isArray(data)) return Buffer.from(data.map((v) => Number(v) & 255));
  return undefined;
}

function toArrayBuffer(buf: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(buf.length);
  new Uint8Array(out).set(buf);
  return out;
}

function aesName(keyLen: number, mode: string): string | undefined {
  if (keyLen !== 16 && keyLen !== 24 && keyLen !== 32) return undefined;
  return `aes-${keyLen * 8}-${mode}`;
}

export function createEspruinoAes(options: StandInOptions = {}): EspruinoAes {
  const features = { aes: true, ccm: true, ...options.features };
  const print = options.print ?? ((line: string) => console.log(line));
  const error = (message: string): undefined => {
    print(`ERROR: ${message}`);
    return undefined;
  };

  function crypt(message: EspruinoData, key: EspruinoData, opts: unknown, encrypt: boolean): ArrayBuffer | undefined {
    const iv = Buffer.alloc(16);
    let mode = 'CBC';
    if (opts !== null && typeof opts === 'object') {
      const o = opts as { iv?: unknown; mode?: unknown };
      if (o.iv !== undefined) bytesOf(o.iv)?.copy(iv, 0, 0, 16);
      if (o.mode !== undefined) {
        if (!['CBC', 'CFB', 'CTR', 'OFB', 'ECB'].includes(String(o.mode))) {
          throw new EspruinoException(`Unknown Crypto mode ${JSON.stringify(String(o.mode))}`);
        }
        mode = String(o.mode);
      }
    } else if (opts !== undefined) {
      return error("'options' must be undefined, or an Object");
    }
    const msg = bytesOf(message);
    const k = bytesOf(key);
    if (!msg || !k) return error('Expecting an array-like value');
    const out = Buffer.alloc(msg.length);
    const run = (name: string, ivArg: Buffer | null, input: Buffer): Buffer => {
      const c = encrypt ? createCipheriv(name, k, ivArg) : createDecipheriv(name, k, ivArg);
      c.setAutoPadding(false);
      return Buffer.concat([c.update(input), c.final()]);
    };
    if (!aesName(k.length, 'ecb')) return error('Unknown error: -0x20');
    switch (mode) {
      case 'CBC':
        if (msg.length % 16 !== 0) return error('Invalid input length');
        run(aesName(k.length, 'cbc')!, iv, msg).copy(out);
        break;
      case 'CFB':
        run(aesName(k.length, 'cfb8')!, iv, msg).copy(out);
        break;
      case 'CTR':
        run(aesName(k.length, 'ctr')!, Buffer.alloc(16), msg).copy(out);
        break;
      case 'ECB': {
        const whole = msg.length - (msg.length % 16);
        if (whole > 0) run(aesName(k.length, 'ecb')!, null, msg.subarray(0, whole)).copy(out);
        break;
      }
      default:
        return error('Feature unavailable');
    }
    return toArrayBuffer(out);
  }

  function ccmArgs(nonce: unknown, key: unknown, message: unknown) {
    if (!(Array.isArray(nonce) || nonce instanceof ArrayBuffer || ArrayBuffer.isView(nonce))) return undefined;
    const iv = bytesOf(nonce)!;
    const k = bytesOf(key);
    const msg = bytesOf(message);
    if (iv.length < 7 || iv.length > 13 || !k || !msg || !aesName(k.length, 'ccm')) return undefined;
    return { iv, k, msg };
  }

  const aes: EspruinoAes = {};
  if (features.aes) {
    aes.encrypt = (message, key, opts) => crypt(message, key, opts, true);
    aes.decrypt = (message, key, opts) => crypt(message, key, opts, false);
  }
  if (features.ccm) {
    aes.ccmEncrypt = (message, key, nonce, tagLen) => {
      const args = ccmArgs(nonce, key, message);
      if (!args || typeof tagLen !== 'number' || tagLen < 4 || tagLen > 16 || tagLen % 2 !== 0) return error('Bad input data');
      const c = createCipheriv(aesName(args.k.length, 'ccm')! as 'aes-128-ccm', args.k, args.iv, { authTagLength: tagLen });
      const data = Buffer.concat([c.update(args.msg), c.final()]);
      return { data: toArrayBuffer(data), tag: toArrayBuffer(c.getAuthTag()) };
    };
    aes.ccmDecrypt = (message, key, nonce, tag) => {
      const args = ccmArgs(nonce, key, message);
      const t = bytesOf(tag);
      if (!args || !t || t.length < 4 || t.length > 16 || t.length % 2 !== 0) return error('Bad input data');
      const d = createDecipheriv(aesName(args.k.length, 'ccm')! as 'aes-128-ccm', args.k, args.iv, { authTagLength: t.length });
      d.setAuthTag(t);
      const data = d.update(args.msg);
      try {
        d.final();
      } catch {
        return error('Authenticated decryption failed');
      }
      return toArrayBuffer(data);
    };
  }
  return aes;
}
