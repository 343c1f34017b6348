// The app factory: buildServer() assembles the fastify instance from the
// plugins (server/plugins/index.ts) without listening, for tests, the demo
// and startServer(). It resolves once every plugin has booted, so a bad
// configuration fails here with a ConfigError.
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import type { KeyFile } from '../protocol/index.js';
import type { ServerConfig } from './config.js';
import { ConnectionGuard, clientErrorHandler, connectionCap, fileDescriptorLimit, makeServerFactory } from './connections.js';
import { CORE_PLUGINS, OPTIONAL_PLUGINS } from './plugins/index.js';
import { formatSchemaError } from './schemas.js';
import type { Storage } from './storage/types.js';

export interface BuildOptions {
  config: ServerConfig;
  /** Loaded ingest private keys (startServer loads them from config.ingestKeys). */
  ingestKeys: KeyFile[];
  /** An open storage to use instead of opening config.db; left open on close. */
  storage?: Storage;
  /** Clock in ms since 1970 (tests). */
  now?: () => number;
  /** Pino options, e.g. { level: 'trace', stream } to capture logs; default JSON to stdout at config.logLevel. */
  logger?: FastifyServerOptions['logger'];
  /** TLS certificate and key (PEM); HTTPS when given. */
  https?: { cert: string | Buffer; key: string | Buffer };
  /** More plugins, registered after the core and optional ones. */
  plugins?: FastifyPluginAsync[];
}

export async function buildServer(options: BuildOptions): Promise<FastifyInstance> {
  const { config } = options;
  // Timeouts and connection caps live on the Node server (server/connections.ts).
  const cap = connectionCap(config.connections.max, fileDescriptorLimit());
  let log: FastifyInstance['log'] | undefined;
  const guard = new ConnectionGuard(cap.max, config.connections.perAddress, () => log);
  const base: FastifyServerOptions = {
    logger: options.logger ?? { level: config.logLevel },
    bodyLimit: config.limits.bodyBytes,
    trustProxy: config.trustProxy,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: true, allErrors: false } },
    schemaErrorFormatter: formatSchemaError,
    serverFactory: makeServerFactory(config, guard, options.https),
    clientErrorHandler: clientErrorHandler(config),
  };
  // `https: true` only tells fastify to print https:// URLs; the factory made the TLS server.
  const app = Fastify({ ...base, ...(options.https ? { https: true } : {}) } as FastifyServerOptions) as unknown as FastifyInstance;
  log = app.log;
  const { headersMs, requestMs, keepAliveMs } = config.timeouts;
  app.log.info(
    { max: cap.max, perAddress: config.connections.perAddress, fdLimit: cap.fdLimit, headersMs, requestMs, keepAliveMs, requestsPerSocket: config.connections.requestsPerSocket },
    'connection limits',
  );
  if (cap.warning) app.log.warn(cap.warning);
  const p = CORE_PLUGINS;
  await app.register(p.context, { config, ...(options.now ? { now: options.now } : {}) });
  await app.register(p.errors);
  await app.register(p.edge, { tls: options.https !== undefined, connections: guard });
  await app.register(p.storage, options.storage ? { storage: options.storage } : {});
  await app.register(p.keys, { ingestKeys: options.ingestKeys });
  await app.register(p.events);
  await app.register(p.rateLimit);
  await app.register(p.uplink);
  await app.register(p.devices);
  for (const o of OPTIONAL_PLUGINS) if (o.enabled(config)) await app.register(o.plugin);
  for (const plugin of options.plugins ?? []) await app.register(plugin);
  try {
    await app.ready();
  } catch (e) {
    await app.close().catch(() => undefined);
    throw e;
  }
  return app;
}
