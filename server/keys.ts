// The ingest key ring and the per-device key cache (design brief, "Who holds
// what" and "Trust at the server's edge"; docs/protocol.md sections 2 and 9;
// docs/server.md, "Wrapped device keys"). The server holds one or more X25519
// ingest private keys, by key id, so new batches can move to a new key while
// old devices keep working. A device's seal key and nonce salt are derived
// from its registry row with HPKE SetupBaseR ONCE (registry import, server
// start, or at worst its first frame) and stored in the row wrapped with
// AES-256-GCM under a key-encryption key derived from the ingest private key;
// the request path only unwraps (symmetric), so a request naming many serials
// costs no public-key work. Unwrapped keys stay in a bounded LRU: a memo of a
// pure function of (key, serial, enc), so several ingest nodes never share it.
//
// A request's rows are unwrapped together (keysFor): the GCM keystream of
// every blob comes from ONE AES-256 call on the KEK's long-lived ECB context,
// and the GCM tag is checked (confirm) only once a frame has authenticated
// under the keys so obtained, before anything of it is stored or answered.
// Junk frames therefore cost no cipher context for the wrap (docs/server.md,
// "Junk uplinks"); a row whose blob was moved or altered gives keys that
// authenticate nothing, and is found by confirm or by a budgeted audit.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, type Cipher } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { CHAIN_CONTEXT, deviceInfo, equalBytes, parseKeyFile, recoverDeviceKeys, serverRenew, setupBaseR, type DeviceKeys, type EpochKeys, type KeyFile, type RenewStep } from '../protocol/index.js';
import { ConfigError, DeviceKeyError } from './errors.js';
import { Lru } from './lru.js';
import type { DeviceKeyRow, DeviceRow, Storage, UnwrappedDevice } from './storage/types.js';

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
 * Ingest keys from files that may be private or public (`registry import`):
 * every id, and the private keys among them (which let the import wrap).
 */
export function loadIngestKeysForImport(files: readonly string[]): { ids: string[]; privateKeys: KeyFile[] } {
  const ids: string[] = [];
  const privateKeys: KeyFile[] = [];
  for (const file of files) {
    const text = readKeyText(file);
    try {
      ids.push(parseKeyFile(text, 'ingest-public', file).id);
    } catch {
      checkPrivateKeyMode(file);
      const key = parse(file, 'ingest-private');
      ids.push(key.id);
      privateKeys.push(key);
    }
  }
  return { ids, privateKeys };
}

// Wrapped device keys (docs/server.md, "Wrapped device keys"; docs/decisions.md).
//   KEK  = HKDF-SHA256(ikm = ingest private key, salt = KEK_SALT, info = ingest key id, 32)  (RFC 5869)
//   blob = 0x01 || nonce (12, random) || AES-256-GCM(KEK, nonce, seal_key (16) || nonce_salt (8), ad) (24) || tag (16)
//   ad   = WRAP_LABEL || 0x00 || 0x01 || len(serial) || serial || len(key id) || key id || enc (32)
// A random 96-bit nonce per row is safe far beyond any fleet: NIST SP 800-38D
// section 8.3 allows 2^32 invocations per key with random nonces. The ad binds
// the blob to its row, so a blob copied to another row (or a row whose enc or
// key id was changed) fails to open instead of giving another device's keys.
export const KEK_SALT = 'sealpost/v1 registry kek';
const WRAP_LABEL = 'sealpost/v1 wrapped device keys';
const WRAP_FORMAT = 0x01;
const WRAP_NONCE = 12;
const WRAP_TAG = 16;
const SEAL_KEY_LEN = 16;
const NONCE_SALT_LEN = 8;
/** Bytes of a wrapped blob: format, nonce, sealed keys, tag. */
export const WRAPPED_LENGTH = 1 + WRAP_NONCE + SEAL_KEY_LEN + NONCE_SALT_LEN + WRAP_TAG;

/** The registry key-encryption key of one ingest key. */
export function registryKek(ingestPrivateKey: Uint8Array, keyId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ingestPrivateKey, Buffer.from(KEK_SALT, 'utf8'), Buffer.from(keyId, 'utf8'), 32));
}

type WrapRow = Pick<DeviceRow, 'serial' | 'ingestKeyId' | 'enc'>;

const WRAP_AD_HEAD = Buffer.concat([Buffer.from(WRAP_LABEL, 'utf8'), Buffer.from([0, WRAP_FORMAT])]);

/** The additional data of a row's blob; one allocation (it is built per unwrap on the request path). */
function wrapAd(row: WrapRow): Buffer {
  const serialLen = Buffer.byteLength(row.serial, 'utf8');
  const keyIdLen = Buffer.byteLength(row.ingestKeyId, 'utf8');
  const ad = Buffer.allocUnsafe(WRAP_AD_HEAD.length + 2 + serialLen + keyIdLen + row.enc.length);
  let at = WRAP_AD_HEAD.copy(ad, 0);
  ad[at++] = serialLen;
  at += ad.write(row.serial, at, 'utf8');
  ad[at++] = keyIdLen;
  at += ad.write(row.ingestKeyId, at, 'utf8');
  ad.set(row.enc, at);
  return ad;
}

export function wrapDeviceKeys(kek: Uint8Array, row: WrapRow, keys: DeviceKeys, random: (n: number) => Uint8Array = randomBytes): Uint8Array {
  const nonce = random(WRAP_NONCE);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: WRAP_TAG });
  cipher.setAAD(wrapAd(row));
  const sealed = Buffer.concat([cipher.update(keys.sealKey), cipher.update(keys.nonceSalt), cipher.final()]);
  return new Uint8Array(Buffer.concat([Buffer.from([WRAP_FORMAT]), nonce, sealed, cipher.getAuthTag()]));
}

/** The keys in a wrapped blob, or undefined when it does not open (wrong KEK, altered or moved blob). */
export function unwrapDeviceKeys(kek: Uint8Array, row: WrapRow, blob: Uint8Array): DeviceKeys | undefined {
  if (blob.length !== WRAPPED_LENGTH || blob[0] !== WRAP_FORMAT) return undefined;
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const decipher = createDecipheriv('aes-256-gcm', kek, b.subarray(1, 1 + WRAP_NONCE), { authTagLength: WRAP_TAG });
  decipher.setAAD(wrapAd(row));
  decipher.setAuthTag(b.subarray(WRAPPED_LENGTH - WRAP_TAG));
  const plain = decipher.update(b.subarray(1 + WRAP_NONCE, WRAPPED_LENGTH - WRAP_TAG));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return { sealKey: new Uint8Array(plain.subarray(0, SEAL_KEY_LEN)), nonceSalt: new Uint8Array(plain.subarray(SEAL_KEY_LEN)) };
}

// An epoch's chain secret (key renewal), wrapped under the KEK of the epoch's ingest key:
//   blob = 0x01 || nonce (12) || AES-256-GCM(KEK, nonce, chain (32), ad) || tag (16)
//   ad   = CHAIN_LABEL || 0x00 || 0x01 || len(serial) || serial || len(key id) || key id || enc (32) || epoch (4)
const CHAIN_LABEL = 'sealpost/v1 wrapped chain secret';
const CHAIN_LEN = 32;
export const CHAIN_WRAPPED_LENGTH = 1 + WRAP_NONCE + CHAIN_LEN + WRAP_TAG;

function chainAd(row: WrapRow, epoch: number): Buffer {
  const e = Buffer.alloc(4);
  e.writeUInt32BE(epoch);
  const serial = Buffer.from(row.serial, 'utf8');
  const keyId = Buffer.from(row.ingestKeyId, 'utf8');
  return Buffer.concat([Buffer.from(CHAIN_LABEL, 'utf8'), Buffer.from([0, WRAP_FORMAT, serial.length]), serial, Buffer.from([keyId.length]), keyId, row.enc, e]);
}

export function wrapChain(kek: Uint8Array, row: WrapRow, epoch: number, chain: Uint8Array, random: (n: number) => Uint8Array = randomBytes): Uint8Array {
  const nonce = random(WRAP_NONCE);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: WRAP_TAG });
  cipher.setAAD(chainAd(row, epoch));
  const sealed = Buffer.concat([cipher.update(chain), cipher.final()]);
  return new Uint8Array(Buffer.concat([Buffer.from([WRAP_FORMAT]), nonce, sealed, cipher.getAuthTag()]));
}

export function unwrapChain(kek: Uint8Array, row: WrapRow, epoch: number, blob: Uint8Array): Uint8Array | undefined {
  if (blob.length !== CHAIN_WRAPPED_LENGTH || blob[0] !== WRAP_FORMAT) return undefined;
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const decipher = createDecipheriv('aes-256-gcm', kek, b.subarray(1, 1 + WRAP_NONCE), { authTagLength: WRAP_TAG });
  decipher.setAAD(chainAd(row, epoch));
  decipher.setAuthTag(b.subarray(CHAIN_WRAPPED_LENGTH - WRAP_TAG));
  const plain = decipher.update(b.subarray(1 + WRAP_NONCE, CHAIN_WRAPPED_LENGTH - WRAP_TAG));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return new Uint8Array(plain);
}

/** Row key states in RowKeys.state. */
export const KEYS_NONE = 0;
/** Cached or derived just now: trusted. */
export const KEYS_VERIFIED = 1;
/** Unwrapped without the tag check (keystreamUnwrap): Keyring.confirm before trusting anything they open. */
export const KEYS_UNVERIFIED = 2;

/**
 * The keys of a request's rows, by row index, in flat arrays (no object per
 * row: a request names up to 100 devices, most of them junk's).
 */
export interface RowKeys {
  /** Seal key of row i at 16i, nonce salt at 8i; zero where state[i] is KEYS_NONE. */
  sealKeys: Uint8Array;
  nonceSalts: Uint8Array;
  /** KEYS_NONE (problems says why), KEYS_VERIFIED or KEYS_UNVERIFIED per row. */
  state: Uint8Array;
  problems: Map<number, string>;
  /** Rows derived just now (not wrapped before): their blobs, to be stored. */
  wrapped: Map<number, Uint8Array>;
}

export function emptyRowKeys(rows: number): RowKeys {
  return { sealKeys: new Uint8Array(rows * SEAL_KEY_LEN), nonceSalts: new Uint8Array(rows * NONCE_SALT_LEN), state: new Uint8Array(rows), problems: new Map(), wrapped: new Map() };
}

/** Row i's keys as a DeviceKeys (views into `keys`). */
export function rowKeysOf(keys: RowKeys, i: number): DeviceKeys {
  return { sealKey: keys.sealKeys.subarray(i * SEAL_KEY_LEN, (i + 1) * SEAL_KEY_LEN), nonceSalt: keys.nonceSalts.subarray(i * NONCE_SALT_LEN, (i + 1) * NONCE_SALT_LEN) };
}

/**
 * The sealed bytes of many blobs under one KEK, decrypted but NOT
 * authenticated, into rows `rows` of `into` (KEYS_UNVERIFIED; KEYS_NONE with
 * REASON_UNWRAP for a blob of the wrong length or format): AES-256-GCM with a
 * 96-bit nonce encrypts with the counter blocks inc32(J0) = nonce || 2 and
 * nonce || 3 (NIST SP 800-38D, 7.1), so one ECB call over those blocks of
 * every blob gives all the keystreams. The result is a candidate only: the
 * caller may try frames with it, and must confirm the tag (unwrapDeviceKeys)
 * before storing or answering anything.
 */
export function keystreamUnwrap(ecb: Cipher, blobs: readonly (Uint8Array | null)[], rows: readonly number[], into: RowKeys): void {
  const n = rows.length;
  const ok = (blob: Uint8Array | null): blob is Uint8Array => blob !== null && blob.length === WRAPPED_LENGTH && blob[0] === WRAP_FORMAT;
  // Byte loops, not subarray/set: a request has up to 100 rows and each view costs more than 12 stores.
  const counters = Buffer.alloc(n * 32);
  for (let i = 0; i < n; i++) {
    const blob = blobs[rows[i]!]!;
    if (!ok(blob)) continue;
    const at = i * 32;
    for (let j = 0; j < WRAP_NONCE; j++) counters[at + j] = counters[at + 16 + j] = blob[1 + j]!;
    counters[at + 15] = 2;
    counters[at + 31] = 3;
  }
  const stream = ecb.update(counters);
  if (stream.length !== counters.length) throw new Error(`AES-256-ECB returned ${stream.length} bytes for ${counters.length}`);
  const { sealKeys, nonceSalts, state } = into;
  for (let i = 0; i < n; i++) {
    const row = rows[i]!;
    const blob = blobs[row]!;
    if (!ok(blob)) {
      state[row] = KEYS_NONE;
      into.problems.set(row, REASON_UNWRAP);
      continue;
    }
    const k = row * SEAL_KEY_LEN;
    const s = row * NONCE_SALT_LEN;
    const at = 1 + WRAP_NONCE;
    for (let j = 0; j < SEAL_KEY_LEN; j++) sealKeys[k + j] = blob[at + j]! ^ stream[i * 32 + j]!;
    for (let j = 0; j < NONCE_SALT_LEN; j++) nonceSalts[s + j] = blob[at + SEAL_KEY_LEN + j]! ^ stream[i * 32 + SEAL_KEY_LEN + j]!;
    state[row] = KEYS_UNVERIFIED;
  }
  stream.fill(0);
}

/** Row i of `into` gets these keys, verified. */
function setRowKeys(into: RowKeys, i: number, keys: DeviceKeys): void {
  for (let j = 0; j < SEAL_KEY_LEN; j++) into.sealKeys[i * SEAL_KEY_LEN + j] = keys.sealKey[j]!;
  for (let j = 0; j < NONCE_SALT_LEN; j++) into.nonceSalts[i * NONCE_SALT_LEN + j] = keys.nonceSalt[j]!;
  into.state[i] = KEYS_VERIFIED;
}

/** A long-lived AES-256-ECB context of a KEK: no padding, so it keeps no state between calls. */
function kekStream(kek: Uint8Array): Cipher {
  const ecb = createCipheriv('aes-256-ecb', kek, null);
  ecb.setAutoPadding(false);
  return ecb;
}

export const REASON_UNWRAP = 'stored device keys do not open (altered registry row, or a different ingest private key under the same id); see the server log';
export const REASON_DERIVE = 'device keys cannot be derived from its registry row';

interface CachedKeys {
  enc: Uint8Array;
  keyId: string;
  keys: DeviceKeys | undefined;
  /** Why keys is undefined: remembered so a bad row costs its public-key operation once per cache lifetime. */
  problem?: string;
}

type KeyRowLike = Pick<DeviceKeyRow, 'serial' | 'ingestKeyId' | 'enc' | 'keysWrapped'>;

/** Tag checks the audit may spend per second on rows whose frames all failed (Keyring.audit). */
export const AUDITS_PER_SECOND = 20;

export class Keyring {
  private readonly privateKeys = new Map<string, Uint8Array>();
  private readonly keks = new Map<string, Buffer>();
  private readonly streams = new Map<string, Cipher>();
  private readonly cache: Lru<string, CachedKeys>;
  private auditTokens = AUDITS_PER_SECOND;
  /** When the budget was last refilled (construction counts as one). */
  private auditRefilled: number;

  constructor(
    ingestKeys: readonly KeyFile[],
    cacheSize = 50_000,
    private readonly clock: () => number = Date.now,
  ) {
    for (const k of ingestKeys) {
      if (k.kind !== 'ingest-private') throw new ConfigError(`key ${k.id} is a ${k.kind} key, expected an ingest-private key`);
      this.privateKeys.set(k.id, k.key);
      const kek = registryKek(k.key, k.id);
      this.keks.set(k.id, kek);
      this.streams.set(k.id, kekStream(kek));
    }
    this.cache = new Lru(cacheSize);
    this.auditRefilled = clock();
  }

  get keyIds(): string[] {
    return [...this.privateKeys.keys()];
  }

  holds(keyId: string): boolean {
    return this.privateKeys.has(keyId);
  }

  /**
   * Derives a row's keys with HPKE (the one public-key operation a device ever
   * costs) and wraps them for storage; throws DeviceKeyError with a reason.
   */
  deriveAndWrap(row: UnwrappedDevice): { keys: DeviceKeys; wrapped: Uint8Array } {
    const privateKey = this.privateKeys.get(row.ingestKeyId);
    if (!privateKey) throw new DeviceKeyError(`ingest key ${row.ingestKeyId} is not loaded on this server`);
    let keys: DeviceKeys;
    try {
      keys = recoverDeviceKeys(privateKey, row.enc, row.serial);
    } catch {
      throw new DeviceKeyError(REASON_DERIVE);
    }
    return { keys, wrapped: wrapDeviceKeys(this.keks.get(row.ingestKeyId)!, row, keys) };
  }

  /**
   * A row not wrapped yet: its keys derived once (the public-key operation),
   * cached, and returned wrapped for the caller to store; a row that cannot
   * be derived is remembered with its reason, so it costs that once.
   */
  private derive(row: KeyRowLike, i: number, into: RowKeys): void {
    try {
      const derived = this.deriveAndWrap(row);
      this.cache.set(row.serial, { enc: new Uint8Array(row.enc), keyId: row.ingestKeyId, keys: derived.keys });
      setRowKeys(into, i, derived.keys);
      into.wrapped.set(i, derived.wrapped);
    } catch (e) {
      if (!(e instanceof DeviceKeyError)) throw e;
      this.cache.set(row.serial, { enc: new Uint8Array(row.enc), keyId: row.ingestKeyId, keys: undefined, problem: e.message });
      into.problems.set(i, e.message);
    }
  }

  /**
   * The keys of a request's rows, by row index: cached ones (verified),
   * wrapped ones unwrapped together without the tag check (unverified: see
   * keystreamUnwrap), rows not wrapped yet derived once (verified, their
   * blob in `wrapped` to store). Never throws for one bad row: its entry of
   * `problems` says why.
   */
  keysFor(rows: readonly KeyRowLike[]): RowKeys {
    const into = emptyRowKeys(rows.length);
    let pending: Map<string, number[]> | undefined;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const hit = this.cache.get(row.serial);
      if (hit && hit.keyId === row.ingestKeyId && equalBytes(hit.enc, row.enc)) {
        if (hit.keys) setRowKeys(into, i, hit.keys);
        else into.problems.set(i, hit.problem!);
      } else if (!this.keks.has(row.ingestKeyId)) {
        into.problems.set(i, `ingest key ${row.ingestKeyId} is not loaded on this server`);
      } else if (row.keysWrapped) {
        pending ??= new Map();
        const list = pending.get(row.ingestKeyId);
        if (list) list.push(i);
        else pending.set(row.ingestKeyId, [i]);
      } else {
        this.derive(row, i, into);
      }
    }
    if (pending) {
      const blobs = rows.map((r) => r.keysWrapped);
      for (const [keyId, indices] of pending) keystreamUnwrap(this.streams.get(keyId)!, blobs, indices, into);
    }
    return into;
  }

  /**
   * Checks the GCM tag of a row whose keys keysFor unwrapped unverified, and
   * that the blob gives exactly those keys; true (and cached) when it does.
   */
  confirm(row: KeyRowLike, keys: DeviceKeys): boolean {
    const kek = this.keks.get(row.ingestKeyId);
    if (!kek || !row.keysWrapped) return false;
    const checked = unwrapDeviceKeys(kek, row, row.keysWrapped);
    if (!checked || !equalBytes(checked.sealKey, keys.sealKey) || !equalBytes(checked.nonceSalt, keys.nonceSalt)) return false;
    this.cache.set(row.serial, { enc: new Uint8Array(row.enc), keyId: row.ingestKeyId, keys: checked });
    return true;
  }

  /**
   * confirm() for row i of `keys`, none of whose frames authenticated, within a budget
   * of AUDITS_PER_SECOND per server: true when the tag was checked and
   * failed (the row is broken: report it), false when it holds or the budget
   * is spent. A junk flood spends the budget and nothing more; a device
   * whose row was altered is reported once a check is free.
   */
  auditFails(row: KeyRowLike, keys: RowKeys, i: number): boolean {
    if (this.auditTokens <= 0) {
      const now = this.clock();
      if (now - this.auditRefilled < 1000) return false;
      this.auditTokens = AUDITS_PER_SECOND;
      this.auditRefilled = now;
    }
    this.auditTokens--;
    return !this.confirm(row, rowKeysOf(keys, i));
  }

  // Key renewal (server/renewal.ts; docs/server.md, "Key renewal"). The private keys never leave the keyring.

  /** A row's seal key and nonce salt with the blob's tag checked (renewal's acks: a few devices per request). */
  unwrapRow(row: KeyRowLike): DeviceKeys | undefined {
    const kek = this.keks.get(row.ingestKeyId);
    return kek && row.keysWrapped ? unwrapDeviceKeys(kek, row, row.keysWrapped) : undefined;
  }

  /** chain_0 of a registry row: SetupBaseR again with the factory's ingest key (once per renewal from epoch 0). */
  factoryChain(row: WrapRow): Uint8Array {
    const privateKey = this.privateKeys.get(row.ingestKeyId);
    if (!privateKey) throw new DeviceKeyError(`ingest key ${row.ingestKeyId} is not loaded on this server`);
    try {
      return setupBaseR(row.enc, privateKey, deviceInfo(row.serial)).export(new TextEncoder().encode(CHAIN_CONTEXT), CHAIN_LEN);
    } catch {
      throw new DeviceKeyError(REASON_DERIVE);
    }
  }

  /** SetupPSKR of a renewal with the epoch's ingest private key, and the result wrapped for its epoch row. */
  renew(step: RenewStep, ingestKeyId: string, enc: Uint8Array): { keys: EpochKeys; keysWrapped: Uint8Array; chainWrapped: Uint8Array } {
    const privateKey = this.privateKeys.get(ingestKeyId);
    if (!privateKey) throw new DeviceKeyError(`ingest key ${ingestKeyId} of the announced epoch is not loaded on this server`);
    const keys = serverRenew(step, privateKey, enc);
    const row = { serial: step.serial, ingestKeyId, enc };
    const kek = this.keks.get(ingestKeyId)!;
    return { keys, keysWrapped: wrapDeviceKeys(kek, row, keys), chainWrapped: wrapChain(kek, row, step.toEpoch, keys.chain) };
  }

  /** chain_e of an epoch row, or undefined when its blob does not open. */
  unwrapChain(row: WrapRow & { epoch: number; chainWrapped: Uint8Array }): Uint8Array | undefined {
    const kek = this.keks.get(row.ingestKeyId);
    return kek ? unwrapChain(kek, row, row.epoch, row.chainWrapped) : undefined;
  }

  /** Drops a device from the cache (revoked devices). */
  forget(serial: string): void {
    this.cache.delete(serial);
  }

  cached(serial: string): boolean {
    return this.cache.has(serial);
  }
}

/** Rows read and wrapped per transaction at server start. */
const WRAP_BATCH = 500;

/**
 * Wraps the keys of every row of an ingest key this keyring holds whose
 * keys_wrapped is still NULL (rows from before wrapping, or imported on a
 * machine without the private key). Runs at server start, before listening:
 * derivation happens outside any transaction, and each batch is written in
 * one short transaction that leaves a row another process wrapped meanwhile
 * untouched. Returns counts only; no key material leaves this function.
 */
export async function wrapPendingDevices(storage: Storage, keyring: Keyring, batch = WRAP_BATCH): Promise<{ wrapped: number; failed: string[] }> {
  let after = '';
  let wrapped = 0;
  const failed: string[] = [];
  for (;;) {
    const rows = await storage.transaction((tx) => tx.unwrappedDevices(keyring.keyIds, after, batch));
    if (rows.length === 0) break;
    const out: { serial: string; keysWrapped: Uint8Array }[] = [];
    for (const row of rows) {
      try {
        out.push({ serial: row.serial, keysWrapped: keyring.deriveAndWrap(row).wrapped });
      } catch (e) {
        if (!(e instanceof DeviceKeyError)) throw e;
        failed.push(row.serial);
      }
    }
    await storage.transaction((tx) => tx.setKeysWrapped(out));
    wrapped += out.length;
    after = rows[rows.length - 1]!.serial;
    if (rows.length < batch) break;
  }
  return { wrapped, failed };
}
