// Server configuration: a JSON file plus command-line flags, checked as a
// whole at boot so a mistake stops the server with a message that names the
// setting and says what it expects (style.md rule 11). docs/server.md lists
// every setting.
//
// Extension point: a plugin that needs settings (MQTT, dashboard) adds an
// entry to SECTIONS below; its checker receives the raw value and returns the
// checked one, which appears on ServerConfig.sections[name].
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isPostgresUrl } from './storage/index.js';
import { ConfigError } from './keys.js';
import type { BucketSpec } from './rate-limit.js';
import { checkDashboardConfig } from './plugins/dashboard.js';
import { checkMqttConfig } from './plugins/mqtt.js';
import { checkRelayPageConfig } from './plugins/relay-page.js';

export { ConfigError } from './keys.js';

export interface Limits {
  /** Largest request body in bytes (413 above). */
  bodyBytes: number;
  devicesPerRequest: number;
  framesPerDevice: number;
  /** Frames in one request over all devices (413 above). */
  framesPerRequest: number;
  /** Most readings, devices or gaps one page of the read API holds (docs/api.md, "Paging"). */
  pageMax: number;
}

export interface ServerConfig {
  /** SQLite file path, or a postgres:// URL. */
  db: string;
  listen: { host: string; port: number };
  /** Ingest private key files (X25519), several ids at once. */
  ingestKeys: string[];
  /** Factory public key files whose signed manifests the registry accepts. */
  trust: string[];
  tls: { cert: string; key: string } | null;
  limits: Limits;
  rateLimit: { relay: BucketSpec | null; ip: BucketSpec | null };
  /** Devices whose derived keys stay cached. */
  keyCache: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Passed to fastify: true when behind a reverse proxy that sets X-Forwarded-For. */
  trustProxy: boolean;
  sqliteSynchronous: 'FULL' | 'NORMAL';
  pgPoolSize: number;
  /** Reads off the ingest path (docs/server.md, "Reads"): read worker threads, and PostgreSQL read pool connections. */
  readWorkers: number;
  pgReadPoolSize: number;
  /** Checked settings of optional plugins, by section name. */
  sections: Record<string, unknown>;
}

export const DEFAULT_LIMITS: Limits = {
  bodyBytes: 1_048_576,
  devicesPerRequest: 100,
  framesPerDevice: 500,
  framesPerRequest: 5_000,
  pageMax: 10_000,
};

export const DEFAULTS: ServerConfig = {
  db: 'sealpost.db',
  listen: { host: '127.0.0.1', port: 8080 },
  ingestKeys: [],
  trust: [],
  tls: null,
  limits: DEFAULT_LIMITS,
  // relay: frames per second; ip: requests per second.
  rateLimit: { relay: { perSecond: 2_000, burst: 10_000 }, ip: { perSecond: 100, burst: 200 } },
  keyCache: 50_000,
  logLevel: 'info',
  trustProxy: false,
  sqliteSynchronous: 'FULL',
  pgPoolSize: 10,
  readWorkers: 1,
  pgReadPoolSize: 4,
  sections: {},
};

type Checker = (value: unknown, where: string, baseDir: string) => unknown;

/** Optional sections (plugins): name -> checker. */
export const SECTIONS: Record<string, Checker> = { dashboard: checkDashboardConfig, mqtt: checkMqttConfig, relay_page: checkRelayPageConfig };

const fail = (where: string, what: string): never => {
  throw new ConfigError(`${where} ${what}`);
};

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.length === 0) fail(where, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v as string;
}

function int(v: unknown, where: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(where, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return v as number;
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(where, 'must be an object');
  return v as Record<string, unknown>;
}

function known(o: Record<string, unknown>, keys: string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) fail(where, `has an unknown setting "${k}" (known: ${keys.join(', ')})`);
  }
}

const path = (v: unknown, where: string, baseDir: string): string => resolve(baseDir, str(v, where));

function paths(v: unknown, where: string, baseDir: string): string[] {
  if (!Array.isArray(v)) fail(where, 'must be a list of file paths');
  return (v as unknown[]).map((p, i) => path(p, `${where}[${i}]`, baseDir));
}

export function parseListen(value: string, where = 'listen'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) fail(where, `must be HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got ${JSON.stringify(value)}`);
  const port = Number(m![3]);
  if (port > 65535) fail(where, `port must be 0..65535, got ${port}`);
  return { host: m![1] ?? m![2]!, port };
}

function bucket(v: unknown, where: string): BucketSpec | null {
  if (v === null || v === false) return null;
  const o = obj(v, where);
  known(o, ['per_second', 'burst'], where);
  return { perSecond: int(o.per_second, `${where}.per_second`, 1, 1e9), burst: int(o.burst, `${where}.burst`, 1, 1e9) };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TOP = ['db', 'listen', 'ingest_keys', 'trust', 'tls', 'limits', 'rate_limit', 'key_cache', 'log_level', 'trust_proxy', 'sqlite_synchronous', 'pg_pool_size', 'read_workers', 'pg_read_pool_size'];

/**
 * Checks a raw configuration document (snake_case, as in the file) and merges
 * it over the defaults. Relative paths are resolved against `baseDir`.
 */
export function checkConfig(raw: unknown, baseDir = process.cwd(), where = 'config'): ServerConfig {
  const o = obj(raw, where);
  known(o, [...TOP, ...Object.keys(SECTIONS)], where);
  const c: ServerConfig = structuredClone(DEFAULTS);
  if (o.db !== undefined) {
    const db = str(o.db, `${where}: db`);
    c.db = isPostgresUrl(db) || db === ':memory:' ? db : resolve(baseDir, db.replace(/^sqlite:/, ''));
  }
  if (o.listen !== undefined) c.listen = parseListen(str(o.listen, `${where}: listen`), `${where}: listen`);
  if (o.ingest_keys !== undefined) c.ingestKeys = paths(o.ingest_keys, `${where}: ingest_keys`, baseDir);
  if (o.trust !== undefined) c.trust = paths(o.trust, `${where}: trust`, baseDir);
  if (o.tls !== undefined && o.tls !== null) {
    const t = obj(o.tls, `${where}: tls`);
    known(t, ['cert', 'key'], `${where}: tls`);
    c.tls = { cert: path(t.cert, `${where}: tls.cert`, baseDir), key: path(t.key, `${where}: tls.key`, baseDir) };
  }
  if (o.limits !== undefined) {
    const l = obj(o.limits, `${where}: limits`);
    if (l.readings_per_query !== undefined) {
      fail(
        `${where}: limits.readings_per_query`,
        'was replaced by limits.page_max (the most readings, devices or gaps one page holds, default 10000; follow next_cursor for more, and CSV streams every reading): rename the setting',
      );
    }
    known(l, ['body_bytes', 'devices_per_request', 'frames_per_device', 'frames_per_request', 'page_max'], `${where}: limits`);
    if (l.body_bytes !== undefined) c.limits.bodyBytes = int(l.body_bytes, `${where}: limits.body_bytes`, 1024, 64 * 1_048_576);
    if (l.devices_per_request !== undefined) c.limits.devicesPerRequest = int(l.devices_per_request, `${where}: limits.devices_per_request`, 1, 10_000);
    if (l.frames_per_device !== undefined) c.limits.framesPerDevice = int(l.frames_per_device, `${where}: limits.frames_per_device`, 1, 100_000);
    if (l.frames_per_request !== undefined) c.limits.framesPerRequest = int(l.frames_per_request, `${where}: limits.frames_per_request`, 1, 1_000_000);
    if (l.page_max !== undefined) c.limits.pageMax = int(l.page_max, `${where}: limits.page_max`, 1, 100_000);
  }
  if (o.rate_limit !== undefined) {
    if (o.rate_limit === null || o.rate_limit === false) c.rateLimit = { relay: null, ip: null };
    else {
      const r = obj(o.rate_limit, `${where}: rate_limit`);
      known(r, ['relay', 'ip'], `${where}: rate_limit`);
      if (r.relay !== undefined) c.rateLimit.relay = bucket(r.relay, `${where}: rate_limit.relay`);
      if (r.ip !== undefined) c.rateLimit.ip = bucket(r.ip, `${where}: rate_limit.ip`);
    }
  }
  if (o.key_cache !== undefined) c.keyCache = int(o.key_cache, `${where}: key_cache`, 1, 10_000_000);
  if (o.log_level !== undefined) {
    if (!LOG_LEVELS.includes(o.log_level as ServerConfig['logLevel'])) fail(`${where}: log_level`, `must be one of ${LOG_LEVELS.join(', ')}`);
    c.logLevel = o.log_level as ServerConfig['logLevel'];
  }
  if (o.trust_proxy !== undefined) {
    if (typeof o.trust_proxy !== 'boolean') fail(`${where}: trust_proxy`, 'must be true or false');
    c.trustProxy = o.trust_proxy as boolean;
  }
  if (o.sqlite_synchronous !== undefined) {
    if (o.sqlite_synchronous !== 'FULL' && o.sqlite_synchronous !== 'NORMAL') fail(`${where}: sqlite_synchronous`, 'must be "FULL" or "NORMAL"');
    c.sqliteSynchronous = o.sqlite_synchronous as 'FULL' | 'NORMAL';
  }
  if (o.pg_pool_size !== undefined) c.pgPoolSize = int(o.pg_pool_size, `${where}: pg_pool_size`, 1, 1000);
  if (o.pg_read_pool_size !== undefined) c.pgReadPoolSize = int(o.pg_read_pool_size, `${where}: pg_read_pool_size`, 1, 1000);
  if (o.read_workers !== undefined) c.readWorkers = int(o.read_workers, `${where}: read_workers`, 0, 64);
  for (const [name, checker] of Object.entries(SECTIONS)) {
    if (o[name] !== undefined) c.sections[name] = checker(o[name], `${where}: ${name}`, baseDir);
  }
  return checkCoherence(c, where);
}

/** Rules that span settings. */
function checkCoherence(c: ServerConfig, where: string): ServerConfig {
  const relay = c.rateLimit.relay;
  if (relay && relay.burst < c.limits.framesPerRequest) {
    fail(
      `${where}: rate_limit.relay.burst`,
      `(${relay.burst}) must be at least limits.frames_per_request (${c.limits.framesPerRequest}), or a full request could never pass`,
    );
  }
  return c;
}

/** Command-line flags of `sealpost server` and `sealpost registry`. */
export interface ConfigFlags {
  config?: string;
  db?: string;
  listen?: string;
  ingestKey?: string[];
  trust?: string[];
  tlsCert?: string;
  tlsKey?: string;
  logLevel?: string;
}

export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The file (if any), then the flags over it: single values replace, lists
 * (--ingest-key, --trust) add to the file's. Flag paths are relative to the
 * working directory, file paths to the file.
 */
export function loadConfig(flags: ConfigFlags): ServerConfig {
  const fromFile = flags.config !== undefined ? readConfigFile(flags.config) : {};
  const c = checkConfig(fromFile, flags.config !== undefined ? dirname(resolve(flags.config)) : process.cwd(), flags.config ?? 'config');
  const cwd = process.cwd();
  if (flags.db !== undefined) c.db = isPostgresUrl(flags.db) || flags.db === ':memory:' ? flags.db : resolve(cwd, flags.db.replace(/^sqlite:/, ''));
  if (flags.listen !== undefined) c.listen = parseListen(flags.listen, '--listen');
  for (const f of flags.ingestKey ?? []) c.ingestKeys.push(resolve(cwd, f));
  for (const f of flags.trust ?? []) c.trust.push(resolve(cwd, f));
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key go together: give both for HTTPS, or neither for HTTP');
  }
  if (flags.tlsCert !== undefined && flags.tlsKey !== undefined) c.tls = { cert: resolve(cwd, flags.tlsCert), key: resolve(cwd, flags.tlsKey) };
  if (flags.logLevel !== undefined) {
    if (!LOG_LEVELS.includes(flags.logLevel as ServerConfig['logLevel'])) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    c.logLevel = flags.logLevel as ServerConfig['logLevel'];
  }
  return c;
}

/** A checked config from code (tests, demo): camelCase overrides of the defaults. */
export function makeConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  const c: ServerConfig = { ...structuredClone(DEFAULTS), ...overrides };
  return checkCoherence(c, 'config');
}
