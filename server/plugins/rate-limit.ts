// sealpost-rate-limit: token buckets per relay id (cost: frames) and per
// client IP (cost: requests), from the config; a disabled bucket is null.
import fp from 'fastify-plugin';
import { TokenBuckets } from '../rate-limit.js';

export default fp(
  async (app) => {
    const { relay, ip } = app.config.rateLimit;
    app.decorate('rateLimits', { relay: relay ? new TokenBuckets(relay) : null, ip: ip ? new TokenBuckets(ip) : null });
  },
  { name: 'sealpost-rate-limit', fastify: '5.x', dependencies: ['sealpost-context'] },
);
