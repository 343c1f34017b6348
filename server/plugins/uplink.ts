// sealpost-uplink: POST /v1/uplink (docs/api.md). Validation by schema (400),
// body size by fastify's bodyLimit (413), frames per request (413), rate
// limits (429 with Retry-After), then server/ingest.ts does the work in one
// transaction and the committed result is announced on app.events.
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FailedAuthThrottle } from '../auth-throttle.js';
import { HttpError } from '../http-error.js';
import { ingestUplink, type UplinkBody } from '../ingest.js';
import { uplinkSchema } from '../schemas.js';

function tooMany(what: string, seconds: number): HttpError {
  const wait = Math.max(1, Math.ceil(seconds));
  return new HttpError(429, `rate limit for ${what} exceeded; retry after ${wait} s`, { 'retry-after': String(wait) });
}

export default fp(
  async (app) => {
    const limits = app.config.limits;

    const ipLimit = async (request: FastifyRequest, _reply: FastifyReply) => {
      const wait = app.rateLimits.ip?.take(request.ip) ?? 0;
      if (wait > 0) throw tooMany(`address ${request.ip}`, wait);
    };

    // Frames failing authentication (docs/server.md, "Failed authentications"): an address in
    // debt is refused here, before the body is read, so before any database or crypto work.
    const failedAuth = new FailedAuthThrottle(app.config.failedAuth);
    const failedAuthGate = async (request: FastifyRequest, _reply: FastifyReply) => {
      const wait = failedAuth.wait(request.ip);
      if (wait > 0) throw tooMany(`frames failing authentication from address ${request.ip}`, wait);
    };

    app.post<{ Body: UplinkBody }>('/v1/uplink', { schema: uplinkSchema(limits), onRequest: [ipLimit, failedAuthGate] }, async (request) => {
      const body = request.body;
      let total = 0;
      for (const d of body.devices) total += d.frames.length;
      if (total > limits.framesPerRequest) {
        throw new HttpError(413, `the request carries ${total} frames; the limit is ${limits.framesPerRequest} per request`);
      }
      const wait = app.rateLimits.relay?.take(body.relay.id, Math.max(1, total)) ?? 0;
      if (wait > 0) throw tooMany(`relay ${body.relay.id}`, wait);

      const result = await ingestUplink(body, {
        storage: app.storage,
        keyring: app.keyring,
        now: app.clock(),
        maxRelayDelay: app.config.maxRelayDelay * 1000,
        onReuse: (serial, counter) =>
          request.log.error({ serial, counter }, 'counter reused with different content: the device broke its never-reuse rule'),
        onKeyProblem: (serial, ingestKeyId, reason) => request.log.error({ serial, ingestKeyId, reason }, 'device keys unavailable: its frames are rejected'),
      });
      for (const a of failedAuth.record(request.ip, result.failedAuth)) {
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
      request.log.debug({ relay: body.relay.id, uplinks: result.uplinks }, 'uplink stored');
      return { devices: result.devices };
    });
  },
  {
    name: 'sealpost-uplink',
    fastify: '5.x',
    dependencies: ['sealpost-context', 'sealpost-errors', 'sealpost-storage', 'sealpost-keys', 'sealpost-events', 'sealpost-rate-limit'],
  },
);
