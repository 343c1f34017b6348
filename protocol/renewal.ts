// Key renewal, the device's and the server's derivation and the messages
// between them (design brief, "Key renewal"; docs/protocol.md section 12):
//   info   = "sealpost/v1 renew " || serial || epoch(4)
//   psk    = chain_{e-1},  psk_id = "sealpost/v1 chain" || epoch_{e-1}(4)
//   (enc_e, ctx) = SetupPSKS(pk_ingest_new, info, psk, psk_id)      (device)
//   ctx          = SetupPSKR(enc_e, sk_ingest_new, info, psk, psk_id) (server)
//   seal_key_e = Export("sealpost/v1 seal key", 16), nonce_salt_e = Export("sealpost/v1 nonce salt", 8),
//   chain_e    = Export("sealpost/v1 chain", 32)
// REKEY: five ordinary frames under the current key, plaintext
//   0x30+i || payload[7i .. 7i+7)  (zero-padded to F - 12), payload = epoch_lo16(2) || enc_e(32) || 0x00
// RENEW_ACK (16 bytes, one write to `ack`): 0xC5 || epoch(4) || 00 00 00 || tag(8),
//   tag = AES-128-CCM(seal_key_e, nonce_salt_e || epoch(4) || 0x03, empty message).
// "epoch_{e-1}" is the epoch the device is on when it renews: a device that
// missed renewals jumps from its own epoch straight to the announced one.
import { concatBytes, equalBytes, expectBytes, expectInteger, utf8 } from './bytes.js';
import { ccmEncrypt } from './ccm.js';
import { ArgumentError } from './errors.js';
import type { DeviceKeys } from './frame.js';
import { checkDeviceKeys, plaintextLength } from './frame.js';
import { deriveKeyPair, setupPskR, setupPskS, type ExportContext } from './hpke.js';
import { CHAIN_CONTEXT, checkSerial, NONCE_SALT_CONTEXT, SEAL_KEY_CONTEXT } from './provision.js';
import { KEY_LEN, NONCE_LEN, NONCE_SALT_LEN } from './wire/constants.js';
import { readU32BE, writeU32BE } from './wire/be.js';
import { MAX_EPOCH } from './announce.js';

export const RENEW_INFO_PREFIX = 'sealpost/v1 renew ';
import { CHAIN_LEN } from './device-file.js';
/** REKEY frame plaintext types: 0x30 + part index. */
export const REKEY_TYPE = 0x30;
export const REKEY_FRAMES = 5;
export const REKEY_PART_LEN = 7;
/** epoch_lo16 (2) || enc_e (32) || 0x00: five parts of 7 bytes. */
export const REKEY_PAYLOAD_LEN = REKEY_FRAMES * REKEY_PART_LEN;
export const RENEW_ACK_TYPE = 0xc5;
export const RENEW_ACK_LEN = 16;
/** Last byte of the RENEW_ACK nonce (0x01 frames, 0x02 acks: docs/protocol.md section 3). */
export const DOMAIN_RENEW = 0x03;

/** A device's secrets of one epoch: the frame keys and the chain secret of the next renewal. */
export interface EpochKeys extends DeviceKeys {
  /** chain_e: the PSK of the renewal after this one. Secret. */
  chain: Uint8Array;
}

/** info = "sealpost/v1 renew " || serial || epoch(4, big-endian): the serial and the new epoch. */
export function renewInfo(serial: string, epoch: number): Uint8Array {
  checkSerial(serial);
  expectInteger('epoch', epoch, 1, MAX_EPOCH);
  const e = new Uint8Array(4);
  writeU32BE(e, 0, epoch);
  return concatBytes(utf8(RENEW_INFO_PREFIX + serial), e);
}

/** psk_id = "sealpost/v1 chain" || epoch(4): names the chain secret of the epoch the device renews from. */
export function chainPskId(fromEpoch: number): Uint8Array {
  expectInteger('fromEpoch', fromEpoch, 0, MAX_EPOCH - 1);
  const e = new Uint8Array(4);
  writeU32BE(e, 0, fromEpoch);
  return concatBytes(utf8(CHAIN_CONTEXT), e);
}

function exportEpochKeys(context: ExportContext): EpochKeys {
  return {
    sealKey: context.export(utf8(SEAL_KEY_CONTEXT), KEY_LEN),
    nonceSalt: context.export(utf8(NONCE_SALT_CONTEXT), NONCE_SALT_LEN),
    chain: context.export(utf8(CHAIN_CONTEXT), CHAIN_LEN),
  };
}

export interface RenewStep {
  serial: string;
  /** The epoch the device is on (0 after the factory). */
  fromEpoch: number;
  /** The announced epoch, above fromEpoch. */
  toEpoch: number;
  /** chain_{fromEpoch}, 32 bytes. */
  chain: Uint8Array;
}

function checkStep(step: RenewStep): void {
  checkSerial(step.serial);
  expectInteger('fromEpoch', step.fromEpoch, 0, MAX_EPOCH - 1);
  expectInteger('toEpoch', step.toEpoch, step.fromEpoch + 1, MAX_EPOCH);
  expectBytes('chain', step.chain, CHAIN_LEN);
}

export interface DeviceRenewStep extends EpochKeys {
  /** enc_e: the device's ephemeral public key, sent in the REKEY frames. */
  enc: Uint8Array;
}

/**
 * The device's side: SetupPSKS to the announced ingest public key. `ikm` is
 * the 32 random bytes the device draws (E.hwRand); as in RFC 9180's
 * GenerateKeyPair, they go through DeriveKeyPair (section 7.1.3) to the
 * ephemeral key, so fixed randomness gives the vectors of renewal.json.
 */
export function deviceRenew(step: RenewStep, ingestPublicKey: Uint8Array, ikm: Uint8Array): DeviceRenewStep {
  checkStep(step);
  expectBytes('ingestPublicKey', ingestPublicKey, 32);
  expectBytes('ikm', ikm, 32);
  const ephemeral = deriveKeyPair(ikm);
  const { enc, context } = setupPskS(ingestPublicKey, renewInfo(step.serial, step.toEpoch), { psk: step.chain, pskId: chainPskId(step.fromEpoch) }, { ephemeralPrivateKey: ephemeral.privateKey });
  ephemeral.privateKey.fill(0);
  return { enc, ...exportEpochKeys(context) };
}

/** The server's side: SetupPSKR with the epoch's ingest private key. Throws ArgumentError for an enc that is not a valid X25519 key. */
export function serverRenew(step: RenewStep, ingestPrivateKey: Uint8Array, enc: Uint8Array): EpochKeys {
  checkStep(step);
  expectBytes('ingestPrivateKey', ingestPrivateKey, 32);
  expectBytes('enc', enc, 32);
  return exportEpochKeys(setupPskR(enc, ingestPrivateKey, renewInfo(step.serial, step.toEpoch), { psk: step.chain, pskId: chainPskId(step.fromEpoch) }));
}

/** The 35 bytes the REKEY frames carry: epoch_lo16 (2) || enc (32) || 0x00. */
export function rekeyPayload(epoch: number, enc: Uint8Array): Uint8Array {
  expectInteger('epoch', epoch, 1, MAX_EPOCH);
  expectBytes('enc', enc, 32);
  const out = new Uint8Array(REKEY_PAYLOAD_LEN);
  out[0] = (epoch >>> 8) & 0xff;
  out[1] = epoch & 0xff;
  out.set(enc, 2);
  return out;
}

/** The five REKEY plaintexts of a device of frame size F (each F - 12 bytes: 0x30+i, 7 payload bytes, zeros). */
export function rekeyPlaintexts(epoch: number, enc: Uint8Array, frameSize: number): Uint8Array[] {
  const payload = rekeyPayload(epoch, enc);
  const len = plaintextLength(frameSize);
  if (len < 1 + REKEY_PART_LEN) throw new ArgumentError('frameSize', `${frameSize} leaves ${len} plaintext bytes; a REKEY frame needs 8 (frame size 20 or more)`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < REKEY_FRAMES; i++) {
    const p = new Uint8Array(len);
    p[0] = REKEY_TYPE + i;
    p.set(payload.subarray(i * REKEY_PART_LEN, (i + 1) * REKEY_PART_LEN), 1);
    out.push(p);
  }
  return out;
}

/** True when an opened plaintext is a REKEY part (type 0x30..0x34). */
export function isRekeyPlaintext(plaintext: Uint8Array): boolean {
  return plaintext.length >= 1 + REKEY_PART_LEN && plaintext[0]! >= REKEY_TYPE && plaintext[0]! < REKEY_TYPE + REKEY_FRAMES;
}

/** A REKEY part: its index and 7 bytes; undefined for another type or nonzero padding. */
export function rekeyPart(plaintext: Uint8Array): { index: number; bytes: Uint8Array } | undefined {
  if (!isRekeyPlaintext(plaintext)) return undefined;
  for (let i = 1 + REKEY_PART_LEN; i < plaintext.length; i++) if (plaintext[i] !== 0) return undefined;
  return { index: plaintext[0]! - REKEY_TYPE, bytes: plaintext.slice(1, 1 + REKEY_PART_LEN) };
}

/**
 * Joins five parts (by index) into epoch_lo16 and enc; throws ArgumentError
 * for a missing part or a last byte that is not 0x00.
 */
export function joinRekeyParts(parts: readonly (Uint8Array | undefined)[]): { epochLo16: number; enc: Uint8Array } {
  const missing = [0, 1, 2, 3, 4].filter((i) => parts[i] === undefined);
  if (missing.length > 0) throw new ArgumentError('parts', `lack REKEY part${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${REKEY_FRAMES}`);
  const payload = new Uint8Array(REKEY_PAYLOAD_LEN);
  parts.slice(0, REKEY_FRAMES).forEach((p, i) => payload.set(expectBytes(`parts[${i}]`, p, REKEY_PART_LEN), i * REKEY_PART_LEN));
  if (payload[REKEY_PAYLOAD_LEN - 1] !== 0) throw new ArgumentError('parts', 'end in a nonzero byte; the REKEY payload ends in 0x00');
  return { epochLo16: (payload[0]! << 8) | payload[1]!, enc: payload.slice(2, 34) };
}

/** nonce = nonce_salt_e (8) || epoch (4, big-endian) || 0x03: 13 bytes, the layout of every nonce of section 3. */
export function renewNonce(nonceSalt: Uint8Array, epoch: number): Uint8Array {
  expectBytes('nonceSalt', nonceSalt, NONCE_SALT_LEN);
  expectInteger('epoch', epoch, 1, MAX_EPOCH);
  const nonce = new Uint8Array(NONCE_LEN);
  nonce.set(nonceSalt, 0);
  writeU32BE(nonce, NONCE_SALT_LEN, epoch);
  nonce[NONCE_LEN - 1] = DOMAIN_RENEW;
  return nonce;
}

const EMPTY = new Uint8Array(0);

/** The server's 16-byte confirmation, under the NEW keys of `epoch`. */
export function makeRenewAck(keys: DeviceKeys, epoch: number): Uint8Array {
  checkDeviceKeys(keys);
  const out = new Uint8Array(RENEW_ACK_LEN);
  out[0] = RENEW_ACK_TYPE;
  writeU32BE(out, 1, epoch);
  out.set(ccmEncrypt(keys.sealKey, renewNonce(keys.nonceSalt, epoch), EMPTY).tag, 8);
  return out;
}

/**
 * The device's check of a RENEW_ACK, with the new keys it derived for
 * `epoch`: length, type, epoch, zero bytes and tag (constant-time). False
 * for anything else; the device then stays pending and resends REKEY.
 */
export function verifyRenewAck(keys: DeviceKeys, epoch: number, bytes: Uint8Array): boolean {
  checkDeviceKeys(keys);
  expectBytes('renewAck', bytes);
  if (bytes.length !== RENEW_ACK_LEN || bytes[0] !== RENEW_ACK_TYPE) return false;
  if (readU32BE(bytes, 1) !== epoch || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) return false;
  return equalBytes(ccmEncrypt(keys.sealKey, renewNonce(keys.nonceSalt, epoch), EMPTY).tag, bytes.subarray(8));
}
