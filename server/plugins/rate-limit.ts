// sealpost-rate-limit: token buckets per source address and per relay key,
// each counting requests and frames (server/edge/rate-limit.ts); from the config,
// a disabled bucket is off. With `shared_limits` it also opens the Redis every
// node counts in (server/edge/shared-limits.ts), which the failed-authentication
// throttle (sealpost-uplink) and the API's limits (sealpost-auth) use too; it is
// registered before them.
import fp from 'fastify-plugin';
import { RateLimiter, SharedLimitStore } from '../edge/shared-limits.js';

export default fp(
  async (app) => {
    const shared = app.config.sharedLimits;
    const store = shared ? await SharedLimitStore.open(shared, app.log) : null;
    if (store) app.addHook('onClose', async () => store.close());
    app.decorate('sharedLimits', store);
    const { address, relayKey } = app.config.rateLimit;
    app.decorate('rateLimits', { address: new RateLimiter(address, 'address', store), relayKey: new RateLimiter(relayKey, 'relay_key', store) });
  },
  { name: 'sealpost-rate-limit', fastify: '5.x', dependencies: ['sealpost-context'] },
);
