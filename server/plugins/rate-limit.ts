// sealpost-rate-limit: token buckets per source address and per relay key,
// each counting requests and frames (server/edge/rate-limit.ts); from the config,
// a disabled bucket is off.
import fp from 'fastify-plugin';
import { RateLimiter } from '../edge/rate-limit.js';

export default fp(
  async (app) => {
    const { address, relayKey } = app.config.rateLimit;
    app.decorate('rateLimits', { address: new RateLimiter(address), relayKey: new RateLimiter(relayKey) });
  },
  { name: 'sealpost-rate-limit', fastify: '5.x', dependencies: ['sealpost-context'] },
);
