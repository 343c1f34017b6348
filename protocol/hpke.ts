// HPKE (RFC 9180) base and PSK modes with DHKEM(X25519, HKDF-SHA256) and
// HKDF-SHA256, as far as sealpost needs it: SetupBaseS / SetupBaseR (factory
// provisioning), SetupPSKS / SetupPSKR (key renewal, protocol/renewal.ts) and
// the secret export interface (section 5.3). The AEAD id only enters the suite id here; sealpost
// uses the export-only id 0xFFFF, and the tests also run A.1.1 (AES-128-GCM,
// 0x0001) to check the key schedule against both published vector sets.
import { x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from 'node:crypto';
import { concatBytes, expectBytes, expectInteger, utf8 } from './bytes.js';
import { ArgumentError } from './errors.js';

export const KEM_X25519_HKDF_SHA256 = 0x0020;
export const KDF_HKDF_SHA256 = 0x0001;
export const AEAD_AES_128_GCM = 0x0001;
export const AEAD_EXPORT_ONLY = 0xffff;

const MODE_BASE = 0x00;
const MODE_PSK = 0x01;
const N_SECRET = 32;
const N_ENC = 32;
const N_SK = 32;
const N_H = 32;
const VERSION_LABEL = utf8('HPKE-v1');
const EMPTY = new Uint8Array(0);

function i2osp(value: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

const KEM_SUITE_ID = concatBytes(utf8('KEM'), i2osp(KEM_X25519_HKDF_SHA256, 2));

function hpkeSuiteId(aeadId: number): Uint8Array {
  return concatBytes(utf8('HPKE'), i2osp(KEM_X25519_HKDF_SHA256, 2), i2osp(KDF_HKDF_SHA256, 2), i2osp(aeadId, 2));
}

function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(sha256, concatBytes(VERSION_LABEL, suiteId, utf8(label), ikm), salt);
}

function labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  return expand(sha256, prk, concatBytes(i2osp(length, 2), VERSION_LABEL, suiteId, utf8(label), info), length);
}

/** X25519 with the all-zero check of RFC 9180 section 7.1.4 (small-order public keys). */
function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(privateKey, publicKey);
  } catch {
    throw new ArgumentError('public key', 'is not a valid X25519 public key (small order or malformed)');
  }
  if (shared.every((b) => b === 0)) {
    throw new ArgumentError('public key', 'is not a valid X25519 public key (small order)');
  }
  return shared;
}

function extractAndExpand(dhValue: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dhValue);
  return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, N_SECRET);
}

export interface X25519KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

/** DeriveKeyPair of RFC 9180 section 7.1.3 for X25519. */
export function deriveKeyPair(ikm: Uint8Array): X25519KeyPair {
  expectBytes('ikm', ikm);
  if (ikm.length < N_SK) throw new ArgumentError('ikm', `expected at least ${N_SK} bytes, got ${ikm.length}`);
  const dkpPrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const privateKey = labeledExpand(KEM_SUITE_ID, dkpPrk, 'sk', EMPTY, N_SK);
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

export function generateKeyPair(random: (n: number) => Uint8Array = defaultRandom): X25519KeyPair {
  return deriveKeyPair(random(N_SK));
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  expectBytes('privateKey', privateKey, N_SK);
  return x25519.getPublicKey(privateKey);
}

function defaultRandom(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/** A context that can only export secrets (RFC 9180 section 5.3). */
export class ExportContext {
  readonly #suiteId: Uint8Array;
  readonly #exporterSecret: Uint8Array;

  constructor(suiteId: Uint8Array, exporterSecret: Uint8Array) {
    this.#suiteId = suiteId;
    this.#exporterSecret = exporterSecret;
  }

  export(exporterContext: Uint8Array, length: number): Uint8Array {
    expectBytes('exporterContext', exporterContext);
    expectInteger('length', length, 1, 255 * N_H);
    return labeledExpand(this.#suiteId, this.#exporterSecret, 'sec', exporterContext, length);
  }
}

/** A pre-shared key and its id (RFC 9180 section 5.1.2); base mode has neither. */
export interface Psk {
  psk: Uint8Array;
  pskId: Uint8Array;
}

/** RFC 9180 section 5.1, KeySchedule<ROLE>() with VerifyPSKInputs: base mode when `psk` is undefined. */
function keySchedule(aeadId: number, sharedSecret: Uint8Array, info: Uint8Array, psk?: Psk): ExportContext {
  const suiteId = hpkeSuiteId(aeadId);
  const pskIdHash = labeledExtract(suiteId, EMPTY, 'psk_id_hash', psk?.pskId ?? EMPTY);
  const infoHash = labeledExtract(suiteId, EMPTY, 'info_hash', info);
  const context = concatBytes(Uint8Array.of(psk ? MODE_PSK : MODE_BASE), pskIdHash, infoHash);
  const secret = labeledExtract(suiteId, sharedSecret, 'secret', psk?.psk ?? EMPTY);
  return new ExportContext(suiteId, labeledExpand(suiteId, secret, 'exp', context, N_H));
}

function checkAeadId(aeadId: number): number {
  if (aeadId !== AEAD_EXPORT_ONLY && aeadId !== AEAD_AES_128_GCM) {
    throw new ArgumentError('aeadId', `expected 0xffff (export-only) or 0x0001 (AES-128-GCM), got ${aeadId}`);
  }
  return aeadId;
}

export interface SetupOptions {
  /** HPKE AEAD id for the suite id; sealpost uses export-only (0xFFFF). */
  aeadId?: number;
  /** Fixed ephemeral private key, for test vectors only. */
  ephemeralPrivateKey?: Uint8Array;
  /** Source of randomness for the ephemeral key. */
  random?: (n: number) => Uint8Array;
}

function checkPsk(psk: Psk): Psk {
  if (psk === null || typeof psk !== 'object') throw new ArgumentError('psk', 'expected an object { psk, pskId }');
  expectBytes('psk', psk.psk);
  expectBytes('pskId', psk.pskId);
  // RFC 9180 section 5.1.2 (VerifyPSKInputs) and section 9.5: both non-empty, the PSK at least 32 bytes of entropy.
  if (psk.psk.length < N_SECRET) throw new ArgumentError('psk', `expected at least ${N_SECRET} bytes, got ${psk.psk.length}`);
  if (psk.pskId.length === 0) throw new ArgumentError('pskId', 'must not be empty in PSK mode');
  return psk;
}

/** SetupBaseS: the sender (factory) side. */
export function setupBaseS(recipientPublicKey: Uint8Array, info: Uint8Array, options: SetupOptions = {}): { enc: Uint8Array; context: ExportContext } {
  return setupS(recipientPublicKey, info, undefined, options);
}

/** SetupPSKS (RFC 9180 section 5.1.2): the sender side of PSK mode (a renewing device). */
export function setupPskS(recipientPublicKey: Uint8Array, info: Uint8Array, psk: Psk, options: SetupOptions = {}): { enc: Uint8Array; context: ExportContext } {
  return setupS(recipientPublicKey, info, checkPsk(psk), options);
}

/** SetupPSKR (RFC 9180 section 5.1.2): the recipient side of PSK mode (the ingest server). */
export function setupPskR(enc: Uint8Array, recipientPrivateKey: Uint8Array, info: Uint8Array, psk: Psk, options: { aeadId?: number } = {}): ExportContext {
  return setupR(enc, recipientPrivateKey, info, checkPsk(psk), options);
}

function setupS(recipientPublicKey: Uint8Array, info: Uint8Array, psk: Psk | undefined, options: SetupOptions): { enc: Uint8Array; context: ExportContext } {
  expectBytes('recipientPublicKey', recipientPublicKey, N_ENC);
  expectBytes('info', info);
  const aeadId = checkAeadId(options.aeadId ?? AEAD_EXPORT_ONLY);
  const ephemeral =
    options.ephemeralPrivateKey !== undefined
      ? { privateKey: expectBytes('ephemeralPrivateKey', options.ephemeralPrivateKey, N_SK), publicKey: publicKeyOf(options.ephemeralPrivateKey) }
      : generateKeyPair(options.random);
  const dhValue = dh(ephemeral.privateKey, recipientPublicKey);
  const enc = ephemeral.publicKey;
  const sharedSecret = extractAndExpand(dhValue, concatBytes(enc, recipientPublicKey));
  return { enc, context: keySchedule(aeadId, sharedSecret, info, psk) };
}

/** SetupBaseR: the recipient (ingest server) side. */
export function setupBaseR(enc: Uint8Array, recipientPrivateKey: Uint8Array, info: Uint8Array, options: { aeadId?: number } = {}): ExportContext {
  return setupR(enc, recipientPrivateKey, info, undefined, options);
}

function setupR(enc: Uint8Array, recipientPrivateKey: Uint8Array, info: Uint8Array, psk: Psk | undefined, options: { aeadId?: number }): ExportContext {
  expectBytes('enc', enc, N_ENC);
  expectBytes('recipientPrivateKey', recipientPrivateKey, N_SK);
  expectBytes('info', info);
  const aeadId = checkAeadId(options.aeadId ?? AEAD_EXPORT_ONLY);
  const dhValue = dh(recipientPrivateKey, enc);
  const sharedSecret = extractAndExpand(dhValue, concatBytes(enc, publicKeyOf(recipientPrivateKey)));
  return keySchedule(aeadId, sharedSecret, info, psk);
}
