// Key files and key ids (docs/protocol.md section 9). The fleet has three kinds
// of key pair: the ingest key (X25519; private half only on ingest servers),
// factory signing keys (Ed25519; private half only at the factory) and the
// renewal key (Ed25519; private half offline, signs ANNOUNCE; its files also
// carry the fleet id, the 4 bytes every ANNOUNCE and device names). Files
// are small JSON documents so an operator can tell them apart by eye; the
// private ones are written 0600 by their tools and never printed.
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from 'node:crypto';
import { expectBytes, fromHex } from './bytes.js';
import { toHex } from './wire/hex.js';
import { ArgumentError } from './errors.js';

export type KeyKind = 'ingest-private' | 'ingest-public' | 'factory-private' | 'factory-public' | 'renewal-private' | 'renewal-public';

const KIND_TAG: Record<KeyKind, string> = {
  'ingest-private': 'sealpost-ingest-private-key',
  'ingest-public': 'sealpost-ingest-public-key',
  'factory-private': 'sealpost-factory-private-key',
  'factory-public': 'sealpost-factory-public-key',
  'renewal-private': 'sealpost-renewal-private-key',
  'renewal-public': 'sealpost-renewal-public-key',
};

const ID_PREFIX = { ingest: 'ik', factory: 'fk', renewal: 'rk' } as const;
type KeyPrefix = (typeof ID_PREFIX)[keyof typeof ID_PREFIX];

/** Length of a fleet id (design brief, "Key renewal": ANNOUNCE's fleet_id(4)). */
export const FLEET_ID_LEN = 4;
/**
 * Renewal key files bind their fleet id with a signature of the renewal key
 * over "sealpost/v1 fleet" || fleet_id, so an edited fleet id (which would
 * make every device of a batch refuse every ANNOUNCE) is caught like an
 * edited key id.
 */
const FLEET_CONTEXT = new TextEncoder().encode('sealpost/v1 fleet');

function fleetMessage(fleetId: Uint8Array): Uint8Array {
  const m = new Uint8Array(FLEET_CONTEXT.length + FLEET_ID_LEN);
  m.set(FLEET_CONTEXT, 0);
  m.set(fleetId, FLEET_CONTEXT.length);
  return m;
}

export interface KeyFile {
  kind: KeyKind;
  /** "ik-", "fk-" or "rk-" and the first 8 bytes of SHA-256(public key), hex. */
  id: string;
  /** 32 bytes: X25519 private key, Ed25519 seed, or the public key. */
  key: Uint8Array;
  /** Renewal key files only: the fleet id, 4 random bytes from `keys init`. */
  fleetId?: Uint8Array;
  /** Renewal key files only: Ed25519 by the renewal key over "sealpost/v1 fleet" || fleet id. */
  fleetSignature?: Uint8Array;
}

export function keyId(prefix: KeyPrefix, publicKey: Uint8Array): string {
  return `${prefix}-${toHex(sha256(publicKey).subarray(0, 8))}`;
}

export function newIngestKey(random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n))): { privateFile: KeyFile; publicFile: KeyFile } {
  const priv = random(32);
  const pub = x25519.getPublicKey(priv);
  const id = keyId('ik', pub);
  return { privateFile: { kind: 'ingest-private', id, key: priv }, publicFile: { kind: 'ingest-public', id, key: pub } };
}

export function newFactoryKey(random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n))): { privateFile: KeyFile; publicFile: KeyFile } {
  const seed = random(32);
  const pub = ed25519.getPublicKey(seed);
  const id = keyId('fk', pub);
  return { privateFile: { kind: 'factory-private', id, key: seed }, publicFile: { kind: 'factory-public', id, key: pub } };
}

/** The renewal key pair and the fleet id it announces for (4 random bytes, design brief "Key renewal"). */
export function newRenewalKey(random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n))): { privateFile: KeyFile; publicFile: KeyFile } {
  const seed = random(32);
  const fleetId = random(FLEET_ID_LEN).slice();
  const pub = ed25519.getPublicKey(seed);
  const id = keyId('rk', pub);
  const fleetSignature = ed25519.sign(fleetMessage(fleetId), seed);
  return {
    privateFile: { kind: 'renewal-private', id, key: seed, fleetId, fleetSignature },
    publicFile: { kind: 'renewal-public', id, key: pub, fleetId: fleetId.slice(), fleetSignature: fleetSignature.slice() },
  };
}

/** The public half of a key file (for private files it is derived). */
export function keyFilePublicKey(file: KeyFile): Uint8Array {
  switch (file.kind) {
    case 'ingest-private':
      return x25519.getPublicKey(file.key);
    case 'factory-private':
    case 'renewal-private':
      return ed25519.getPublicKey(file.key);
    default:
      return file.key;
  }
}

export function encodeKeyFile(file: KeyFile): string {
  const field = file.kind.endsWith('private') ? 'private_key' : 'public_key';
  const doc: Record<string, string> = { kind: KIND_TAG[file.kind], id: file.id };
  if (file.kind.startsWith('renewal')) {
    doc.fleet_id = toHex(expectBytes('fleetId', file.fleetId, FLEET_ID_LEN));
    doc.fleet_signature = toHex(expectBytes('fleetSignature', file.fleetSignature, 64));
  }
  doc[field] = toHex(file.key);
  return JSON.stringify(doc, null, 2) + '\n';
}

/**
 * Parses a key file and checks it is of the expected kind and that its id
 * matches its key, so a swapped or edited file is caught before use.
 */
export function parseKeyFile(text: string, expected: KeyKind, source = 'key file'): KeyFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ArgumentError(source, 'is not a sealpost key file (not JSON)');
  }
  if (doc === null || typeof doc !== 'object') throw new ArgumentError(source, 'is not a sealpost key file');
  const d = doc as Record<string, unknown>;
  const kind = (Object.keys(KIND_TAG) as KeyKind[]).find((k) => KIND_TAG[k] === d.kind);
  if (kind === undefined) throw new ArgumentError(source, `is not a sealpost key file (kind ${JSON.stringify(d.kind)})`);
  if (kind !== expected) throw new ArgumentError(source, `holds a ${kind} key, expected a ${expected} key`);
  const field = kind.endsWith('private') ? 'private_key' : 'public_key';
  if (typeof d[field] !== 'string') throw new ArgumentError(source, `has no ${field}`);
  const key = expectBytes(`${source} ${field}`, fromHex(`${source} ${field}`, d[field] as string), 32);
  const file: KeyFile = { kind, id: String(d.id), key };
  if (kind.startsWith('renewal')) {
    if (typeof d.fleet_id !== 'string' || !/^[0-9a-f]{8}$/.test(d.fleet_id)) throw new ArgumentError(source, 'has no fleet_id (8 lowercase hex digits)');
    file.fleetId = fromHex(`${source} fleet_id`, d.fleet_id);
    if (typeof d.fleet_signature !== 'string' || !/^[0-9a-f]{128}$/.test(d.fleet_signature)) throw new ArgumentError(source, 'has no fleet_signature (128 lowercase hex digits)');
    file.fleetSignature = fromHex(`${source} fleet_signature`, d.fleet_signature);
  }
  const publicKey = keyFilePublicKey(file);
  const id = keyId(ID_PREFIX[kind.split('-')[0] as keyof typeof ID_PREFIX], publicKey);
  if (file.id !== id) throw new ArgumentError(source, `has id ${JSON.stringify(file.id)} but its key's id is ${id}: the file was edited or damaged`);
  if (file.fleetId !== undefined && !ed25519.verify(file.fleetSignature!, fleetMessage(file.fleetId), publicKey, { zip215: false })) {
    throw new ArgumentError(source, `has fleet_id ${toHex(file.fleetId)}, which its renewal key did not sign: the file was edited or damaged`);
  }
  return file;
}
