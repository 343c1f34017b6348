// The app factory: buildServer() assembles the fastify instance from the
// plugins (server/plugins/index.ts) without listening, for tests, the demo
// and startServer(). It resolves once every plugin has booted, so a bad
// configuration fails here with a ConfigError.
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { KeyFile } from '../protocol/index.js';
import type { ServerConfig } from './config.js';
import { ConnectionGuard, clientErrorHandler, connectionCap, fileDescriptorLimit, makeServerFactory } from './edge/connections.js';
import { CORE_PLUGINS, OPTIONAL_PLUGINS } from './plugins/index.js';
import { loadKeyDirectoryAtStart, wrapRegistryAtStart } from './plugins/keys.js';
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

/**
 * fastify's request serializer (method, url, host, address, port: no headers,
 * so never the Authorization header), with anything shaped like an API token
 * cut out of the URL, in case a client put one there.
 */
const TOKEN_IN_TEXT = /spt_[A-Za-z0-9_-]{20,}/g;
const logRequest = (req: FastifyRequest) => ({
  method: req.method,
  url: req.url.replace(TOKEN_IN_TEXT, 'spt_(redacted)'),
  host: req.host,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort,
});

function withSerializers(logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (logger === null || typeof logger !== 'object') return logger;
  return { ...logger, serializers: { req: logRequest, ...logger.serializers } } as FastifyServerOptions['logger'];
}

export async function buildServer(options: BuildOptions): Promise<FastifyInstance> {
  const { config } = options;
  // Timeouts and connection caps live on the Node server (server/edge/connections.ts).
  const cap = connectionCap(config.connections.max, fileDescriptorLimit());
  let log: FastifyInstance['log'] | undefined;
  const guard = new ConnectionGuard(cap.max, config.connections.perAddress, () => log);
  const base: FastifyServerOptions = {
    logger: withSerializers(options.logger ?? { level: config.logLevel }),
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
  // Before every route: default deny (server/plugins/auth.ts).
  await app.register(p.rateLimit);
  await app.register(p.auth);
  await app.register(p.keys, { ingestKeys: options.ingestKeys });
  await app.register(p.events);
  await app.register(p.uplink);
  await app.register(p.devices);
  await app.register(p.admin);
  for (const o of OPTIONAL_PLUGINS) if (o.enabled(config)) await app.register(o.plugin);
  for (const plugin of options.plugins ?? []) await app.register(plugin);
  try {
    await app.ready();
  } catch (e) {
    await app.close().catch(() => undefined);
    throw e;
  }
  // Before anyone can listen: no request may need a public-key operation (docs/server.md, "Wrapped device keys").
  await wrapRegistryAtStart(app);
  await loadKeyDirectoryAtStart(app);
  return app;
}
