// API tokens (docs/api.md, "Authentication"): bearer tokens with a role,
// made by `sealpost token create` and stored as SHA-256 only.
//
// A token is `spt_` + 32 random bytes from node:crypto in base64url (47
// characters). It has full entropy, so a fast hash is the right store: a
// password hash (scrypt, argon2) exists to slow the guessing of low-entropy
// secrets, and nobody guesses 256 bits; SHA-256 keeps verification to one
// indexed lookup per request. A leaked database gives hashes that open
// nothing. The lookup is by hash, so what its timing can reveal is a prefix
// of the SHA-256 of the caller's own guess, which says nothing about any
// stored token: no constant-time compare is needed.
//
// `last_used` is written at most once per TOUCH_EVERY_MS per token and
// process (a reader polling every second costs one write a minute, not one
// per request), and never moved back by a slower node.
import { createHash, randomBytes } from 'node:crypto';
import { TokenError } from '../errors.js';
import type { Storage, TokenInfo, TokenRole } from '../storage/types.js';

export type { TokenInfo, TokenRole } from '../storage/types.js';

export const TOKEN_PREFIX = 'spt_';
export const ROLES: readonly TokenRole[] = ['read', 'admin'];
/** Token names: letters, digits, `.`, `_`, `-`; 1 to 64 of them. */
export const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** What a token looks like: the prefix and 43 base64url characters (256 bits). */
export const TOKEN_SHAPE = /^spt_[A-Za-z0-9_-]{43}$/;
export const TOUCH_EVERY_MS = 60_000;

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function checkTokenName(name: string): void {
  if (!TOKEN_NAME.test(name)) {
    throw new TokenError(`token name ${JSON.stringify(name.slice(0, 80))} must be 1 to 64 of A-Z a-z 0-9 . _ - (e.g. dashboard-alice)`);
  }
}

export function checkRole(role: string): TokenRole {
  if (!ROLES.includes(role as TokenRole)) throw new TokenError(`role must be read or admin, got ${JSON.stringify(role.slice(0, 40))}`);
  return role as TokenRole;
}

/** A new token: the prefix and 32 bytes from the system's CSPRNG in base64url. */
export function newToken(random: (n: number) => Uint8Array = randomBytes): string {
  const bytes = random(32);
  if (bytes.length !== 32) throw new TokenError(`token random source gave ${bytes.length} bytes, expected 32`);
  return TOKEN_PREFIX + Buffer.from(bytes).toString('base64url');
}

export interface CreatedToken extends TokenInfo {
  /** The token itself: shown once, never stored. */
  token: string;
}

/** Creates a token; only its hash is stored. Refuses a name already in use. */
export async function createToken(storage: Storage, name: string, role: string, now = Date.now()): Promise<CreatedToken> {
  checkTokenName(name);
  const r = checkRole(role);
  const token = newToken();
  const ok = await storage.insertToken({ name, role: r, hash: hashToken(token), createdAt: now });
  if (!ok) throw new TokenError(`a token named ${name} already exists: revoke it first (sealpost token revoke ${name}) or pick another name`);
  return { name, role: r, createdAt: now, lastUsed: null, token };
}

export async function listTokens(storage: Storage): Promise<TokenInfo[]> {
  return storage.tokens();
}

/** Deletes the token: requests with it get 401 from then on, on every node. */
export async function revokeToken(storage: Storage, name: string): Promise<void> {
  checkTokenName(name);
  if (!(await storage.deleteToken(name))) throw new TokenError(`no token named ${name} (sealpost token list shows the names)`);
}

/** Checks bearer tokens against the store and keeps last_used roughly current. */
export class TokenVerifier {
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly storage: Storage,
    private readonly clock: () => number = Date.now,
    private readonly onTouchError: (e: unknown) => void = () => undefined,
  ) {}

  /** The token's name and role, or undefined for a token that is malformed, unknown or revoked. */
  async verify(token: string): Promise<{ name: string; role: TokenRole } | undefined> {
    // A string that cannot be a token costs no database lookup.
    if (!TOKEN_SHAPE.test(token)) return undefined;
    const t = await this.storage.tokenByHash(hashToken(token));
    if (!t) return undefined;
    const now = this.clock();
    const last = Math.max(t.lastUsed ?? -Infinity, this.touched.get(t.name) ?? -Infinity);
    if (now - last >= TOUCH_EVERY_MS) {
      this.touched.set(t.name, now);
      // Not awaited: the request does not wait for a bookkeeping write.
      this.storage.touchToken(t.name, now).catch(this.onTouchError);
    }
    return { name: t.name, role: t.role };
  }
}
