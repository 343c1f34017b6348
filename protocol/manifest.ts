// Batch manifests (docs/protocol.md section 10): the registry rows of one
// factory batch, signed with a factory key (Ed25519). The signed bytes are
// the `body` string exactly as stored, so no JSON canonicalisation is needed:
//   signature = Ed25519(factory key, "sealpost/v1 manifest\n" || UTF-8(body))
import { ed25519 } from '@noble/curves/ed25519.js';
import { concatBytes, expectBytes, fromHex, utf8 } from './bytes.js';
import { toHex } from './wire/hex.js';
import { ArgumentError } from './errors.js';
import { checkSerial } from './provision.js';
import type { KeyFile } from './keys.js';
import { MAX_FRAME_SIZE } from './wire/constants.js';
import { MIN_DEVICE_FRAME_SIZE } from './device-file.js';

export const MANIFEST_FORMAT = 'sealpost-manifest/1';
const SIGNING_CONTEXT = utf8('sealpost/v1 manifest\n');

export interface ManifestDevice {
  serial: string;
  /** HPKE enc, hex. */
  enc: string;
}

export interface ManifestBody {
  batch: string;
  created: string;
  board: string;
  frame_size: number;
  ingest_key_id: string;
  /** The fleet id, 8 lowercase hex digits, when the batch's devices can renew (device file format 2). */
  fleet_id?: string;
  devices: ManifestDevice[];
}

export interface SignedManifest {
  format: typeof MANIFEST_FORMAT;
  factory_key_id: string;
  body: string;
  signature: string;
}

const BATCH_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BOARD_PATTERN = /^[a-z0-9-]{1,32}$/;

export function checkBody(body: unknown): ManifestBody {
  const bad = (path: string, why: string) => new ArgumentError(`manifest ${path}`, why);
  if (body === null || typeof body !== 'object') throw bad('body', 'is not an object');
  const b = body as Record<string, unknown>;
  if (typeof b.batch !== 'string' || !BATCH_PATTERN.test(b.batch)) throw bad('batch', 'must be 1-64 characters A-Z a-z 0-9 . _ -');
  if (typeof b.created !== 'string' || Number.isNaN(Date.parse(b.created))) throw bad('created', 'must be an ISO 8601 date');
  if (typeof b.board !== 'string' || !BOARD_PATTERN.test(b.board)) throw bad('board', 'must be a board id such as "puckjs"');
  if (typeof b.frame_size !== 'number' || !Number.isInteger(b.frame_size) || b.frame_size < MIN_DEVICE_FRAME_SIZE || b.frame_size > MAX_FRAME_SIZE) {
    throw bad('frame_size', `must be an integer ${MIN_DEVICE_FRAME_SIZE}..${MAX_FRAME_SIZE}`);
  }
  if (typeof b.ingest_key_id !== 'string' || !/^ik-[0-9a-f]{16}$/.test(b.ingest_key_id)) throw bad('ingest_key_id', 'must be an ingest key id "ik-" + 16 hex digits');
  if (b.fleet_id !== undefined && (typeof b.fleet_id !== 'string' || !/^[0-9a-f]{8}$/.test(b.fleet_id))) throw bad('fleet_id', 'must be a fleet id of 8 lowercase hex digits, or absent');
  if (!Array.isArray(b.devices) || b.devices.length === 0) throw bad('devices', 'must be a non-empty array');
  const seen = new Set<string>();
  b.devices.forEach((d: unknown, i: number) => {
    if (d === null || typeof d !== 'object') throw bad(`devices[${i}]`, 'is not an object');
    const dev = d as Record<string, unknown>;
    try {
      checkSerial(dev.serial);
    } catch (e) {
      throw bad(`devices[${i}].serial`, (e as Error).message);
    }
    if (typeof dev.enc !== 'string' || !/^[0-9a-f]{64}$/.test(dev.enc)) throw bad(`devices[${i}].enc`, 'must be 64 lowercase hex digits');
    if (seen.has(dev.serial as string)) throw bad(`devices[${i}].serial`, `repeats serial ${dev.serial as string}`);
    seen.add(dev.serial as string);
  });
  return b as unknown as ManifestBody;
}

function message(body: string): Uint8Array {
  return concatBytes(SIGNING_CONTEXT, utf8(body));
}

export function signManifest(body: ManifestBody, factoryKey: KeyFile): SignedManifest {
  if (factoryKey.kind !== 'factory-private') throw new ArgumentError('factoryKey', `expected a factory-private key, got ${factoryKey.kind}`);
  const text = JSON.stringify(checkBody(body));
  return { format: MANIFEST_FORMAT, factory_key_id: factoryKey.id, body: text, signature: toHex(ed25519.sign(message(text), factoryKey.key)) };
}

export function encodeManifest(m: SignedManifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}

/**
 * Parses and verifies a manifest against the trusted factory public keys.
 * Throws with the reason for: not JSON, unknown format, unknown signer, bad
 * signature, malformed body. Returns the body only when all checks pass.
 */
export function verifyManifest(text: string, trusted: KeyFile[]): { body: ManifestBody; factoryKeyId: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ArgumentError('manifest', 'is not JSON');
  }
  const m = doc as Partial<SignedManifest> | null;
  if (m === null || typeof m !== 'object' || m.format !== MANIFEST_FORMAT) {
    throw new ArgumentError('manifest', `is not a ${MANIFEST_FORMAT} document`);
  }
  if (typeof m.body !== 'string' || typeof m.signature !== 'string' || typeof m.factory_key_id !== 'string') {
    throw new ArgumentError('manifest', 'is unsigned or incomplete (needs factory_key_id, body, signature)');
  }
  const signer = trusted.find((k) => k.kind === 'factory-public' && k.id === m.factory_key_id);
  if (!signer) throw new ArgumentError('manifest', `is signed by factory key ${m.factory_key_id}, which this server does not trust`);
  let signature: Uint8Array;
  try {
    signature = expectBytes('manifest signature', fromHex('manifest signature', m.signature), 64);
  } catch {
    throw new ArgumentError('manifest', 'has a malformed signature');
  }
  if (!ed25519.verify(signature, message(m.body), signer.key)) {
    throw new ArgumentError('manifest', `signature does not verify with factory key ${signer.id}: the manifest was altered or signed by another key`);
  }
  let body: unknown;
  try {
    body = JSON.parse(m.body);
  } catch {
    throw new ArgumentError('manifest', 'body is not JSON');
  }
  return { body: checkBody(body), factoryKeyId: signer.id };
}
