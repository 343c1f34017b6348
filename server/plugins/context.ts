// sealpost-context: the checked configuration and the clock, for every other
// plugin. Also declares the decorations the core plugins add, so a plugin
// written later (dashboard, MQTT) gets them typed by importing this module.
import fp from 'fastify-plugin';
import type { ServerConfig } from '../config.js';
import type { IngestEvents } from '../events.js';
import type { Keyring } from '../keys.js';
import type { Renewal } from '../renewal.js';
import type { RateLimiter, SharedLimitStore } from '../edge/shared-limits.js';
import type { Storage } from '../storage/types.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The checked configuration (sealpost-context). */
    config: ServerConfig;
    /** Milliseconds since 1970; injectable for tests (sealpost-context). */
    clock: () => number;
    /** The database (sealpost-storage). */
    storage: Storage;
    /** Ingest keys and the device key cache (sealpost-keys). */
    keyring: Keyring;
    /** Key renewal, null when not configured (sealpost-keys; server/renewal.ts). */
    renewal: Renewal | null;
    /** Committed readings and uplinks (sealpost-events). */
    events: IngestEvents;
    /** Request and frame buckets per source address and per relay key (sealpost-rate-limit). */
    rateLimits: { address: RateLimiter; relayKey: RateLimiter };
    /** The Redis all nodes count limits in, null without `shared_limits` (sealpost-rate-limit). */
    sharedLimits: SharedLimitStore | null;
  }
}

export interface ContextOptions {
  config: ServerConfig;
  now?: () => number;
}

export default fp<ContextOptions>(
  async (app, opts) => {
    app.decorate('config', opts.config);
    app.decorate('clock', opts.now ?? Date.now);
  },
  { name: 'sealpost-context', fastify: '5.x' },
);
