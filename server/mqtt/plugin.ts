// sealpost-mqtt: publishes every new reading to an MQTT broker
// (docs/server.md section 13, topics and payloads in docs/api.md "MQTT").
//
// The ingest path never waits for the broker. Event listeners only put a
// message into a bounded queue; a pump sends from it while connected, at most
// MAX_INFLIGHT unacknowledged at a time. A message leaves the queue for good
// only when the broker took it (PUBACK at QoS 1, written to the socket at QoS
// 0); messages in flight when a connection drops go back to the front of the
// queue and are sent again after reconnecting (so QoS 1 is at least once,
// across reconnects too). When the queue is full the oldest message is
// dropped and counted. The plugin owns reconnection: mqtt.js's own fixed-period
// retry is off (reconnectPeriod 0), each attempt is a fresh client, and the
// delay doubles from BACKOFF_MIN_MS to BACKOFF_MAX_MS with jitter.
import { randomBytes } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { ReadingEvent, RetimeEvent } from '../events.js';
import { ConfigError } from '../errors.js';
import type { ReadingKey, Storage } from '../storage/types.js';

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

/** What GET /v1/mqtt reports. */
export interface MqttStats {
  connected: boolean;
  broker: string;
  /** Messages waiting for a connection. */
  queued: number;
  /** Sent, not yet acknowledged by the broker. */
  inflight: number;
  published: number;
  /** Dropped because the queue was full (the broker unreachable for long). */
  dropped: number;
  /** Connection attempts that failed or connections that dropped. */
  failures: number;
  lastError: string | null;
}

interface Message {
  topic: string;
  payload: string;
}

/** Payload of `<prefix>/<serial>/<name>` (docs/api.md, "MQTT"). */
export interface ReadingMessage {
  serial: string;
  channel: number;
  name: string;
  unit: string;
  value: number | null;
  time: number | null;
  counter: number;
  uptime: number | null;
  boot: number | null;
}

export const readingMessage = (r: ReadingMessage): ReadingMessage => ({
  serial: r.serial,
  channel: r.channel,
  name: r.name,
  unit: r.unit,
  value: r.value,
  time: r.time,
  counter: r.counter,
  uptime: r.uptime,
  boot: r.boot,
});

const MAX_INFLIGHT = 100;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;
const DROP_LOG_INTERVAL_MS = 60_000;
/** On close, how long to wait for queued messages to go out. */
const DRAIN_MS = 1_000;
/** Readings published with time null, remembered to republish once placed. */
const MAX_UNPLACED = 10_000;
const UNPLACED_TTL_MS = 3_600_000;

/** A FIFO of messages with a bound: pushing onto a full queue drops the oldest. */
export class BoundedQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  constructor(readonly capacity: number) {}
  get length(): number {
    return this.items.length - this.head;
  }
  /** Appends; returns how many old items were dropped to make room (0 or 1). */
  push(item: T): number {
    let dropped = 0;
    if (this.length >= this.capacity) {
      this.shift();
      dropped = 1;
    }
    this.items.push(item);
    return dropped;
  }
  /** Puts items back at the front, in their order; if that overfills the queue the oldest are dropped. Returns how many. */
  unshiftAll(list: T[]): number {
    const rest = this.items.slice(this.head) as T[];
    const all = [...list, ...rest];
    const dropped = Math.max(0, all.length - this.capacity);
    this.items = all.slice(dropped);
    this.head = 0;
    return dropped;
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

type Connect = (url: string, options: IClientOptions) => MqttClient;

/** Connection, queue and reconnection; knows nothing about readings. */
export class MqttPublisher {
  private readonly queue: BoundedQueue<Message>;
  private client: MqttClient | null = null;
  private connected = false;
  private closed = false;
  private generation = 0;
  private readonly inflight = new Map<number, Message>();
  private seq = 0;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private pumpScheduled = false;
  private published = 0;
  private dropped = 0;
  private droppedUnlogged = 0;
  private dropTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private lastError: string | null = null;
  private readonly clientId: string;

  constructor(
    private readonly config: MqttConfig,
    private readonly connectFn: Connect,
    private readonly log: FastifyBaseLogger,
  ) {
    this.queue = new BoundedQueue(config.buffer);
    this.clientId = config.clientId ?? `sealpost-${randomBytes(4).toString('hex')}`;
  }

  start(): void {
    this.open();
  }

  /** Queues a message; never blocks, never throws for broker trouble. */
  publish(topic: string, payload: string): void {
    if (this.closed) return;
    this.countDrops(this.queue.push({ topic, payload }));
    this.schedulePump();
  }

  stats(): MqttStats {
    return {
      connected: this.connected,
      broker: redactUrl(this.config.url),
      queued: this.queue.length,
      inflight: this.inflight.size,
      published: this.published,
      dropped: this.dropped,
      failures: this.failures,
      lastError: this.lastError,
    };
  }

  /** Gives queued messages up to `drainMs` to go out, then disconnects. */
  async close(drainMs = DRAIN_MS): Promise<void> {
    if (this.closed) return;
    const deadline = Date.now() + drainMs;
    while (this.connected && (this.queue.length > 0 || this.inflight.size > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.flushDropLog();
    const unsent = this.queue.length + this.inflight.size;
    if (unsent > 0) this.log.warn({ unsent, ...this.stats() }, 'mqtt: closing with messages not delivered to the broker');
    const c = this.client;
    this.client = null;
    this.connected = false;
    this.generation++;
    if (c) await new Promise<void>((resolve) => c.end(true, {}, () => resolve()));
  }

  private open(): void {
    const gen = ++this.generation;
    const options: IClientOptions = {
      clientId: this.clientId,
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      queueQoSZero: false,
      clean: true,
      ...(this.config.username !== null ? { username: this.config.username } : {}),
      ...(this.config.password !== null ? { password: this.config.password } : {}),
    };
    let c: MqttClient;
    try {
      c = this.connectFn(this.config.url, options);
    } catch (e) {
      this.onDown(gen, e as Error);
      return;
    }
    this.client = c;
    c.on('connect', () => {
      if (gen !== this.generation) return;
      this.connected = true;
      this.attempt = 0;
      this.log.info({ broker: redactUrl(this.config.url), clientId: this.clientId, queued: this.queue.length }, 'mqtt: connected');
      this.schedulePump();
    });
    c.on('error', (e) => {
      if (gen === this.generation) this.lastError = e.message;
    });
    c.on('close', () => this.onDown(gen, null));
  }

  /** The connection (or the attempt) of generation `gen` ended: requeue its in-flight messages and retry later. */
  private onDown(gen: number, error: Error | null): void {
    if (gen !== this.generation || this.closed) return;
    this.generation++;
    if (error) this.lastError = error.message;
    const wasConnected = this.connected;
    this.connected = false;
    this.failures++;
    const back = [...this.inflight.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
    this.inflight.clear();
    this.countDrops(this.queue.unshiftAll(back));
    const c = this.client;
    this.client = null;
    c?.removeAllListeners('connect');
    c?.on('error', () => undefined);
    c?.end(true);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempt, 16));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.attempt++;
    // A long outage logs its first attempts and then every tenth (about every 5 minutes at the longest delay).
    const level = this.attempt <= 3 || this.attempt % 10 === 0 ? 'warn' : 'debug';
    this.log[level](
      { broker: redactUrl(this.config.url), error: this.lastError, retryInMs: delay, queued: this.queue.length, dropped: this.dropped, attempt: this.attempt },
      wasConnected ? 'mqtt: connection lost; reconnecting' : 'mqtt: cannot connect to the broker; will retry',
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed) this.open();
    }, delay);
    this.retryTimer.unref();
  }

  private schedulePump(): void {
    if (this.pumpScheduled || !this.connected) return;
    this.pumpScheduled = true;
    // After the current request's response: listeners run on the request path.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const c = this.client;
    const gen = this.generation;
    while (c && this.connected && this.inflight.size < MAX_INFLIGHT) {
      const m = this.queue.shift();
      if (!m) break;
      const id = ++this.seq;
      this.inflight.set(id, m);
      c.publish(m.topic, m.payload, { qos: this.config.qos, retain: this.config.retain }, (err) => {
        // A callback from a connection already given up on: onDown requeued the message.
        if (gen !== this.generation || !this.inflight.delete(id)) return;
        if (err) {
          this.lastError = err.message;
          this.countDrops(this.queue.unshiftAll([m]));
        } else this.published++;
        this.schedulePump();
      });
    }
  }

  private countDrops(n: number): void {
    if (n === 0) return;
    if (this.dropped === 0 || (this.droppedUnlogged === 0 && this.dropTimer === null)) {
      this.log.warn(
        { broker: redactUrl(this.config.url), buffer: this.config.buffer },
        'mqtt: message buffer full while the broker is unreachable; dropping the oldest messages (raise mqtt.buffer to keep more)',
      );
    }
    this.dropped += n;
    this.droppedUnlogged += n;
    if (this.dropTimer === null) {
      this.dropTimer = setTimeout(() => this.flushDropLog(), DROP_LOG_INTERVAL_MS);
      this.dropTimer.unref();
    }
  }

  private flushDropLog(): void {
    if (this.dropTimer) clearTimeout(this.dropTimer);
    this.dropTimer = null;
    if (this.droppedUnlogged === 0) return;
    this.log.warn({ dropped: this.droppedUnlogged, droppedTotal: this.dropped, queued: this.queue.length }, 'mqtt: messages dropped');
    this.droppedUnlogged = 0;
  }
}

/**
 * Readings and retimes to topics and payloads. A reading whose boot had no
 * time anchor yet is published with time, boot and uptime null; its counter
 * is remembered (up to MAX_UNPLACED, for UNPLACED_TTL_MS), and when a retime
 * event says a boot of that device got a time, the device's readings from
 * that time on are read back and the remembered ones of that boot published
 * again, now with time, boot and uptime.
 */
export class ReadingPublisher {
  private readonly unplaced = new Map<string, { counters: Set<number>; since: number }>();
  private unplacedCount = 0;

  constructor(
    private readonly publisher: Pick<MqttPublisher, 'publish'>,
    private readonly config: Pick<MqttConfig, 'topicPrefix'>,
    private readonly storage: Pick<Storage, 'readings'>,
    private readonly log: FastifyBaseLogger,
    private readonly pageSize: number,
  ) {}

  topic(serial: string, name: string): string {
    return `${this.config.topicPrefix}/${serial}/${name}`;
  }

  reading(r: ReadingEvent): void {
    this.publisher.publish(this.topic(r.serial, r.name), JSON.stringify(readingMessage(r)));
    if (r.time === null && this.unplacedCount < MAX_UNPLACED) {
      let u = this.unplaced.get(r.serial);
      if (!u) this.unplaced.set(r.serial, (u = { counters: new Set(), since: Date.now() }));
      if (!u.counters.has(r.counter)) {
        u.counters.add(r.counter);
        this.unplacedCount++;
      }
    }
  }

  retime(e: RetimeEvent): void {
    this.publisher.publish(this.topic(e.serial, 'retime'), JSON.stringify({ serial: e.serial, boot: e.boot, start: e.start }));
    const u = this.unplaced.get(e.serial);
    if (!u) return;
    // Samples whose anchor never arrives (lost with an outbox overflow) stay unplaced for good.
    if (Date.now() - u.since > UNPLACED_TTL_MS) this.forget(e.serial, u.counters.size);
    else void this.republish(e, u.counters);
  }

  private forget(serial: string, n: number): void {
    this.unplaced.delete(serial);
    this.unplacedCount -= n;
  }

  private async republish(e: RetimeEvent, counters: Set<number>): Promise<void> {
    try {
      // A placed reading's time is its boot's start + uptime, so at or after
      // e.start. Page through them (limits.page_max each) until every
      // remembered counter of the boot is found or the readings end.
      let after: ReadingKey | undefined;
      for (;;) {
        const rows = await this.storage.readings(e.serial, { from: e.start, limit: this.pageSize, ...(after ? { after } : {}) });
        const placed = rows.filter((r) => r.boot === e.boot && r.time !== null && counters.has(r.counter));
        for (const r of placed) this.publisher.publish(this.topic(r.serial, r.name), JSON.stringify(readingMessage(r)));
        for (const r of placed) if (counters.delete(r.counter)) this.unplacedCount--;
        const last = rows[rows.length - 1];
        if (rows.length < this.pageSize || counters.size === 0 || !last) break;
        after = { counter: last.counter, idx: last.idx };
      }
      if (counters.size === 0 && this.unplaced.get(e.serial)?.counters === counters) this.unplaced.delete(e.serial);
    } catch (err) {
      this.log.error({ err, serial: e.serial, boot: e.boot }, 'mqtt: cannot read back re-timed readings');
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The MQTT publisher (sealpost-mqtt), when the mqtt section is configured. */
    mqtt: MqttPublisher;
  }
}

export default fp(
  async (app) => {
    const config = app.config.sections.mqtt as MqttConfig;
    const { connect } = await import('mqtt');
    const log = app.log.child({ plugin: 'mqtt' });
    const publisher = new MqttPublisher(config, connect, log);
    const readings = new ReadingPublisher(publisher, config, app.storage, log, app.config.limits.pageMax);
    app.decorate('mqtt', publisher);
    app.events.on('reading', (r) => readings.reading(r));
    app.events.on('retime', (e) => readings.retime(e));
    app.addHook('onReady', async () => {
      publisher.start();
      log.info({ broker: redactUrl(config.url), topicPrefix: config.topicPrefix, qos: config.qos }, 'mqtt: publishing readings');
    });
    app.addHook('preClose', async () => publisher.close());

    app.get('/v1/mqtt', async () => {
      const s = publisher.stats();
      return {
        connected: s.connected,
        broker: s.broker,
        topic_prefix: config.topicPrefix,
        qos: config.qos,
        queued: s.queued,
        inflight: s.inflight,
        published: s.published,
        dropped: s.dropped,
        failures: s.failures,
        last_error: s.lastError,
      };
    });
  },
  { name: 'sealpost-mqtt', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-storage', 'sealpost-events'] },
);
