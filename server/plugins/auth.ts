// sealpost-auth: API tokens at the server's edge (docs/api.md,
// "Authentication"; design brief, "Trust at the server's edge"). DEFAULT
// DENY: every route, including ones added later and unknown paths, needs a
// valid bearer token unless it is on OPEN below; a route that needs more
// than read says so with `config: { role: 'admin' }`. Registered after the
// storage and before every route, as an onRequest hook, so a refused request
// costs no body parsing.
//
// Order of checks: open route; 429 for an address that sent too many bad
// tokens this minute (before any database lookup); 401 without a valid
// token; 403 when its role is too low; 429 when the token's read bucket is
// empty. The token never reaches a log line: fastify's request serializer
// logs no headers (server/app.ts also strips token-shaped text from URLs),
// and no message here quotes the Authorization header.
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { HttpError, tooManyRequests } from '../errors.js';
import { Lru } from '../lru.js';
import { TokenBuckets, addressKey } from '../rate-limit.js';
import { TokenVerifier, type TokenRole } from '../tokens.js';

export interface Principal {
  name: string;
  role: TokenRole;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The token's name and role (sealpost-auth); null on open routes. */
    auth: Principal | null;
  }
  interface FastifyContextConfig {
    /** The role a route needs (sealpost-auth); read when absent. */
    role?: TokenRole;
  }
}

/**
 * Routes anyone may call, as "METHOD /route/pattern". Frames authenticate
 * themselves (uplink); the relay page and the dashboard page with its assets
 * carry no data (the dashboard asks for a token before it fetches any).
 */
export const OPEN = new Set<string>([
  'POST /v1/uplink',
  ...['/', '/dashboard/:file', '/relay', '/relay/', '/relay/:file', '/favicon.ico'].flatMap((p) => [`GET ${p}`, `HEAD ${p}`]),
]);

const RANK: Record<TokenRole, number> = { read: 1, admin: 2 };
const REALM = 'Bearer realm="sealpost"';
const HOW = 'an operator creates one with: sealpost token create --role read --name NAME';

const unauthorized = (message: string, error?: string) =>
  new HttpError(401, message, { 'www-authenticate': error ? `${REALM}, error="${error}"` : REALM });

/** 401s per client address in fixed one-minute windows. */
class FailureCounter {
  private readonly windows = new Lru<string, { start: number; count: number }>(100_000);
  constructor(private readonly perMinute: number) {}

  /** Seconds until the address may try again; 0 when it may now. */
  wait(address: string, now: number): number {
    const w = this.windows.get(address);
    if (!w || now - w.start >= 60_000 || w.count < this.perMinute) return 0;
    return (w.start + 60_000 - now) / 1000;
  }

  fail(address: string, now: number): void {
    let w = this.windows.get(address);
    if (!w || now - w.start >= 60_000) w = { start: now, count: 0 };
    w.count++;
    this.windows.set(address, w);
  }
}

/** The token of an `Authorization: Bearer TOKEN` header (RFC 6750 section 2.1), '' when absent. */
function bearer(request: FastifyRequest): string | null {
  const h = request.headers.authorization;
  if (h === undefined || h === '') return '';
  const m = /^Bearer +(\S+) *$/i.exec(h);
  return m ? m[1]! : null;
}

export default fp(
  async (app) => {
    const { read, failuresPerMinute } = app.config.auth;
    const verifier = new TokenVerifier(app.storage, app.clock, (e) => app.log.warn({ err: e }, 'could not record when a token was last used'));
    const buckets = read ? new TokenBuckets(read) : null;
    const failures = failuresPerMinute ? new FailureCounter(failuresPerMinute) : null;

    app.decorateRequest('auth', null);

    app.addHook('onRequest', async (request) => {
      // An unmatched request is judged by its path: GET / with the dashboard
      // turned off is still open, and answers 404 rather than 401.
      const route = request.routeOptions.url ?? request.url.split('?')[0]!;
      if (OPEN.has(`${request.method} ${route}`)) return;
      const now = app.clock();
      // Counted like every per-address limit: IPv4 as is, IPv6 by its /64.
      const address = addressKey(request.ip);
      const refuse = (e: HttpError) => {
        failures?.fail(address, now);
        return e;
      };
      const wait = failures?.wait(address, now) ?? 0;
      if (wait > 0) throw tooManyRequests(`too many requests without a valid token from address ${address}`, wait);

      const token = bearer(request);
      if (token === '') throw refuse(unauthorized(`this route needs an API token: send "Authorization: Bearer TOKEN"; ${HOW}`));
      if (token === null) throw refuse(unauthorized(`the Authorization header must be "Bearer TOKEN"; ${HOW}`, 'invalid_request'));
      const who = await verifier.verify(token);
      if (!who) throw refuse(unauthorized(`the token is not valid (revoked, mistyped, or made for another server's database); ${HOW}`, 'invalid_token'));

      const needs = request.routeOptions.config?.role ?? 'read';
      if (RANK[who.role] < RANK[needs]) {
        throw new HttpError(403, `token ${who.name} has role ${who.role}; ${request.method} ${route} needs an ${needs} token`, {
          'www-authenticate': `${REALM}, error="insufficient_scope"`,
        });
      }
      const slow = buckets?.take(who.name) ?? 0;
      if (slow > 0) throw tooManyRequests(`rate limit for token ${who.name} exceeded`, slow);
      request.auth = who;
    });

    // Who is signed in, for the dashboard's "signed in as".
    app.get('/v1/session', async (request) => ({ name: request.auth!.name, role: request.auth!.role }));
  },
  { name: 'sealpost-auth', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors', 'sealpost-storage'] },
);
