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
import { ConfigError } from './errors.js';
import type { BucketSpec, RateSpec } from './edge/rate-limit.js';
import type { SharedLimitsConfig } from './edge/shared-limits.js';
import { RELAY_KEY_NAME, RELAY_KEY_NAME_RULE, type RelayKeyEntry } from './auth/relay-keys.js';
import { checkMqttConfig } from './mqtt/config.js';
import { checkDashboardConfig, checkRelayPageConfig } from './page-config.js';
import { checkRetentionConfig } from './retention.js';

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
  /** API tokens (server/auth/access.ts): file keys rate_limit.read and rate_limit.auth_failures. */
  auth: { read: BucketSpec | null; failuresPerMinute: number | null };
  // -- the server's edge (docs/server.md, "Connection limits", "Rate limits", "Headers and hosts")
  /** Node's headersTimeout, requestTimeout (both answer 408) and keepAliveTimeout, in ms. */
  timeouts: { headersMs: number; requestMs: number; keepAliveMs: number };
  /** Open connections in all (null: from the file-descriptor limit), per source address (null: no cap), requests per keep-alive connection. */
  connections: { max: number | null; perAddress: number | null; requestsPerSocket: number };
  /** Token buckets per source address and per relay key; a null bucket is off. */
  rateLimit: { address: RateSpec; relayKey: RateSpec };
  /** Redis where every node counts the limits above, failed_auth and the API's; null: each node counts alone (docs/server.md, "Several nodes: shared limits"). */
  sharedLimits: SharedLimitsConfig | null;
  /** Hashed relay keys; null: uploads need none. */
  relayKeys: RelayKeyEntry[] | null;
  /** Host names (lowercase, no port) the server answers to; null: any. */
  allowedHosts: string[] | null;
  /** Devices whose derived keys stay cached. */
  keyCache: number;
  /** Registry key rows (public enc, wrapped keys) a node holds in memory; 0: none (server/storage/key-directory.ts). */
  keyDirectory: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Passed to fastify: behind a reverse proxy that sets X-Forwarded-For, true (trust every hop) or the proxies' addresses/CIDRs. */
  trustProxy: boolean | string[];
  sqliteSynchronous: 'FULL' | 'NORMAL';
  pgPoolSize: number;
  /** Seconds before the server's receive time a relay's rx is still believed (docs/server.md, "Time clamp"). */
  maxRelayDelay: number;
  /** Frames failing authentication: throttled per address, alerted per serial (docs/server.md, "Failed authentications"). */
  failedAuth: { ip: BucketSpec | null; serial: BucketSpec | null };
  /** Reads off the ingest path (docs/server.md, "Reads"): read worker threads, and PostgreSQL read pool connections. */
  readWorkers: number;
  pgReadPoolSize: number;
  /**
   * Key renewal (docs/server.md, "Key renewal"): the fleet's renewal PUBLIC key file, the signed
   * ANNOUNCE files of `sealpost keys renew` (files or directories of announce-*.bin) and how long a
   * device's previous key still opens frames after it committed; null: renewal off.
   */
  renewal: { publicKey: string; announce: string[]; graceMs: number } | null;
  /** Checked settings of optional plugins, by section name. */
  sections: Record<string, unknown>;
}

/** Default grace period of a renewed device's previous key. */
export const RENEWAL_GRACE_DAYS = 7;

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
  // 30 s to send a whole request, as docs/api.md has always promised.
  timeouts: { headersMs: 30_000, requestMs: 30_000, keepAliveMs: 5_000 },
  // 256 per address leaves room for a carrier-grade NAT address shared by a
  // few hundred phones, each with a connection or two (docs/server.md).
  connections: { max: null, perAddress: 256, requestsPerSocket: 1_000 },
  rateLimit: {
    address: { requests: { perSecond: 100, burst: 200 }, frames: { perSecond: 2_000, burst: 10_000 } },
    relayKey: { requests: { perSecond: 1_000, burst: 2_000 }, frames: { perSecond: 20_000, burst: 100_000 } },
  },
  sharedLimits: null,
  relayKeys: null,
  allowedHosts: null,
  // read: requests per second per API token (a dashboard's first load of 24 devices is about 50);
  // 401s per client address per minute before the address gets 429 without a database lookup.
  auth: { read: { perSecond: 50, burst: 500 }, failuresPerMinute: 30 },
  keyCache: 50_000,
  // About 170 bytes a row (docs/server.md, "Junk uplinks", sixth pass): 170 MB at a million devices.
  keyDirectory: 1_000_000,
  logLevel: 'info',
  trustProxy: false,
  sqliteSynchronous: 'FULL',
  pgPoolSize: 10,
  maxRelayDelay: 7 * 86_400,
  // Failed frames per second and burst; ip throttles the address, serial only raises an alert.
  failedAuth: { ip: { perSecond: 10, burst: 1_000 }, serial: { perSecond: 1, burst: 100 } },
  readWorkers: 1,
  pgReadPoolSize: 4,
  renewal: null,
  sections: {},
};

/** Rate limits off (tests, benchmarks): `makeConfig({ rateLimit: NO_RATE_LIMIT })`. */
export const NO_RATE_LIMIT: ServerConfig['rateLimit'] = { address: { requests: null, frames: null }, relayKey: { requests: null, frames: null } };

type Checker = (value: unknown, where: string, baseDir: string) => unknown;

/** Optional sections (plugins): name -> checker. */
export const SECTIONS: Record<string, Checker> = { dashboard: checkDashboardConfig, mqtt: checkMqttConfig, relay_page: checkRelayPageConfig, retention: checkRetentionConfig };

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

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TOP = ['db', 'listen', 'ingest_keys', 'trust', 'tls', 'limits', 'rate_limit', 'key_cache', 'key_directory', 'log_level', 'trust_proxy', 'sqlite_synchronous', 'pg_pool_size',
  'max_relay_delay', 'failed_auth', 'timeouts', 'connections', 'relay_keys', 'allowed_hosts', 'read_workers', 'pg_read_pool_size', 'shared_limits', 'renewal'];

/** `renewal`: {"public_key": "renewal-rk-<id>.pub", "announce": ["keys/"], "grace_days": 7}; null/absent: off. */
function checkRenewal(v: unknown, where: string, baseDir: string): ServerConfig['renewal'] {
  if (v === null || v === false) return null;
  const eg = '(e.g. {"public_key": "keys/renewal-rk-<id>.pub", "announce": ["keys/"], "grace_days": 7})';
  if (typeof v !== 'object' || Array.isArray(v)) fail(where, `must be an object ${eg}`);
  const o = v as Record<string, unknown>;
  known(o, ['public_key', 'announce', 'grace_days'], where);
  if (o.public_key === undefined) fail(where, `needs "public_key", the renewal PUBLIC key file (the private one stays offline) ${eg}`);
  if (o.announce === undefined) fail(where, `needs "announce", the announce-*.bin files of \`sealpost keys renew\` or their directory ${eg}`);
  const announce = typeof o.announce === 'string' ? [path(o.announce, `${where}.announce`, baseDir)] : paths(o.announce, `${where}.announce`, baseDir);
  const days = o.grace_days === undefined ? RENEWAL_GRACE_DAYS : o.grace_days;
  if (typeof days !== 'number' || !Number.isFinite(days) || days < 0 || days > 3650) fail(`${where}.grace_days`, `must be a number of days from 0 to 3650, got ${JSON.stringify(days)}`);
  return { publicKey: path(o.public_key, `${where}.public_key`, baseDir), announce, graceMs: Math.round((days as number) * 86_400_000) };
}

/** Longest wait on the shared limits store before a node counts locally (docs/server.md, "Several nodes: shared limits"). */
export const SHARED_LIMITS_TIMEOUT_MS = 50;

/** `shared_limits`: {"redis": URL, "prefix": "sealpost:", "timeout_ms": 50}; null/false/absent: off. */
function checkSharedLimits(v: unknown, where: string): SharedLimitsConfig | null {
  if (v === null || v === false) return null;
  const eg = '(e.g. {"redis": "redis://127.0.0.1:6379", "prefix": "sealpost:"})';
  if (typeof v !== 'object' || Array.isArray(v)) fail(where, `must be an object ${eg}, or false to count limits on each node alone`);
  const o = v as Record<string, unknown>;
  known(o, ['redis', 'prefix', 'timeout_ms'], where);
  if (o.redis === undefined) fail(where, `needs "redis", the URL of the Redis all nodes share ${eg}`);
  const url = o.redis;
  let parsed: URL | null = null;
  try {
    parsed = typeof url === 'string' ? new URL(url) : null;
  } catch {
    parsed = null;
  }
  if (!parsed || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') {
    fail(`${where}.redis`, `must be a redis:// or rediss:// URL with a host (e.g. "redis://127.0.0.1:6379", "rediss://user:password@redis.example.org:6380/0"), got ${JSON.stringify(typeof url === 'string' ? url.replace(/\/\/[^@/]*@/, '//***@') : url)}`);
  }
  let prefix = 'sealpost:';
  if (o.prefix !== undefined) {
    if (typeof o.prefix !== 'string' || !/^[\x21-\x7e]{1,100}$/.test(o.prefix)) {
      fail(`${where}.prefix`, `must be 1 to 100 printable characters without spaces (e.g. "sealpost:" or "fleet-a:"), prepended to every key so fleets can share one Redis; got ${JSON.stringify(o.prefix)}`);
    }
    prefix = o.prefix as string;
  }
  const timeoutMs = o.timeout_ms === undefined ? SHARED_LIMITS_TIMEOUT_MS : int(o.timeout_ms, `${where}.timeout_ms`, 1, 1_000);
  return { redis: url as string, prefix, timeoutMs };
}

/** One rate-limit scope: {"requests": bucket|null, "frames": bucket|null}, or null/false for both off. */
function rateSpec(v: unknown, where: string, base: RateSpec): RateSpec {
  if (v === null || v === false) return { requests: null, frames: null };
  const o = obj(v, where);
  known(o, ['requests', 'frames'], where);
  return {
    requests: o.requests === undefined ? base.requests : bucket(o.requests, `${where}.requests`),
    frames: o.frames === undefined ? base.frames : bucket(o.frames, `${where}.frames`),
  };
}

const seconds = (v: unknown, where: string, min: number, max: number): number => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(where, `must be a number of seconds from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return Math.round((v as number) * 1000);
};

/** The edge settings: timeouts, connections, rate_limit, relay_keys, allowed_hosts, trust_proxy. */
function checkEdge(o: Record<string, unknown>, c: ServerConfig, where: string): void {
  if (o.trust_proxy !== undefined) {
    const t = o.trust_proxy;
    // No hop counts: fastify 5.12 trusts no header with one (it cannot check the peer).
    const ok = typeof t === 'boolean' || (Array.isArray(t) && t.length > 0 && t.every((a) => typeof a === 'string' && /^[0-9A-Fa-f:.]+(\/\d{1,3})?$/.test(a)));
    if (!ok) fail(`${where}: trust_proxy`, `must be true, false, or a list of the proxies' addresses or CIDRs (e.g. ["127.0.0.1", "10.0.0.0/8"]), got ${JSON.stringify(t)}`);
    c.trustProxy = t as ServerConfig['trustProxy'];
  }
  if (o.timeouts !== undefined) {
    const t = obj(o.timeouts, `${where}: timeouts`);
    known(t, ['headers_s', 'request_s', 'keep_alive_s'], `${where}: timeouts`);
    if (t.headers_s !== undefined) c.timeouts.headersMs = seconds(t.headers_s, `${where}: timeouts.headers_s`, 1, 600);
    if (t.request_s !== undefined) c.timeouts.requestMs = seconds(t.request_s, `${where}: timeouts.request_s`, 1, 3600);
    if (t.keep_alive_s !== undefined) c.timeouts.keepAliveMs = seconds(t.keep_alive_s, `${where}: timeouts.keep_alive_s`, 1, 600);
  }
  if (c.timeouts.headersMs > c.timeouts.requestMs) {
    fail(`${where}: timeouts.headers_s`, `(${c.timeouts.headersMs / 1000}) must not exceed timeouts.request_s (${c.timeouts.requestMs / 1000}): the headers are part of the request`);
  }
  const explicitPerAddress = o.connections !== undefined && (o.connections as Record<string, unknown>)?.per_address !== undefined;
  if (o.connections !== undefined) {
    const n = obj(o.connections, `${where}: connections`);
    known(n, ['max', 'per_address', 'requests_per_socket'], `${where}: connections`);
    if (n.max !== undefined) c.connections.max = n.max === null ? null : int(n.max, `${where}: connections.max`, 16, 10_000_000);
    if (n.per_address !== undefined) c.connections.perAddress = n.per_address === null ? null : int(n.per_address, `${where}: connections.per_address`, 1, 10_000_000);
    if (n.requests_per_socket !== undefined) c.connections.requestsPerSocket = int(n.requests_per_socket, `${where}: connections.requests_per_socket`, 1, 10_000_000);
  }
  // Behind a proxy every connection comes from the proxy: a per-address cap
  // would cap the proxy, so it is off unless set explicitly.
  if (c.trustProxy !== false && !explicitPerAddress) c.connections.perAddress = null;
  if (o.rate_limit !== undefined) {
    if (o.rate_limit === null || o.rate_limit === false) {
      c.rateLimit = structuredClone(NO_RATE_LIMIT);
      c.auth = { read: null, failuresPerMinute: null };
    } else {
      const r = obj(o.rate_limit, `${where}: rate_limit`);
      for (const old of ['relay', 'ip']) {
        if (r[old] !== undefined) {
          fail(
            `${where}: rate_limit.${old}`,
            `is no longer a setting: limits are per source address and per relay key, in requests and frames per second. Write ` +
              `"rate_limit": {"address": {"requests": {"per_second": 100, "burst": 200}, "frames": {"per_second": 2000, "burst": 10000}}, ` +
              `"relay_key": {"requests": {...}, "frames": {...}}} (docs/server.md, "Rate limits")`,
          );
        }
      }
      known(r, ['address', 'relay_key', 'read', 'auth_failures'], `${where}: rate_limit`);
      if (r.address !== undefined) c.rateLimit.address = rateSpec(r.address, `${where}: rate_limit.address`, c.rateLimit.address);
      if (r.relay_key !== undefined) c.rateLimit.relayKey = rateSpec(r.relay_key, `${where}: rate_limit.relay_key`, c.rateLimit.relayKey);
      // API tokens (server/auth/access.ts): reads per token, 401s per address and minute.
      if (r.read !== undefined) c.auth.read = bucket(r.read, `${where}: rate_limit.read`);
      const af = r.auth_failures;
      if (af !== undefined) c.auth.failuresPerMinute = af === null || af === false ? null : int(af, `${where}: rate_limit.auth_failures`, 1, 1e9);
    }
  }
  if (o.relay_keys !== undefined && o.relay_keys !== null) {
    const w = `${where}: relay_keys`;
    if (!Array.isArray(o.relay_keys) || o.relay_keys.length === 0) {
      fail(w, 'must be a list of {"name", "sha256"} entries made by `sealpost relay-key new NAME` (leave it out to accept uploads without a relay key)');
    }
    c.relayKeys = (o.relay_keys as unknown[]).map((e, i) => {
      const k = obj(e, `${w}[${i}]`);
      known(k, ['name', 'sha256'], `${w}[${i}]`);
      if (typeof k.name !== 'string' || !RELAY_KEY_NAME.test(k.name)) fail(`${w}[${i}].name`, `must be ${RELAY_KEY_NAME_RULE}, got ${JSON.stringify(k.name)}`);
      if (typeof k.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(k.sha256)) {
        fail(`${w}[${i}].sha256`, 'must be the 64 lowercase hex digits of the key\'s SHA-256, as `sealpost relay-key new NAME` prints (never the key itself)');
      }
      return { name: k.name as string, sha256: k.sha256 as string };
    });
    const names = new Set<string>();
    const hashes = new Set<string>();
    for (const k of c.relayKeys) {
      if (names.has(k.name)) fail(w, `names "${k.name}" twice; each key needs its own name`);
      if (hashes.has(k.sha256)) fail(w, `lists the key of "${k.name}" twice`);
      names.add(k.name);
      hashes.add(k.sha256);
    }
  }
  if (o.allowed_hosts !== undefined && o.allowed_hosts !== null) {
    const w = `${where}: allowed_hosts`;
    if (!Array.isArray(o.allowed_hosts) || o.allowed_hosts.length === 0) fail(w, 'must be a list of host names or addresses (e.g. ["ingest.example.org", "127.0.0.1"]); leave it out to answer any Host');
    c.allowedHosts = (o.allowed_hosts as unknown[]).map((h, i) => {
      if (typeof h !== 'string' || !/^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))$/.test(h)) {
        fail(`${w}[${i}]`, `must be a host name or address without scheme or port (e.g. "ingest.example.org", "127.0.0.1", "::1"), got ${JSON.stringify(h)}`);
      }
      return normalHost(h as string);
    });
  }
}

/** A host as compared against allowed_hosts: lowercase, no brackets, no trailing dot. */
export function normalHost(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

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
  if (o.key_cache !== undefined) c.keyCache = int(o.key_cache, `${where}: key_cache`, 1, 10_000_000);
  if (o.key_directory !== undefined) c.keyDirectory = int(o.key_directory, `${where}: key_directory`, 0, 100_000_000);
  if (o.log_level !== undefined) {
    if (!LOG_LEVELS.includes(o.log_level as ServerConfig['logLevel'])) fail(`${where}: log_level`, `must be one of ${LOG_LEVELS.join(', ')}`);
    c.logLevel = o.log_level as ServerConfig['logLevel'];
  }
  if (o.sqlite_synchronous !== undefined) {
    if (o.sqlite_synchronous !== 'FULL' && o.sqlite_synchronous !== 'NORMAL') fail(`${where}: sqlite_synchronous`, 'must be "FULL" or "NORMAL"');
    c.sqliteSynchronous = o.sqlite_synchronous as 'FULL' | 'NORMAL';
  }
  if (o.pg_pool_size !== undefined) c.pgPoolSize = int(o.pg_pool_size, `${where}: pg_pool_size`, 1, 1000);
  // Time clamp and failed-authentication throttle (issue #10, items 3 and 4).
  if (o.max_relay_delay !== undefined) c.maxRelayDelay = int(o.max_relay_delay, `${where}: max_relay_delay (seconds)`, 0, 10 * 365 * 86_400);
  if (o.failed_auth !== undefined) {
    if (o.failed_auth === null || o.failed_auth === false) c.failedAuth = { ip: null, serial: null };
    else {
      const f = obj(o.failed_auth, `${where}: failed_auth`);
      known(f, ['ip', 'serial'], `${where}: failed_auth`);
      if (f.ip !== undefined) c.failedAuth.ip = bucket(f.ip, `${where}: failed_auth.ip`);
      if (f.serial !== undefined) c.failedAuth.serial = bucket(f.serial, `${where}: failed_auth.serial`);
    }
  }
  checkEdge(o, c, where);
  if (o.shared_limits !== undefined) c.sharedLimits = checkSharedLimits(o.shared_limits, `${where}: shared_limits`);
  if (o.pg_read_pool_size !== undefined) c.pgReadPoolSize = int(o.pg_read_pool_size, `${where}: pg_read_pool_size`, 1, 1000);
  if (o.read_workers !== undefined) c.readWorkers = int(o.read_workers, `${where}: read_workers`, 0, 64);
  if (o.renewal !== undefined) c.renewal = checkRenewal(o.renewal, `${where}: renewal`, baseDir);
  for (const [name, checker] of Object.entries(SECTIONS)) {
    if (o[name] !== undefined) c.sections[name] = checker(o[name], `${where}: ${name}`, baseDir);
  }
  return checkCoherence(c, where);
}

/** Rules that span settings. */
function checkCoherence(c: ServerConfig, where: string): ServerConfig {
  for (const [scope, spec] of [['address', c.rateLimit.address.frames], ['relay_key', c.rateLimit.relayKey.frames]] as const) {
    if (spec && spec.burst < c.limits.framesPerRequest) {
      fail(
        `${where}: rate_limit.${scope}.frames.burst`,
        `(${spec.burst}) must be at least limits.frames_per_request (${c.limits.framesPerRequest}), or a full request could never pass`,
      );
    }
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
    throw new ConfigError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the --config path`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(e as Error).message}; fix the file (one JSON object; JSON has no comments)`);
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
