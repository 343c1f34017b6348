// The renewal crypto backend on @noble (docs/firmware.md, "Key renewal on the
// device"): what hal/espruino/renewal-crypto.ts does with the curve25519 and
// hkdf-sha256 kernels, done with protocol/hpke.ts and @noble/curves, byte for
// byte alike (test/vectors/renewal.json). Used by the simulator and Node
// tests; runs under Node only, so it is no part of any firmware bundle.
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { deriveKeyPair, setupPskS } from '../../protocol/hpke.js';
import { CHAIN_CONTEXT, NONCE_SALT_CONTEXT, SEAL_KEY_CONTEXT } from '../../protocol/provision.js';
import { utf8 } from '../../protocol/bytes.js';
import type { RenewalCryptoHal } from '../types.js';

export interface PlainRenewalCryptoOptions {
  /**
   * The hardware random source: one 32-bit word per call, or a throw when the
   * source fails (as E.hwRand may). Defaults to node:crypto. Tests pass a
   * failing or repeating one.
   */
  hwRand?: () => number;
}

/** One word from node:crypto, the default hardware random source. */
export function nodeHwRand(): number {
  return randomBytes(4).readUInt32BE(0);
}

function bytes(name: string, b: Uint8Array, len: number): void {
  if (!(b instanceof Uint8Array) || b.length !== len) throw new Error(name + ' expected ' + len + ' bytes, got ' + (b instanceof Uint8Array ? b.length : typeof b));
}

export function plainRenewalCrypto(opts: PlainRenewalCryptoOptions = {}): RenewalCryptoHal {
  const hwRand = opts.hwRand ?? nodeHwRand;
  return {
    verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      if (publicKey.length !== 32 || signature.length !== 64) return false;
      try {
        // Small-order keys are refused before the (strict, cofactored) equation: a signature under one proves nothing.
        if (ed25519.Point.fromBytes(publicKey).isSmallOrder()) return false;
        return ed25519.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false;
      }
    },
    setupPskS(recipientPublicKey: Uint8Array, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array, ikm: Uint8Array): Uint8Array {
      bytes('recipientPublicKey', recipientPublicKey, 32);
      bytes('psk', psk, 32);
      bytes('ikm', ikm, 32);
      const eph = deriveKeyPair(ikm);
      let r;
      try {
        r = setupPskS(recipientPublicKey, info, { psk, pskId }, { ephemeralPrivateKey: eph.privateKey });
      } catch (e) {
        throw new Error('SetupPSKS refused its inputs: ' + (e as Error).message);
      } finally {
        eph.privateKey.fill(0);
      }
      const out = new Uint8Array(88);
      out.set(r.enc, 0);
      out.set(r.context.export(utf8(SEAL_KEY_CONTEXT), 16), 32);
      out.set(r.context.export(utf8(NONCE_SALT_CONTEXT), 8), 48);
      out.set(r.context.export(utf8(CHAIN_CONTEXT), 32), 56);
      return out;
    },
    hwRand(): number {
      return hwRand();
    },
  };
}
