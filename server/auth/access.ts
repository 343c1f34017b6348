// Who may call what on the API (docs/api.md, "Authentication"; design
// brief, "Trust at the server's edge"): the routes open to anyone, the
// bearer token of a request, role ranks, and the per-address count of
// refused tokens. ApiAccess makes the decision for one request;
// server/plugins/auth.ts runs it as an onRequest hook on every route.
//
// Order of checks: 429 for an address that sent too many bad tokens this
// minute (before any database lookup); 401 without a valid token; 403 when
// its role is too low; 429 when the token's read bucket is empty. No message
// here quotes the Authorization header. With `shared_limits` both counts are
// kept in Redis for all nodes (server/edge/shared-limits.ts).
import type { ServerConfig } from '../config.js';
import { HttpError, tooManyRequests } from '../errors.js';
import { addressKey } from '../edge/rate-limit.js';
import { SharedBuckets, SharedWindows, type SharedLimitStore } from '../edge/shared-limits.js';
import type { TokenRole, TokenVerifier } from './tokens.js';

export interface Principal {
  name: string;
  role: TokenRole;
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

/** The token of an `Authorization: Bearer TOKEN` header (RFC 6750 section 2.1), '' when absent, null when malformed. */
function bearer(header: string | undefined): string | null {
  if (header === undefined || header === '') return '';
  const m = /^Bearer +(\S+) *$/i.exec(header);
  return m ? m[1]! : null;
}

/** A request as the access decision sees it. */
export interface AccessRequest {
  method: string;
  /** The matched route pattern, or the path of an unmatched request. */
  route: string;
  ip: string;
  authorization: string | undefined;
  /** The role the route needs. */
  needs: TokenRole;
}

export class ApiAccess {
  private readonly buckets: SharedBuckets | null;
  /** 401s per client address in fixed one-minute windows. */
  private readonly failures: SharedWindows | null;

  constructor(
    private readonly verifier: Pick<TokenVerifier, 'verify'>,
    config: ServerConfig['auth'],
    private readonly clock: () => number,
    store: SharedLimitStore | null = null,
  ) {
    this.buckets = config.read ? new SharedBuckets(config.read, 'read', store) : null;
    this.failures = config.failuresPerMinute ? new SharedWindows(config.failuresPerMinute, 60_000, 'authfail', store) : null;
  }

  isOpen(method: string, route: string): boolean {
    return OPEN.has(`${method} ${route}`);
  }

  /** Who is calling; throws the HttpError (401, 403, 429) the request is refused with. */
  async check(r: AccessRequest): Promise<Principal> {
    const now = this.clock();
    // Counted like every per-address limit: IPv4 as is, IPv6 by its /64.
    const address = addressKey(r.ip);
    const refuse = async (e: HttpError) => {
      await this.failures?.fail(address, now);
      return e;
    };
    const wait = this.failures ? await this.failures.wait(address, now) : 0;
    if (wait > 0) throw tooManyRequests(`too many requests without a valid token from address ${address}`, wait);

    const token = bearer(r.authorization);
    if (token === '') throw await refuse(unauthorized(`this route needs an API token: send "Authorization: Bearer TOKEN"; ${HOW}`));
    if (token === null) throw await refuse(unauthorized(`the Authorization header must be "Bearer TOKEN"; ${HOW}`, 'invalid_request'));
    const who = await this.verifier.verify(token);
    if (!who) throw await refuse(unauthorized(`the token is not valid (revoked, mistyped, or made for another server's database); ${HOW}`, 'invalid_token'));

    if (RANK[who.role] < RANK[r.needs]) {
      throw new HttpError(403, `token ${who.name} has role ${who.role}; ${r.method} ${r.route} needs an ${r.needs} token`, {
        'www-authenticate': `${REALM}, error="insufficient_scope"`,
      });
    }
    const slow = this.buckets ? await this.buckets.take(who.name) : 0;
    if (slow > 0) throw tooManyRequests(`rate limit for token ${who.name} exceeded`, slow);
    return who;
  }
}
