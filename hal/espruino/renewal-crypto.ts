// The public-key work of a key renewal (hal/types.ts RenewalCryptoHal; design brief "Key renewal",
// docs/protocol.md section 12) on the two renewal kernels through E.nativeCall: kernel/curve25519/
// (Storage file sealpost.c25: x25519, x25519_base, ed25519_verify) and kernel/hkdf-sha256/ (sealpost.hkd:
// hmac_sha256, hkdf_expand, hpke_extract_and_expand, hpke_key_schedule, hpke_export). docs/firmware.md,
// "Renewal crypto on the board".
//
// Arguments: espruinoRenewalCrypto(E, Storage, image), the interpreter's E and require("Storage") (the
// entry hands them over, style.md rule 1) and renewalImageNumbers(CURVE, HKDF) of the two kernels'
// image.ts (hal/ may not import kernel/; the entry does).
//
// Every call reads its kernel file again and checks it (length and CRC-32 against the image this
// firmware was built with, hal/espruino/kernel.ts kernelFile: a damaged or foreign file is never
// executed, the error says why) and allocates its one flat work block only while it runs: between
// renewals nothing of this backend but the object itself is resident (issue #13). On a board the
// kernels execute in place from flash; where a Storage string has no address (the Linux builds) the
// image is copied into a flat string for the call and dropped with it. Addresses are read again
// before every native call (a defragmentation may move a flat block) and checked non-zero.
import type { RenewalCryptoHal } from '../types.js';
import type { EGlobal, EspruinoStorageModule } from './globals.js';
import { kernelFile, kernelRefusal, type Native } from './kernel.js';
import { CURVE_KERNEL_FILE_NAME, HKDF_KERNEL_FILE_NAME } from '../../protocol/wire/names.js';

/**
 * What the renewal needs of kernel/curve25519/image.ts and kernel/hkdf-sha256/image.ts, flat (no key
 * names in a bundle), each kernel's tuple starting with its length and CRC-32 (kernelFile reads those):
 * curve [size, CRC-32, offsets of x25519, x25519_base, ed25519_verify]; hkdf [size, CRC-32, offsets of
 * hmac_sha256, hkdf_expand, hpke_extract_and_expand, hpke_key_schedule, hpke_export].
 */
export type RenewalImage = readonly [
  curve: readonly [size: number, crc32: number, x25519: number, x25519Base: number, ed25519Verify: number],
  hkdf: readonly [size: number, crc32: number, hmac: number, expand: number, extractAndExpand: number, keySchedule: number, exportSecret: number],
];

/** The flat RenewalImage of the two image.ts IMAGEs (the hkdf context block must be 136 bytes, as the work block below lays it out). */
export function renewalImageNumbers(
  curve: { size: number; crc32: number; entries: { x25519: number; x25519_base: number; ed25519_verify: number } },
  hkdf: {
    size: number;
    crc32: number;
    entries: { hmac_sha256: number; hkdf_expand: number; hpke_extract_and_expand: number; hpke_key_schedule: number; hpke_export: number };
    constants: { CTX_SIZE: number };
  },
): RenewalImage {
  const c = curve.entries;
  const h = hkdf.entries;
  if (hkdf.constants.CTX_SIZE !== 136) throw new Error('hkdf-sha256 context block is ' + hkdf.constants.CTX_SIZE + ' bytes; renewal-crypto.ts lays out 136: update its work block');
  return [
    [curve.size, curve.crc32, c.x25519, c.x25519_base, c.ed25519_verify],
    [hkdf.size, hkdf.crc32, h.hmac_sha256, h.hkdf_expand, h.hpke_extract_and_expand, h.hpke_key_schedule, h.hpke_export],
  ];
}

/** The exporter contexts of the design brief (protocol/provision.ts SEAL_KEY_CONTEXT, NONCE_SALT_CONTEXT, CHAIN_CONTEXT). */
export const EXPORTS: readonly (readonly [label: string, length: number])[] = [
  ['sealpost/v1 seal key', 16],
  ['sealpost/v1 nonce salt', 8],
  ['sealpost/v1 chain', 32],
];

// RFC 9180 section 7.1.3, DeriveKeyPair for DHKEM(X25519, HKDF-SHA256): suite_id = "KEM" || 0x0020;
// dkp_prk = LabeledExtract("", "dkp_prk", ikm): HMAC with an empty key over "HPKE-v1" || suite_id ||
// "dkp_prk" || ikm; sk = LabeledExpand(dkp_prk, "sk", "", 32): HKDF-Expand with info I2OSP(32, 2) ||
// "HPKE-v1" || suite_id || "sk". The X25519 scalar is used as it comes (x25519 clamps it).
const DKP_PRK_LABEL = 'HPKE-v1KEM\x00\x20dkp_prk';
const SK_INFO = '\x00\x20HPKE-v1KEM\x00\x20sk';

// The work block of setupPskS: sk 0 | enc 32, seal key 64, nonce salt 80, chain 88 (the 88 bytes
// returned) | pkR 120 | dh 152 | shared secret 184 | hkdf context 216 (136) | info (LP) 352 | psk
// block 417 (psk 32, psk_id LP) | exporter context (LP) 514 | end 547. DeriveKeyPair's message (51
// bytes) and info (16) are built in the context's room at 216 and 280, its PRK at 152, before the
// key schedule writes there.
const W_SIZE = 548;

function wrongLength(what: string, want: string, got: Uint8Array): Error {
  return new Error('renewal ' + what + ' expected ' + want + ' bytes, got ' + (got && got.length));
}

/** The renewal crypto on the kernels: E and Storage are the interpreter's (stand-ins under Node). */
export function espruinoRenewalCrypto(E: EGlobal, S: EspruinoStorageModule, image: RenewalImage): RenewalCryptoHal {
  const C = image[0];
  const H = image[1];
  const curveRefusal = kernelRefusal(CURVE_KERNEL_FILE_NAME);
  const hkdfRefusal = kernelRefusal(HKDF_KERNEL_FILE_NAME);
  function curve(): (offset: number) => Native {
    return kernelFile(E, S, CURVE_KERNEL_FILE_NAME, image[0], curveRefusal);
  }
  function flat(w: Uint8Array): number {
    const a = E.getAddressOf(w, true);
    if (!a) throw new Error('renewal has no flat RAM for its work block');
    return a;
  }
  return {
    verify: function (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      // Not a 32-byte key and a 64-byte signature: not a valid signature (as hal/plain/renewal-crypto.ts answers).
      if (!publicKey || publicKey.length !== 32 || !signature || signature.length !== 64) return false;
      const verify = curve()(C[4]);
      // sig (64) | pk (32) | message: public data, nothing to wipe.
      const w = new Uint8Array(96 + message.length);
      w.set(signature, 0);
      w.set(publicKey, 64);
      w.set(message, 96);
      const a = flat(w);
      return verify(a, a + 96, message.length, a + 64) === 1;
    },

    setupPskS: function (recipientPublicKey: Uint8Array, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array, ikm: Uint8Array): Uint8Array {
      if (!recipientPublicKey || recipientPublicKey.length !== 32) throw wrongLength('recipient public key', '32', recipientPublicKey);
      if (!info || info.length > 64) throw wrongLength('info', 'at most 64', info);
      if (!psk || psk.length !== 32) throw wrongLength('psk', '32', psk);
      if (!pskId || !pskId.length || pskId.length > 64) throw wrongLength('psk_id', '1 to 64', pskId);
      if (!ikm || ikm.length !== 32) throw wrongLength('ikm', '32', ikm);
      const c = curve();
      const h = kernelFile(E, S, HKDF_KERNEL_FILE_NAME, image[1], hkdfRefusal);
      const w = new Uint8Array(W_SIZE);
      // A kernel's return value is 0 when it did its work; any other value ends the renewal here.
      const run = function (refuse: (why: string) => Error, what: string, r: number): void {
        if (r !== 0) throw refuse('refused the renewal: ' + what + ' returned ' + r);
      };
      try {
        let a = flat(w);
        w.set(E.toUint8Array(DKP_PRK_LABEL), 216);
        w.set(ikm, 235);
        run(hkdfRefusal, 'DeriveKeyPair extract', h(H[2])(a + 152, a, a + 216, 51 << 16));
        w.set(E.toUint8Array(SK_INFO), 280);
        a = flat(w);
        run(hkdfRefusal, 'DeriveKeyPair expand', h(H[3])(a, a + 152, a + 280, 16 | (32 << 16)));
        w.set(recipientPublicKey, 120);
        a = flat(w);
        run(curveRefusal, 'x25519_base', c(C[3])(a + 32, a, 0, 0));
        a = flat(w);
        // -1: the announced ingest key is of small order (an all-zero shared secret, RFC 9180 7.1.4).
        run(curveRefusal, 'x25519 with the announced ingest key', c(C[2])(a + 152, a, a + 120, 0));
        w.fill(0, 0, 32);
        a = flat(w);
        run(hkdfRefusal, 'ExtractAndExpand', h(H[4])(a + 184, a + 152, a + 32, a + 120));
        w.fill(0, 216, 352);
        // Export-only AEAD id 0xffff (RFC 9180 section 5.1, as protocol/hpke.ts).
        w[216] = 0xff;
        w[217] = 0xff;
        w[352] = info.length;
        w.set(info, 353);
        w.set(psk, 417);
        w[449] = pskId.length;
        w.set(pskId, 450);
        a = flat(w);
        run(hkdfRefusal, 'KeySchedule', h(H[5])(a + 216, a + 184, a + 352, a + 417));
        let out = 64;
        for (let i = 0; i < EXPORTS.length; i++) {
          const label = EXPORTS[i]!;
          w[514] = label[0].length;
          w.set(E.toUint8Array(label[0]), 515);
          a = flat(w);
          run(hkdfRefusal, 'Export', h(H[6])(a + out, a + 216, a + 514, label[1]));
          out += label[1];
        }
        return new Uint8Array(w.subarray(32, 120));
      } finally {
        w.fill(0);
      }
    },

    hwRand: E.hwRand,
  };
}
