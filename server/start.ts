// startServer(): load and check the key files named in the config, build the
// app and listen (HTTPS when config.tls is set). The caller owns shutdown.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildServer, type BuildOptions } from './app.js';
import type { ServerConfig } from './config.js';
import { ConfigError } from './errors.js';
import { loadIngestKeys } from './keys.js';

const LISTEN_BACKLOG = 4096;

export interface RunningServer {
  app: FastifyInstance;
  /** e.g. "https://127.0.0.1:8443" */
  url: string;
  close: () => Promise<void>;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new ConfigError(`cannot read TLS ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function startServer(config: ServerConfig, options: Omit<BuildOptions, 'config' | 'ingestKeys' | 'https'> = {}): Promise<RunningServer> {
  const ingestKeys = loadIngestKeys(config.ingestKeys);
  const https = config.tls ? { cert: readPem(config.tls.cert, 'certificate'), key: readPem(config.tls.key, 'key') } : undefined;
  const app = await buildServer({ ...options, config, ingestKeys, ...(https ? { https } : {}) });
  try {
    // A flood that reconnects thousands of sockets at once (all timed out
    // together) overflows Node's default accept queue of 511; dropped SYNs
    // are retried after 1, 3, 7 s, which good clients feel as latency
    // (bench/idle-connections.ts). The kernel caps this at net.core.somaxconn.
    const url = await app.listen({ host: config.listen.host, port: config.listen.port, backlog: LISTEN_BACKLOG });
    return { app, url, close: () => app.close() };
  } catch (e) {
    await app.close().catch(() => undefined);
    throw e;
  }
}
