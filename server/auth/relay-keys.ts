// Relay keys (issue #10, item 1; design brief, "Trust at the server's edge"):
// an optional shared secret that identifies a fleet's own relay apps. The
// config lists only SHA-256 hashes of the keys with a name each, so a leaked
// or committed config file lets nobody upload; the server hashes the
// X-Sealpost-Relay-Key header and looks the hash up. A key is 32 random bytes
// (256 bits: far beyond guessing, so a plain unsalted hash is enough, as for
// API tokens), written base64url with a prefix that secret scanners and
// people recognise.
//
// A relay key says which app a request comes from; it authenticates no frame
// (frames authenticate themselves) and anyone who unpacks the app has it.
// What it buys: uploads from other software are refused before the body is
// read, and rate limits count per app instead of per client-chosen relay id.
import { createHash, randomBytes } from 'node:crypto';

export const RELAY_KEY_HEADER = 'x-sealpost-relay-key';
const PREFIX = 'sprk_';
/** Longest header value hashed; a key is 48 characters. */
const MAX_KEY_CHARS = 256;

export interface RelayKeyEntry {
  /** Shown in logs and rate-limit messages; never the key. */
  name: string;
  /** SHA-256 of the key's UTF-8 text, lowercase hex. */
  sha256: string;
}

export const RELAY_KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const RELAY_KEY_NAME_RULE = '1 to 64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit';

export function hashRelayKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A fresh key (256 bits from the OS's CSPRNG) and the config entry that admits it. */
export function newRelayKey(name: string, random: (n: number) => Uint8Array = randomBytes): { key: string; entry: RelayKeyEntry } {
  if (!RELAY_KEY_NAME.test(name)) throw new Error(`relay key name must be ${RELAY_KEY_NAME_RULE}, got ${JSON.stringify(name)}`);
  const bytes = random(32);
  if (bytes.length !== 32) throw new Error(`random source gave ${bytes.length} bytes, expected 32`);
  const key = PREFIX + Buffer.from(bytes).toString('base64url');
  return { key, entry: { name, sha256: hashRelayKey(key) } };
}

/** The configured keys by hash. */
export class RelayKeys {
  private readonly byHash = new Map<string, string>();

  constructor(entries: RelayKeyEntry[]) {
    for (const e of entries) this.byHash.set(e.sha256, e.name);
  }

  /**
   * The name of the key in a header value, or null. The lookup is by SHA-256
   * of the value, so its timing depends on the hash, not on how much of a
   * real key a guess got right.
   */
  nameOf(header: string | string[] | undefined): string | null {
    if (typeof header !== 'string' || header.length === 0 || header.length > MAX_KEY_CHARS) return null;
    return this.byHash.get(hashRelayKey(header.trim())) ?? null;
  }
}
