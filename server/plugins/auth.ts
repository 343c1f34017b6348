// sealpost-auth: API tokens at the server's edge (docs/api.md,
// "Authentication"; design brief, "Trust at the server's edge"). DEFAULT
// DENY: every route, including ones added later and unknown paths, needs a
// valid bearer token unless it is on OPEN (server/auth/access.ts); a route that
// needs more than read says so with `config: { role: 'admin' }`. Registered
// after the storage and before every route, as an onRequest hook, so a
// refused request costs no body parsing. server/auth/access.ts decides; this plugin
// wires the decision in.
//
// The token never reaches a log line: fastify's request serializer logs no
// headers (server/app.ts also strips token-shaped text from URLs).
import fp from 'fastify-plugin';
import { ApiAccess, type Principal } from '../auth/access.js';
import { TokenVerifier, type TokenRole } from '../auth/tokens.js';

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

export default fp(
  async (app) => {
    const verifier = new TokenVerifier(app.storage, app.clock, (e) => app.log.warn({ err: e }, 'could not record when a token was last used'));
    const access = new ApiAccess(verifier, app.config.auth, app.clock, app.sharedLimits);

    app.decorateRequest('auth', null);

    // Callback style, not async: an open route (the uplink, with thousands of
    // requests a second) passes on at once, without a promise (docs/server.md, "Junk uplinks").
    app.addHook('onRequest', (request, _reply, done) => {
      // An unmatched request is judged by its path: GET / with the dashboard
      // turned off is still open, and answers 404 rather than 401.
      const route = request.routeOptions.url ?? request.url.split('?')[0]!;
      if (access.isOpen(request.method, route)) return done();
      access
        .check({
          method: request.method,
          route,
          ip: request.ip,
          authorization: request.headers.authorization,
          needs: request.routeOptions.config?.role ?? 'read',
        })
        .then((principal) => {
          request.auth = principal;
          done();
        }, done);
    });

    // Who is signed in, for the dashboard's "signed in as".
    app.get('/v1/session', async (request) => ({ name: request.auth!.name, role: request.auth!.role }));
  },
  { name: 'sealpost-auth', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors', 'sealpost-storage', 'sealpost-rate-limit'] },
);
