// Key files and key ids (docs/protocol.md section 9). The fleet has two kinds
// of key pair: the ingest key (X25519; private half only on ingest servers)
// and factory signing keys (Ed25519; private half only at the factory). Files
// are small JSON documents so an operator can tell them apart by eye; the
// private ones are written 0600 by their tools and never printed.
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from 'node:crypto';
import { expectBytes, fromHex } from './bytes.js';
import { toHex } from './wire/hex.js';
import { ArgumentError } from './errors.js';

export type KeyKind = 'ingest-private' | 'ingest-public' | 'factory-private' | 'factory-public';

const KIND_TAG: Record<KeyKind, string> = {
  'ingest-private': 'sealpost-ingest-private-key',
  'ingest-public': 'sealpost-ingest-public-key',
  'factory-private': 'sealpost-factory-private-key',
  'factory-public': 'sealpost-factory-public-key',
};

export interface KeyFile {
  kind: KeyKind;
  /** "ik-" or "fk-" and the first 8 bytes of SHA-256(public key), hex. */
  id: string;
  /** 32 bytes: X25519 private key, Ed25519 seed, or the public key. */
  key: Uint8Array;
}

export function keyId(prefix: 'ik' | 'fk', publicKey: Uint8Array): string {
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

/** The public half of a key file (for private files it is derived). */
export function keyFilePublicKey(file: KeyFile): Uint8Array {
  switch (file.kind) {
    case 'ingest-private':
      return x25519.getPublicKey(file.key);
    case 'factory-private':
      return ed25519.getPublicKey(file.key);
    default:
      return file.key;
  }
}

export function encodeKeyFile(file: KeyFile): string {
  const field = file.kind.endsWith('private') ? 'private_key' : 'public_key';
  return JSON.stringify({ kind: KIND_TAG[file.kind], id: file.id, [field]: toHex(file.key) }, null, 2) + '\n';
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
  const id = keyId(kind.startsWith('ingest') ? 'ik' : 'fk', keyFilePublicKey(file));
  if (file.id !== id) throw new ArgumentError(source, `has id ${JSON.stringify(file.id)} but its key's id is ${id}: the file was edited or damaged`);
  return file;
}
