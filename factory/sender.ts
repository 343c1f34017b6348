// The factory's HPKE sender at line speed. protocol/provision.ts is the
// normative implementation, on @noble/curves: about 880 devices/s on one
// core here (bench/provision.ts), nearly all of it in two X25519 scalar
// multiplications. The factory needs 5,000/s, so this file runs the same
// SetupBaseS (RFC 9180 sections 4.1, 5.1, 5.3, 7.1) with X25519 and HMAC
// from OpenSSL (node:crypto): about 10,000 devices/s on one core.
//
// It must give byte-identical results, so it is checked three ways:
// test/factory/provision.test.ts runs it against test/vectors/provision.json
// and against provisionDevice() with the same ephemeral keys; and at run
// time createSender() re-derives the first device and every
// SELF_CHECK_EVERY-th one with provisionDevice() from the same ephemeral key,
// and throws before anything is written if a single byte differs.
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto';
import {
  equalBytes,
  keyCheckValue,
  NONCE_SALT_CONTEXT,
  CHAIN_CONTEXT,
  INFO_PREFIX,
  SEAL_KEY_CONTEXT,
  checkSerial,
  provisionDevice,
  ArgumentError,
  type ProvisionedDevice,
} from '../protocol/index.js';

/** Re-derive one device in this many with the reference implementation. */
export const SELF_CHECK_EVERY = 4096;

// DER wrapper of a raw X25519 public key (RFC 8410 section 4): SPKI; the raw
// 32 bytes follow the prefix.
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const BASE_POINT = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from([9]), Buffer.alloc(31)]), format: 'der', type: 'spki' });
// Node's JWK reader insists on an "x" member but builds a private OKP key from
// "d" alone; a placeholder keeps it happy. (The public key is derived below.)
const PLACEHOLDER_X = Buffer.alloc(32).toString('base64url');

/**
 * A private X25519 KeyObject from 32 raw bytes. Measured on Node 20.20 here:
 * JWK import 25 us, PKCS#8 DER import 310 us. Keys from generateKeyPairSync
 * are avoided on purpose: exporting one (JWK) can deadlock Node 20 when a
 * garbage collection during the export destroys a key-generation job whose
 * destructor waits for a mutex (main thread under gdb: ExportJWKEdKey -> GC ->
 * ~KeyGenJob -> uv_mutex_lock, forever); seen twice in about 30 runs of
 * 20,000 devices. Imported keys involve no such job.
 */
function importX25519PrivateKey(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(raw).toString('base64url'), x: PLACEHOLDER_X }, format: 'jwk' });
}

const i2osp2 = (n: number): Buffer => Buffer.from([(n >>> 8) & 0xff, n & 0xff]);
const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

// RFC 9180 section 7.1: suite_id of the KEM, and of HPKE with
// KEM 0x0020, KDF 0x0001 (HKDF-SHA256), AEAD 0xFFFF (export only).
const KEM_SUITE = Buffer.concat([ascii('KEM'), i2osp2(0x0020)]);
const HPKE_SUITE = Buffer.concat([ascii('HPKE'), i2osp2(0x0020), i2osp2(0x0001), i2osp2(0xffff)]);
const VERSION = ascii('HPKE-v1');
const NO_SALT = Buffer.alloc(32); // HKDF-Extract with an empty salt uses HashLen zero bytes (RFC 5869 section 2.2)

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

// LabeledExtract / LabeledExpand (RFC 9180 section 4). Every length here is at
// most 32 bytes, so HKDF-Expand is its first block: HMAC(prk, info || 0x01).
function labeledExtract(suite: Buffer, salt: Uint8Array | undefined, label: Buffer, ikm: Uint8Array): Buffer {
  return hmac(salt ?? NO_SALT, VERSION, suite, label, ikm);
}

function labeledExpand(suite: Buffer, prk: Uint8Array, label: Buffer, info: Uint8Array, length: number): Buffer {
  return hmac(prk, i2osp2(length), VERSION, suite, label, info, ONE).subarray(0, length);
}

const ONE = Buffer.from([1]);
const EMPTY = Buffer.alloc(0);
const L_EAE_PRK = ascii('eae_prk');
const L_SHARED_SECRET = ascii('shared_secret');
const L_INFO_HASH = ascii('info_hash');
const L_SECRET = ascii('secret');
const L_EXP = ascii('exp');
const L_SEC = ascii('sec');
const SEAL_KEY_CTX = ascii(SEAL_KEY_CONTEXT);
const NONCE_SALT_CTX = ascii(NONCE_SALT_CONTEXT);
const CHAIN_CTX = ascii(CHAIN_CONTEXT);
// Base mode with no PSK: psk_id_hash is the same for every device (section 5.1).
const MODE_BASE = Buffer.from([0x00]);
const PSK_ID_HASH = labeledExtract(HPKE_SUITE, undefined, ascii('psk_id_hash'), EMPTY);

export interface SenderOptions {
  /** Fixed ephemeral private keys, for test vectors only. */
  ephemeralPrivateKey?: (serial: string) => Uint8Array | undefined;
  /** Re-derive every n-th device with provisionDevice() (default SELF_CHECK_EVERY; 1 = all). */
  selfCheckEvery?: number;
}

export type Sender = (serial: string) => ProvisionedDevice;

/**
 * A function that provisions one device per call: fresh ephemeral X25519
 * key, SetupBaseS to the ingest public key, the three exported secrets
 * (seal key, nonce salt, chain_0) and the key check value; the same result as protocol's provisionDevice().
 */
export function createSender(ingestPublicKey: Uint8Array, options: SenderOptions = {}): Sender {
  if (!(ingestPublicKey instanceof Uint8Array) || ingestPublicKey.length !== 32) {
    throw new ArgumentError('ingestPublicKey', 'expected 32 bytes');
  }
  const pkR = Buffer.from(ingestPublicKey);
  let recipient: KeyObject;
  try {
    recipient = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pkR]), format: 'der', type: 'spki' });
  } catch {
    throw new ArgumentError('ingest public key', 'is not a valid X25519 public key');
  }
  const every = options.selfCheckEvery ?? SELF_CHECK_EVERY;
  let made = 0;

  return (serial: string): ProvisionedDevice => {
    checkSerial(serial);
    const fixed = options.ephemeralPrivateKey?.(serial);
    const skBytes = fixed ?? new Uint8Array(randomBytes(32));
    const skE = importX25519PrivateKey(skBytes);
    let enc: Buffer;
    let dh: Buffer;
    try {
      // X25519(skE, 9) is the public key (RFC 7748 section 6.1); deriving it
      // this way avoids exporting a key object (see importX25519PrivateKey).
      enc = diffieHellman({ privateKey: skE, publicKey: BASE_POINT });
      dh = diffieHellman({ privateKey: skE, publicKey: recipient });
    } catch {
      throw new ArgumentError('ingest public key', 'is not a valid X25519 public key (small order or malformed)');
    }
    // RFC 9180 section 7.1.4: an all-zero shared secret means a small-order key.
    if (dh.every((b) => b === 0)) throw new ArgumentError('ingest public key', 'is not a valid X25519 public key (small order)');

    // Encap (section 4.1): shared_secret = ExtractAndExpand(dh, enc || pkR).
    const eaePrk = labeledExtract(KEM_SUITE, undefined, L_EAE_PRK, dh);
    const sharedSecret = labeledExpand(KEM_SUITE, eaePrk, L_SHARED_SECRET, Buffer.concat([enc, pkR]), 32);
    // KeySchedule (section 5.1), base mode, then Export (section 5.3).
    const infoHash = labeledExtract(HPKE_SUITE, undefined, L_INFO_HASH, ascii(INFO_PREFIX + serial));
    const context = Buffer.concat([MODE_BASE, PSK_ID_HASH, infoHash]);
    const secret = labeledExtract(HPKE_SUITE, sharedSecret, L_SECRET, EMPTY);
    const exporterSecret = labeledExpand(HPKE_SUITE, secret, L_EXP, context, 32);
    const sealKey = new Uint8Array(labeledExpand(HPKE_SUITE, exporterSecret, L_SEC, SEAL_KEY_CTX, 16));
    const nonceSalt = new Uint8Array(labeledExpand(HPKE_SUITE, exporterSecret, L_SEC, NONCE_SALT_CTX, 8));
    const chain = new Uint8Array(labeledExpand(HPKE_SUITE, exporterSecret, L_SEC, CHAIN_CTX, 32));
    const device: ProvisionedDevice = { serial, enc: new Uint8Array(enc), sealKey, nonceSalt, kcv: keyCheckValue(sealKey), chain };
    for (const b of [dh, eaePrk, sharedSecret, secret, exporterSecret]) b.fill(0);

    if (made++ % every === 0) {
      const reference = provisionDevice(ingestPublicKey, serial, { ephemeralPrivateKey: skBytes });
      if (!equalBytes(reference.enc, device.enc) || !equalBytes(reference.sealKey, sealKey) || !equalBytes(reference.nonceSalt, nonceSalt) || !equalBytes(reference.chain, chain)) {
        throw new Error(`self-check failed: the fast HPKE sender disagrees with protocol/provision.ts for ${serial}; nothing was written for it. This is a bug: report it and provision with a released version`);
      }
    }
    if (fixed === undefined) skBytes.fill(0);
    return device;
  };
}
