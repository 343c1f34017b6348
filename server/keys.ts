// The ingest key ring and the per-device key cache (design brief, "Who holds
// what"; docs/protocol.md sections 2 and 9). The server holds one or more
// X25519 ingest private keys, by key id, so new batches can move to a new key
// while old devices keep working. A device's seal key and nonce salt are
// re-derived from its registry row with HPKE SetupBaseR on first use and kept
// in a bounded LRU: the cache is a memo of a pure function of (key, serial,
// enc), so several ingest nodes never need to share it.
import { readFileSync, statSync } from 'node:fs';
import { equalBytes, parseKeyFile, recoverDeviceKeys, type DeviceKeys, type KeyFile } from '../protocol/index.js';
import { Lru } from './lru.js';
import type { DeviceRow } from './storage/types.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Refuses a private key file that group or others may access (mode & 0o077). */
export function checkPrivateKeyMode(file: string): void {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (e) {
    throw new ConfigError(`cannot read key file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(
      `private key file ${file} is accessible to group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
        `restrict it with: chmod 600 ${file}`,
    );
  }
}

function readKeyText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read key file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function parse(file: string, kind: KeyFile['kind']): KeyFile {
  try {
    return parseKeyFile(readKeyText(file), kind, file);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError((e as Error).message);
  }
}

/** Loads ingest private keys (permission check first); refuses duplicate ids. */
export function loadIngestKeys(files: readonly string[]): KeyFile[] {
  const keys: KeyFile[] = [];
  for (const file of files) {
    checkPrivateKeyMode(file);
    const key = parse(file, 'ingest-private');
    if (keys.some((k) => k.id === key.id)) throw new ConfigError(`ingest key ${key.id} is listed twice (again in ${file})`);
    keys.push(key);
  }
  return keys;
}

/** Loads factory public keys the registry trusts to sign manifests. */
export function loadTrustedKeys(files: readonly string[]): KeyFile[] {
  return files.map((file) => parse(file, 'factory-public'));
}

/**
 * Ingest key ids from files that may be private (server) or public (an
 * operator's machine that only imports manifests).
 */
export function loadIngestKeyIds(files: readonly string[]): string[] {
  return files.map((file) => {
    const text = readKeyText(file);
    try {
      return parseKeyFile(text, 'ingest-public', file).id;
    } catch {
      checkPrivateKeyMode(file);
      return parse(file, 'ingest-private').id;
    }
  });
}

/** Why a device's keys are not available; the frame is rejected with this reason. */
export class DeviceKeyError extends Error {}

interface CachedKeys {
  enc: Uint8Array;
  keyId: string;
  keys: DeviceKeys;
}

export class Keyring {
  private readonly privateKeys = new Map<string, Uint8Array>();
  private readonly cache: Lru<string, CachedKeys>;

  constructor(ingestKeys: readonly KeyFile[], cacheSize = 50_000) {
    for (const k of ingestKeys) {
      if (k.kind !== 'ingest-private') throw new ConfigError(`key ${k.id} is a ${k.kind} key, expected an ingest-private key`);
      this.privateKeys.set(k.id, k.key);
    }
    this.cache = new Lru(cacheSize);
  }

  get keyIds(): string[] {
    return [...this.privateKeys.keys()];
  }

  /** The device's seal key and nonce salt; throws DeviceKeyError with a reason. */
  deviceKeys(row: DeviceRow): DeviceKeys {
    const hit = this.cache.get(row.serial);
    if (hit && hit.keyId === row.ingestKeyId && equalBytes(hit.enc, row.enc)) return hit.keys;
    const privateKey = this.privateKeys.get(row.ingestKeyId);
    if (!privateKey) throw new DeviceKeyError(`ingest key ${row.ingestKeyId} is not loaded on this server`);
    let keys: DeviceKeys;
    try {
      keys = recoverDeviceKeys(privateKey, row.enc, row.serial);
    } catch {
      throw new DeviceKeyError('device keys cannot be derived from its registry row');
    }
    this.cache.set(row.serial, { enc: row.enc, keyId: row.ingestKeyId, keys });
    return keys;
  }

  /** Drops a device from the cache (revoked devices). */
  forget(serial: string): void {
    this.cache.delete(serial);
  }

  cached(serial: string): boolean {
    return this.cache.has(serial);
  }
}
