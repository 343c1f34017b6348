// sealpost-edge: what every response and request goes through at the
// server's edge (issue #10, item 7; docs/server.md, "Headers and hosts").
//
// - `allowed_hosts`: a request whose Host is not listed is refused with 421
//   before any route runs. DNS rebinding points a name the attacker controls
//   at this server's address, so a browser's page from that name can call
//   the API as same-origin; the Host header still carries the attacker's name.
// - Headers: `X-Content-Type-Options: nosniff` on everything; on the API
//   (/v1/...) `Cache-Control: no-store`, since its answers describe a fleet
//   and must not stay in shared or browser caches; under TLS
//   `Strict-Transport-Security: max-age=31536000` (one year, RFC 6797
//   section 6.1.1; no includeSubDomains, which would bind the operator's
//   other hosts).
// - The relay keys (server/auth/relay-keys.ts) and the connection guard, as
//   decorations for the uplink and for tests.
import fp from 'fastify-plugin';
import type { ConnectionGuard } from '../edge/connections.js';
import { normalHost } from '../config.js';
import { HttpError } from '../errors.js';
import { RelayKeys } from '../auth/relay-keys.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The configured relay keys, or null when uploads need none (sealpost-edge). */
    relayKeys: RelayKeys | null;
    /** Connection counts and refusals (sealpost-edge). */
    connections: ConnectionGuard;
  }
}

export interface EdgeOptions {
  tls: boolean;
  connections: ConnectionGuard;
}

export const HSTS = 'max-age=31536000';

/** The host part of a Host header: lowercase, without port and brackets. */
export function hostOf(header: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(header.trim());
  return normalHost(m ? m[1]! : header.trim());
}

export default fp<EdgeOptions>(
  async (app, opts) => {
    const config = app.config;
    app.decorate('relayKeys', config.relayKeys ? new RelayKeys(config.relayKeys) : null);
    app.decorate('connections', opts.connections);

    const allowed = config.allowedHosts ? new Set(config.allowedHosts) : null;
    if (allowed) {
      app.addHook('onRequest', async (request) => {
        // request.host honours X-Forwarded-Host only when trust_proxy is set (fastify).
        const raw = request.host ?? '';
        const host = hostOf(raw);
        if (!allowed.has(host)) {
          throw new HttpError(
            421,
            raw === ''
              ? 'the request has no Host header; this server answers only to the names in allowed_hosts (the server\'s config)'
              : `host "${raw.slice(0, 100)}" is not in allowed_hosts (the server's config); use one of its names, or add this one there if the server should answer to it`,
          );
        }
      });
    }

    const tls = opts.tls;
    // Callback style: nothing here waits, so no promise per response.
    app.addHook('onSend', (request, reply, payload, done) => {
      reply.header('x-content-type-options', 'nosniff');
      if (request.url.startsWith('/v1/')) reply.header('cache-control', 'no-store');
      if (tls) reply.header('strict-transport-security', HSTS);
      done(null, payload);
    });
  },
  { name: 'sealpost-edge', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors'] },
);
