// Fleet key files on disk (docs/protocol.md section 9): `sealpost keys init`
// makes them, `sealpost provision` reads them. Private files are created
// 0600 with O_EXCL and never printed; errors name the file and say which
// file was expected instead.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { encodeKeyFile, newFactoryKey, newIngestKey, parseKeyFile, type KeyFile, type KeyKind } from '../protocol/index.js';
import { fsyncDir, writeNewFile } from './fsutil.js';

export interface KeySetPaths {
  ingestId: string;
  factoryId: string;
  ingestPrivate: string;
  ingestPublic: string;
  factoryPrivate: string;
  factoryPublic: string;
}

const KEY_FILE_NAME = /^(ingest|factory)-(ik|fk)-[0-9a-f]{16}\.(key|pub)$/;

/**
 * Makes a new ingest key pair and a new factory key pair in `dir`. Refuses a
 * directory that already holds sealpost key files, so one directory is one
 * key set and nothing is ever overwritten.
 */
export function initKeys(dir: string, random?: (n: number) => Uint8Array): KeySetPaths {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const existing = readdirSync(root).filter((n) => KEY_FILE_NAME.test(n));
  if (existing.length > 0) {
    throw new Error(`${root} already holds key files (${existing.slice(0, 4).join(', ')}); nothing was written. Use a new --dir for a new key set`);
  }
  const ingest = newIngestKey(random);
  const factory = newFactoryKey(random);
  const paths: KeySetPaths = {
    ingestId: ingest.publicFile.id,
    factoryId: factory.publicFile.id,
    ingestPrivate: join(root, `ingest-${ingest.privateFile.id}.key`),
    ingestPublic: join(root, `ingest-${ingest.publicFile.id}.pub`),
    factoryPrivate: join(root, `factory-${factory.privateFile.id}.key`),
    factoryPublic: join(root, `factory-${factory.publicFile.id}.pub`),
  };
  const plan: [string, KeyFile, number][] = [
    [paths.ingestPrivate, ingest.privateFile, 0o600],
    [paths.ingestPublic, ingest.publicFile, 0o644],
    [paths.factoryPrivate, factory.privateFile, 0o600],
    [paths.factoryPublic, factory.publicFile, 0o644],
  ];
  const written: string[] = [];
  try {
    for (const [path, file, mode] of plan) {
      writeNewFile(path, encodeKeyFile(file), mode);
      written.push(path);
    }
    fsyncDir(root);
  } catch (e) {
    for (const path of written) unlinkSync(path);
    throw e;
  } finally {
    ingest.privateFile.key.fill(0);
    factory.privateFile.key.fill(0);
  }
  return paths;
}

const HINT: Record<KeyKind, string> = {
  'ingest-public': 'the ingest-<id>.pub file from `sealpost keys init`',
  'ingest-private': 'the ingest-<id>.key file from `sealpost keys init`',
  'factory-private': 'the factory-<id>.key file from `sealpost keys init`',
  'factory-public': 'the factory-<id>.pub file from `sealpost keys init`',
};

/**
 * Reads a key file of the expected kind. `flag` names the option in errors.
 * Never includes key material in a message: parse errors from protocol/keys
 * name fields and ids only.
 */
export function loadKeyFile(path: string, expected: KeyKind, flag: string): KeyFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : 'cannot be read'}; pass ${HINT[expected]}`);
  }
  if (expected === 'ingest-public' && text.includes('sealpost-ingest-private-key')) {
    throw new Error(
      `${flag} ${path} is the ingest PRIVATE key. The factory must only ever hold the public half: pass ingest-<id>.pub, and move the .key file to the ingest server (and off this machine)`,
    );
  }
  try {
    return parseKeyFile(text, expected, `${flag} ${path}`);
  } catch (e) {
    throw new Error(`${(e as Error).message}; pass ${HINT[expected]}`);
  }
}

/** A private key file readable by group or others; the caller warns. */
export function looseKeyFileMode(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const mode = statSync(path).mode & 0o777;
  return (mode & 0o077) !== 0 ? mode : undefined;
}
