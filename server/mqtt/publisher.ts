// The MQTT connection for sealpost-mqtt (docs/server.md section 13): topics
// and payloads in, at most once or at least once out; it knows nothing about
// readings (readings.ts makes the messages).
//
// The ingest path never waits for the broker. Event listeners only put a
// message into a bounded queue; a pump sends from it while connected, at most
// MAX_INFLIGHT unacknowledged at a time. A message leaves the queue for good
// only when the broker took it (PUBACK at QoS 1, written to the socket at QoS
// 0); messages in flight when a connection drops go back to the front of the
// queue and are sent again after reconnecting (so QoS 1 is at least once,
// across reconnects too). When the queue is full the oldest message is
// dropped and counted. The publisher owns reconnection: mqtt.js's own fixed-period
// retry is off (reconnectPeriod 0), each attempt is a fresh client, and the
// delay doubles from BACKOFF_MIN_MS to BACKOFF_MAX_MS with jitter.
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { IClientOptions, MqttClient } from 'mqtt';
import { redactUrl, type MqttConfig } from './config.js';
import { BoundedQueue } from './queue.js';

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

const MAX_INFLIGHT = 100;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;
const DROP_LOG_INTERVAL_MS = 60_000;
/** On close, how long to wait for queued messages to go out. */
const DRAIN_MS = 1_000;

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
