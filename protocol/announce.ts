// ANNOUNCE: the signed broadcast of a new ingest public key (design brief,
// "Key renewal"; docs/protocol.md section 12). 108 bytes, the same for every
// device of a fleet:
//   0x5A || 0x01 || fleet_id(4) || epoch(4) || pk_ingest_new(32) || flags(1) || 0x00 || sig(64)
//   sig = Ed25519(renewal key, "sealpost/v1 announce" || bytes[0..44))
// carried to the device's `ack` characteristic as six 20-byte writes
// `0xB0|i || 19 bytes` (i = 0..5, the last zero-padded).
import { ed25519 } from '@noble/curves/ed25519.js';
import { concatBytes, equalBytes, expectBytes, expectInteger, utf8 } from './bytes.js';
import { readU32BE, writeU32BE } from './wire/be.js';
import { toHex } from './wire/hex.js';
import { ArgumentError } from './errors.js';
import { FLEET_ID_LEN, type KeyFile } from './keys.js';

export const ANNOUNCE_LEN = 108;
export const ANNOUNCE_SIGNED_LEN = 44;
export const ANNOUNCE_TYPE = 0x5a;
export const ANNOUNCE_VERSION = 0x01;
export const ANNOUNCE_CONTEXT = 'sealpost/v1 announce';
export const ANNOUNCE_WRITES = 6;
export const ANNOUNCE_WRITE_LEN = 20;
export const ANNOUNCE_WRITE_TAG = 0xb0;
const PART = ANNOUNCE_WRITE_LEN - 1;
/** Epochs are 32-bit; 0 is the factory's, so an announcement is for 1 and above. */
export const MAX_EPOCH = 0xffffffff;

export interface Announcement {
  fleetId: Uint8Array;
  epoch: number;
  /** The new ingest public key (X25519). */
  ingestPublicKey: Uint8Array;
  /** Reserved: 0 (docs/decisions.md, "Key renewal, item 1"). */
  flags: number;
}

function signedMessage(bytes: Uint8Array): Uint8Array {
  return concatBytes(utf8(ANNOUNCE_CONTEXT), bytes.subarray(0, ANNOUNCE_SIGNED_LEN));
}

/** Makes the 108-byte ANNOUNCE, signed with the renewal private key (whose file names the fleet). */
export function makeAnnounce(renewalKey: KeyFile, epoch: number, ingestPublicKey: Uint8Array): Uint8Array {
  if (renewalKey.kind !== 'renewal-private') throw new ArgumentError('renewalKey', `expected a renewal-private key, got ${renewalKey.kind}`);
  const fleetId = expectBytes('renewalKey.fleetId', renewalKey.fleetId, FLEET_ID_LEN);
  expectInteger('epoch', epoch, 1, MAX_EPOCH);
  expectBytes('ingestPublicKey', ingestPublicKey, 32);
  const out = new Uint8Array(ANNOUNCE_LEN);
  out[0] = ANNOUNCE_TYPE;
  out[1] = ANNOUNCE_VERSION;
  out.set(fleetId, 2);
  writeU32BE(out, 6, epoch);
  out.set(ingestPublicKey, 10);
  // out[42] flags and out[43] stay 0.
  out.set(ed25519.sign(signedMessage(out), renewalKey.key), ANNOUNCE_SIGNED_LEN);
  return out;
}

export interface AnnounceCheck {
  /** The fleet's renewal public key (from the device file, or a renewal-public key file). */
  renewalPublicKey: Uint8Array;
  /** The receiver's own fleet id. */
  fleetId: Uint8Array;
  /** The receiver's current epoch: the announcement must be above it. */
  currentEpoch: number;
}

/**
 * What a device does with an ANNOUNCE, on the host: the signature verifies
 * under the renewal key, the fleet id is the receiver's own, the epoch is
 * above the receiver's, and the reserved bytes are zero. Throws ArgumentError
 * saying which check failed (a device has no one to tell; a tool does).
 */
export function verifyAnnounce(bytes: Uint8Array, check: AnnounceCheck): Announcement {
  expectBytes('announce', bytes, ANNOUNCE_LEN);
  expectBytes('renewalPublicKey', check.renewalPublicKey, 32);
  expectBytes('fleetId', check.fleetId, FLEET_ID_LEN);
  expectInteger('currentEpoch', check.currentEpoch, 0, MAX_EPOCH);
  const bad = (why: string) => new ArgumentError('announce', why);
  if (bytes[0] !== ANNOUNCE_TYPE || bytes[1] !== ANNOUNCE_VERSION) throw bad('does not start with 5a 01: not a sealpost ANNOUNCE');
  let valid = false;
  try {
    // zip215: false is RFC 8032's strict rule (canonical S and points), the one a device kernel implements.
    valid = ed25519.verify(bytes.subarray(ANNOUNCE_SIGNED_LEN), signedMessage(bytes), check.renewalPublicKey, { zip215: false });
  } catch {
    valid = false;
  }
  if (!valid) throw bad('signature does not verify with the renewal key: it was altered or signed by another key');
  const fleetId = bytes.slice(2, 6);
  if (!equalBytes(fleetId, check.fleetId)) throw bad(`is for fleet ${toHex(fleetId)}, not this fleet ${toHex(check.fleetId)}`);
  const epoch = readU32BE(bytes, 6);
  if (epoch <= check.currentEpoch) throw bad(`is for epoch ${epoch}, not above the current epoch ${check.currentEpoch}: an old announcement replayed`);
  if (bytes[42] !== 0 || bytes[43] !== 0) throw bad(`has flags ${bytes[42]} and reserved byte ${bytes[43]}; this version knows neither (both must be 0)`);
  return { fleetId, epoch, ingestPublicKey: bytes.slice(10, 42), flags: 0 };
}

/** The six writes that carry an ANNOUNCE to the `ack` characteristic. */
export function announceWrites(bytes: Uint8Array): Uint8Array[] {
  expectBytes('announce', bytes, ANNOUNCE_LEN);
  const writes: Uint8Array[] = [];
  for (let i = 0; i < ANNOUNCE_WRITES; i++) {
    const w = new Uint8Array(ANNOUNCE_WRITE_LEN);
    w[0] = ANNOUNCE_WRITE_TAG | i;
    w.set(bytes.subarray(i * PART, Math.min(ANNOUNCE_LEN, (i + 1) * PART)), 1);
    writes.push(w);
  }
  return writes;
}

/**
 * Reassembles an ANNOUNCE from its writes, in any order, with duplicates and
 * unrelated writes among them (a relay may do all of that). A part seen twice
 * with different bytes, a missing part, or a nonzero pad is an error; the
 * result still has to pass verifyAnnounce.
 */
export function joinAnnounceWrites(writes: Uint8Array[]): Uint8Array {
  const parts: (Uint8Array | undefined)[] = new Array(ANNOUNCE_WRITES).fill(undefined);
  writes.forEach((w, n) => {
    expectBytes(`writes[${n}]`, w);
    if (w.length !== ANNOUNCE_WRITE_LEN || (w[0]! & 0xf0) !== ANNOUNCE_WRITE_TAG || (w[0]! & 0x0f) >= ANNOUNCE_WRITES) return;
    const i = w[0]! & 0x0f;
    const seen = parts[i];
    if (seen !== undefined && !equalBytes(seen, w)) throw new ArgumentError(`writes[${n}]`, `is a second, different part ${i}: the parts come from two announcements`);
    parts[i] = w;
  });
  const missing = parts.flatMap((p, i) => (p === undefined ? [i] : []));
  if (missing.length > 0) throw new ArgumentError('writes', `lack part${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${ANNOUNCE_WRITES}`);
  const out = new Uint8Array(ANNOUNCE_WRITES * PART);
  parts.forEach((p, i) => out.set(p!.subarray(1), i * PART));
  if (out.subarray(ANNOUNCE_LEN).some((b) => b !== 0)) throw new ArgumentError('writes', 'part 5 has a nonzero pad after byte 108');
  return out.slice(0, ANNOUNCE_LEN);
}
