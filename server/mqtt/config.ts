// The `mqtt` section of the config file (docs/server.md section 13): what it
// may hold, its defaults, and the check that turns the raw JSON into an
// MqttConfig or throws a ConfigError naming the setting. Also redactUrl,
// for every log line and message that shows the broker URL.
import { ConfigError } from '../errors.js';

export interface MqttConfig {
  /** Broker URL: mqtt://, mqtts://, ws://, wss:// (tcp:// and ssl:// are aliases). */
  url: string;
  topicPrefix: string;
  qos: 0 | 1;
  retain: boolean;
  /** null: "sealpost-" and 8 random hex digits, so several ingest nodes never share one. */
  clientId: string | null;
  username: string | null;
  password: string | null;
  /** Messages kept while the broker is unreachable; beyond, the oldest are dropped. */
  buffer: number;
}

export const MQTT_DEFAULTS = { topicPrefix: 'sealpost', qos: 1, retain: false, buffer: 10_000 } as const;

const KEYS = ['url', 'topic_prefix', 'qos', 'retain', 'client_id', 'username', 'password', 'buffer'];
const SCHEMES = ['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'];

/** The URL with its password replaced, for logs and messages; also for strings that do not parse. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/(\/\/[^/:@]*:)[^/@]*@/, '$1***@').slice(0, 200);
  }
}

/**
 * The `mqtt` section of the config file (server/config.ts SECTIONS). Throws
 * ConfigError naming the setting, e.g. "config: mqtt.qos must be 0 or 1".
 */
export function checkMqttConfig(value: unknown, where: string): MqttConfig {
  const fail = (what: string, msg: string): never => {
    throw new ConfigError(`${where}${what} ${msg}`);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail('', 'must be an object such as {"url": "mqtt://127.0.0.1:1883"}; leave it out to disable MQTT publishing');
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) fail('', `has an unknown setting "${k}" (known: ${KEYS.join(', ')})`);

  const example = 'a broker URL such as mqtt://127.0.0.1:1883 (schemes: mqtt, mqtts, ws, wss)';
  if (typeof o.url !== 'string' || o.url.length === 0) fail('.url', `is required: ${example}`);
  const url = o.url as string;
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    fail('.url', `must be ${example}, got ${JSON.stringify(redactUrl(url))}`);
  }
  if (!SCHEMES.includes(parsed!.protocol)) fail('.url', `must be ${example}, got scheme "${parsed!.protocol.slice(0, -1)}"`);
  if (!parsed!.hostname) fail('.url', `must name a host: ${example}`);

  let topicPrefix: string = MQTT_DEFAULTS.topicPrefix;
  if (o.topic_prefix !== undefined) {
    const p = o.topic_prefix;
    // MQTT 3.1.1 section 4.7: + and # are wildcards, $ starts reserved topics; an empty level is legal but a trap.
    if (typeof p !== 'string' || !/^[^+#$/\0][^+#\0]{0,199}$/.test(p) || p.endsWith('/') || p.includes('//')) {
      fail('.topic_prefix', `must be topic levels separated by "/" without +, #, a leading $ or /, or empty levels (e.g. "sealpost" or "site-3/sealpost"), got ${JSON.stringify(p)}`);
    }
    topicPrefix = p as string;
  }
  let qos: 0 | 1 = MQTT_DEFAULTS.qos;
  if (o.qos !== undefined) {
    if (o.qos !== 0 && o.qos !== 1) fail('.qos', `must be 0 or 1 (QoS 2 is not supported), got ${JSON.stringify(o.qos)}`);
    qos = o.qos as 0 | 1;
  }
  let retain: boolean = MQTT_DEFAULTS.retain;
  if (o.retain !== undefined) {
    if (typeof o.retain !== 'boolean') fail('.retain', 'must be true or false');
    retain = o.retain as boolean;
  }
  const optionalString = (k: string, max: number): string | null => {
    const v = o[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || v.length === 0 || v.length > max) fail(`.${k}`, `must be a string of 1 to ${max} characters`);
    return v as string;
  };
  const clientId = optionalString('client_id', 128);
  const username = optionalString('username', 256);
  const password = optionalString('password', 256);
  let buffer: number = MQTT_DEFAULTS.buffer;
  if (o.buffer !== undefined) {
    if (typeof o.buffer !== 'number' || !Number.isInteger(o.buffer) || o.buffer < 1 || o.buffer > 1_000_000) {
      fail('.buffer', `must be a whole number of messages from 1 to 1000000, got ${JSON.stringify(o.buffer)}`);
    }
    buffer = o.buffer as number;
  }
  return { url, topicPrefix, qos, retain, clientId, username, password, buffer };
}
