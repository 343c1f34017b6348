// Fleet key files on disk (docs/protocol.md section 9): `sealpost keys init`
// makes them, `sealpost provision` reads them, `sealpost keys renew` adds the
// next ingest key pair and its ANNOUNCE (docs/factory.md section 1). Private files are created
// 0600 with O_EXCL and never printed; errors name the file and say which
// file was expected instead.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  encodeKeyFile,
  keyFilePublicKey,
  makeAnnounce,
  newFactoryKey,
  newIngestKey,
  newRenewalKey,
  parseKeyFile,
  readU32BE,
  toHex,
  verifyAnnounce,
  type KeyFile,
  type KeyKind,
} from '../protocol/index.js';
import { fsyncDir, writeNewFile } from './fsutil.js';

export interface KeySetPaths {
  ingestId: string;
  factoryId: string;
  ingestPrivate: string;
  ingestPublic: string;
  factoryPrivate: string;
  factoryPublic: string;
  renewalId: string;
  /** The fleet id, 8 hex digits: in the renewal key files, every format-2 device file, manifest and ANNOUNCE. */
  fleetId: string;
  renewalPrivate: string;
  renewalPublic: string;
}

const KEY_FILE_NAME = /^(ingest|factory|renewal)-(ik|fk|rk)-[0-9a-f]{16}\.(key|pub)$/;
/** ANNOUNCE files of `keys renew`: announce-<epoch, 8 decimal digits>.bin. */
const ANNOUNCE_FILE_NAME = /^announce-(\d{8})\.bin$/;

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
  const renewal = newRenewalKey(random);
  const paths: KeySetPaths = {
    ingestId: ingest.publicFile.id,
    factoryId: factory.publicFile.id,
    ingestPrivate: join(root, `ingest-${ingest.privateFile.id}.key`),
    ingestPublic: join(root, `ingest-${ingest.publicFile.id}.pub`),
    factoryPrivate: join(root, `factory-${factory.privateFile.id}.key`),
    factoryPublic: join(root, `factory-${factory.publicFile.id}.pub`),
    renewalId: renewal.publicFile.id,
    fleetId: toHex(renewal.publicFile.fleetId!),
    renewalPrivate: join(root, `renewal-${renewal.privateFile.id}.key`),
    renewalPublic: join(root, `renewal-${renewal.publicFile.id}.pub`),
  };
  try {
    writeAll(root, [
      [paths.ingestPrivate, encodeKeyFile(ingest.privateFile), 0o600],
      [paths.ingestPublic, encodeKeyFile(ingest.publicFile), 0o644],
      [paths.factoryPrivate, encodeKeyFile(factory.privateFile), 0o600],
      [paths.factoryPublic, encodeKeyFile(factory.publicFile), 0o644],
      [paths.renewalPrivate, encodeKeyFile(renewal.privateFile), 0o600],
      [paths.renewalPublic, encodeKeyFile(renewal.publicFile), 0o644],
    ]);
  } finally {
    ingest.privateFile.key.fill(0);
    factory.privateFile.key.fill(0);
    renewal.privateFile.key.fill(0);
  }
  return paths;
}

/** Creates every file of `plan` (O_EXCL, fsynced), then fsyncs `root`; on any failure removes those it made. */
function writeAll(root: string, plan: [path: string, data: string | Uint8Array, mode: number][]): void {
  const written: string[] = [];
  try {
    for (const [path, data, mode] of plan) {
      writeNewFile(path, data, mode);
      written.push(path);
    }
    fsyncDir(root);
  } catch (e) {
    for (const path of written) unlinkSync(path);
    throw e;
  }
}

export interface RenewResult {
  epoch: number;
  ingestId: string;
  ingestPrivate: string;
  ingestPublic: string;
  announcePath: string;
  renewalId: string;
  fleetId: string;
}

/** The single key file of `dir` named `prefix`<id>`ext`, or an error saying what is missing or ambiguous. */
function onlyFile(dir: string, names: string[], prefix: string, ext: string, what: string): string {
  const hits = names.filter((n) => n.startsWith(prefix) && n.endsWith(ext) && KEY_FILE_NAME.test(n));
  if (hits.length === 0) throw new Error(`${dir} holds no ${what} (${prefix}<id>${ext}); pass the --keys directory made by sealpost keys init, with the renewal .key file brought back from its offline store`);
  if (hits.length > 1) throw new Error(`${dir} holds ${hits.length} ${what}s (${hits.join(', ')}); one key set per directory: keep the one this fleet uses`);
  return join(dir, hits[0]!);
}

/**
 * `keys renew`: the next ingest key pair (epoch e+1) and its ANNOUNCE, signed
 * with the renewal private key of `dir`. The current epoch is the highest
 * announce-<epoch>.bin already in `dir` (0 when there is none), each checked
 * against the renewal key, so a damaged or foreign file stops the command
 * before anything is written.
 */
export function renewKeys(dir: string, random?: (n: number) => Uint8Array): RenewResult {
  const root = resolve(dir);
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    throw new Error(`--keys ${root} is not a readable directory; pass the directory made by sealpost keys init`);
  }
  const renewalPath = onlyFile(root, names, 'renewal-', '.key', 'renewal private key');
  const renewal = loadKeyFile(renewalPath, 'renewal-private', '--keys');
  const renewalPublicKey = keyFilePublicKey(renewal);
  let epoch = 0;
  for (const name of names) {
    const m = ANNOUNCE_FILE_NAME.exec(name);
    if (!m) continue;
    const path = join(root, name);
    const bytes = new Uint8Array(readFileSync(path));
    const fileEpoch = bytes.length >= 10 ? readU32BE(bytes, 6) : -1;
    try {
      verifyAnnounce(bytes, { renewalPublicKey, fleetId: renewal.fleetId!, currentEpoch: 0 });
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}; nothing was written. Move that file out of ${root} if it is not this fleet's`);
    }
    if (fileEpoch !== Number(m[1])) throw new Error(`${path} holds epoch ${fileEpoch}, not the ${Number(m[1])} of its name; nothing was written. Rename it announce-${String(fileEpoch).padStart(8, '0')}.bin`);
    epoch = Math.max(epoch, fileEpoch);
  }
  const next = epoch + 1;
  if (next > 99_999_999) throw new Error(`epoch ${next} does not fit the 8-digit announce file name; nothing was written`);
  const ingest = newIngestKey(random);
  const announce = makeAnnounce(renewal, next, ingest.publicFile.key);
  renewal.key.fill(0);
  const result: RenewResult = {
    epoch: next,
    ingestId: ingest.publicFile.id,
    ingestPrivate: join(root, `ingest-${ingest.privateFile.id}.key`),
    ingestPublic: join(root, `ingest-${ingest.publicFile.id}.pub`),
    announcePath: join(root, `announce-${String(next).padStart(8, '0')}.bin`),
    renewalId: renewal.id,
    fleetId: toHex(renewal.fleetId!),
  };
  try {
    writeAll(root, [
      [result.ingestPrivate, encodeKeyFile(ingest.privateFile), 0o600],
      [result.ingestPublic, encodeKeyFile(ingest.publicFile), 0o644],
      [result.announcePath, announce, 0o644],
    ]);
  } finally {
    ingest.privateFile.key.fill(0);
  }
  return result;
}

const HINT: Record<KeyKind, string> = {
  'ingest-public': 'the ingest-<id>.pub file from `sealpost keys init`',
  'ingest-private': 'the ingest-<id>.key file from `sealpost keys init`',
  'factory-private': 'the factory-<id>.key file from `sealpost keys init`',
  'factory-public': 'the factory-<id>.pub file from `sealpost keys init`',
  'renewal-private': 'the renewal-<id>.key file from `sealpost keys init` (kept offline)',
  'renewal-public': 'the renewal-<id>.pub file from `sealpost keys init`',
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
  if (expected === 'renewal-public' && text.includes('sealpost-renewal-private-key')) {
    throw new Error(`${flag} ${path} is the renewal PRIVATE key. The factory needs only the public half: pass renewal-<id>.pub, and keep the .key file offline`);
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
