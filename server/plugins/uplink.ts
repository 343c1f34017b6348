// sealpost-uplink: POST /v1/uplink (docs/api.md). Validation by schema (400),
// body size by fastify's bodyLimit (413), frames per request (413), relay
// keys (401) and rate limits (429 with Retry-After), then server/ingest/uplink.ts
// does the work in one transaction and the committed result is announced on
// app.events.
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FailedAuthThrottle } from '../auth/throttle.js';
import { HttpError, tooManyRequests } from '../errors.js';
import { ingestUplink, type UplinkBody } from '../ingest/uplink.js';
import { addressKey } from '../edge/rate-limit.js';
import type { Refusal } from '../edge/shared-limits.js';
import { RELAY_KEY_HEADER } from '../auth/relay-keys.js';
import { uplinkSchema } from '../schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The relay key's name when relay keys are configured (set by the edge hook of POST /v1/uplink). */
    relayKeyName?: string;
  }
}

function tooMany(who: string, r: Refusal): HttpError {
  return tooManyRequests(`rate limit for ${who} exceeded (${r.spec.perSecond} ${r.what} per second, bursts of ${r.spec.burst})`, r.wait);
}

export default fp(
  async (app) => {
    const limits = app.config.limits;
    const rate = app.rateLimits;

    // ---- edge hooks (connection-level trust: relay keys, rate limits) ----
    // Before the body is read: one request from the source address, then the
    // relay key (401 without a known one), then one request from that key.
    // relay.id is only a label; the client chooses it, so it keys nothing.
    const edgeOnRequest = async (request: FastifyRequest, _reply: FastifyReply) => {
      const address = addressKey(request.ip);
      const byAddress = await rate.address.request(address);
      if (byAddress) throw tooMany(`address ${address}`, byAddress);
      if (app.relayKeys) {
        const name = app.relayKeys.nameOf(request.headers[RELAY_KEY_HEADER]);
        if (name === null) {
          const given = request.headers[RELAY_KEY_HEADER] !== undefined;
          throw new HttpError(
            401,
            given
              ? 'the X-Sealpost-Relay-Key header holds no key this server knows; uploads need a relay key listed in the server\'s relay_keys'
              : 'uploads to this server need a relay key: send it in the X-Sealpost-Relay-Key header (the operator makes one with `sealpost relay-key new NAME`)',
            // RFC 9110 section 15.5.2: a 401 names the scheme that would work.
            { 'www-authenticate': 'SealpostRelayKey realm="uplink"' },
          );
        }
        request.relayKeyName = name;
        const byKey = await rate.relayKey.request(name);
        if (byKey) throw tooMany(`relay key ${name}`, byKey);
      }
    };
    /** After validation: the frames, from the address's and the relay key's frame buckets. */
    const edgeChargeFrames = async (request: FastifyRequest, frames: number) => {
      const address = addressKey(request.ip);
      const byAddress = await rate.address.frameCost(address, frames);
      if (byAddress) throw tooMany(`address ${address}`, byAddress);
      if (request.relayKeyName !== undefined) {
        const byKey = await rate.relayKey.frameCost(request.relayKeyName, frames);
        if (byKey) throw tooMany(`relay key ${request.relayKeyName}`, byKey);
      }
    };
    // ---- end of edge hooks ----

    // Frames failing authentication (docs/server.md, "Failed authentications"): an address in
    // debt is refused here, before the body is read, so before any database or crypto work.
    const failedAuth = new FailedAuthThrottle(app.config.failedAuth, app.sharedLimits);
    const failedAuthGate = async (request: FastifyRequest, _reply: FastifyReply) => {
      const wait = await failedAuth.wait(request.ip);
      if (wait > 0) throw tooManyRequests(`rate limit for frames failing authentication from address ${addressKey(request.ip)} exceeded`, wait);
    };

    // Both before the body is read. The failed-authentication check only reads, so it runs
    // beside the edge's (with shared_limits one Redis round trip less per upload); the
    // edge's refusal still wins when both refuse.
    const beforeBody = async (request: FastifyRequest, reply: FastifyReply) => {
      const gate = failedAuthGate(request, reply);
      gate.catch(() => {});
      await edgeOnRequest(request, reply);
      await gate;
    };

    app.post<{ Body: UplinkBody }>('/v1/uplink', { schema: uplinkSchema(limits), onRequest: beforeBody }, async (request) => {
      const body = request.body;
      let total = 0;
      for (const d of body.devices) total += d.frames.length;
      if (total > limits.framesPerRequest) {
        throw new HttpError(413, `the request carries ${total} frames; the limit is ${limits.framesPerRequest} per request`);
      }
      await edgeChargeFrames(request, total);

      const result = await ingestUplink(body, {
        storage: app.storage,
        keyring: app.keyring,
        ...(app.renewal ? { renewal: app.renewal } : {}),
        now: app.clock(),
        maxRelayDelay: app.config.maxRelayDelay * 1000,
        onReuse: (serial, counter) =>
          request.log.error({ serial, counter }, 'counter reused with different content: the device broke its never-reuse rule'),
        onKeyProblem: (serial, ingestKeyId, reason) => request.log.error({ serial, ingestKeyId, reason }, 'device keys unavailable: its frames are rejected'),
      });
      for (const a of await failedAuth.record(request.ip, result.failedAuth)) {
        request.log.warn(
          { serial: a.serial, failed: a.failed, address: request.ip },
          'frames naming this serial keep failing authentication (junk sent in its name?); its genuine frames are still accepted, failing addresses are throttled',
        );
      }

      const events = app.events;
      try {
        if (events.listenerCount('reading') > 0) for (const r of result.readings) events.emit('reading', r);
        if (events.listenerCount('retime') > 0) for (const r of result.retimed) events.emit('retime', r);
        if (events.listenerCount('uplink') > 0) for (const u of result.uplinks) events.emit('uplink', u);
      } catch (e) {
        request.log.error({ err: e }, 'an event listener failed');
      }
      request.log.debug({ relay: body.relay.id, relayKey: request.relayKeyName, uplinks: result.uplinks }, 'uplink stored');
      return { devices: result.devices };
    });
  },
  {
    name: 'sealpost-uplink',
    fastify: '5.x',
    dependencies: ['sealpost-context', 'sealpost-errors', 'sealpost-storage', 'sealpost-keys', 'sealpost-events', 'sealpost-rate-limit', 'sealpost-edge'],
  },
);
