// The phone relay, platform-neutral (design brief, "Delivery"; docs/relay.md).
//
// It connects to devices through DeviceLinks, reads their public info,
// stamps every notified frame with its receive time, keeps it in a durable
// QueueStore, POSTs batches to /v1/uplink and writes each device's ack back.
// It holds no key: it reads the cleartext counter (docs/protocol.md section 5)
// and the ack's N (section 6), nothing else, and never changes a byte.
//
// Everything it touches is injected (style.md rule 1): the clock, the
// uploader, the queue store and the links. No node: import here, so the same
// module runs in the Web Bluetooth page (IndexedDB store, fetch uploader,
// GATT links) and under Node (relay/file-queue.ts, sim/relay.ts).
//
// Safety does not depend on the relay: a device frees a frame only when an
// ack it can verify covers it, so a relay that loses its queue, drops a frame
// or crashes costs a resend, never a sample. The queue is what lets a phone
// carry frames while it has no network.
import { ACK_LEN, MAX_COUNTER, MAX_FRAME_SIZE, MIN_FRAME_SIZE, PROTOCOL_VERSION } from '../protocol/wire/constants.js';
import { fromBase64, toBase64 } from './base64.js';

/** Milliseconds since 1970 from now(); timers in ms. A real clock or hal/sim VirtualClock. */
export interface RelayClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * One connected device. The Web Bluetooth page implements it over GATT
 * (docs/protocol.md section 7), sim/relay.ts over hal/sim's SimLink.
 */
export interface DeviceLink {
  /** The info characteristic: UTF-8 JSON, e.g. {"serial":"SP-000001","v":1,"f":20,"b":"puckjs","fw":"0.1.0"}. */
  info(): string | Uint8Array | Promise<string | Uint8Array>;
  /** Subscribes to the frames characteristic (one frame per notification); resolves once notifications are on. */
  onFrame(cb: (frame: Uint8Array) => void): void | Promise<void>;
  /** Writes one 12-byte ack to the ack characteristic. */
  writeAck(ack: Uint8Array): void | Promise<void>;
  disconnect(): void | Promise<void>;
  connected(): boolean;
  /** Optional: calls cb once when the link drops (Web Bluetooth: gattserverdisconnected). Without it the relay polls connected(). */
  onDisconnect?(cb: () => void): void;
}

/** A frame as the queue store keeps it. `id` is unique and rises in arrival order. */
export interface QueuedFrame {
  id: number;
  serial: string;
  /** The frame, base64 (as it goes on the wire to the server). */
  data: string;
  /** Relay receive time, ms since 1970. */
  rx: number;
}

/**
 * Durable frame storage. Each promise resolves only once the change is
 * durable (fsync, IndexedDB transaction complete). Calls are never
 * concurrent: the relay waits for one to finish before the next.
 */
export interface QueueStore {
  /** Every frame appended and not removed, in any order. */
  load(): Promise<QueuedFrame[]>;
  append(frames: QueuedFrame[]): Promise<void>;
  /** Removing an id that is not there is not an error. */
  remove(ids: number[]): Promise<void>;
}

/** The body of POST /v1/uplink (docs/api.md). */
export interface UplinkRequest {
  relay: { id: string; time: number };
  devices: { serial: string; frames: { data: string; rx: number }[] }[];
}

/** The part of a fetch Response the relay reads. */
export interface UploadResponse {
  status: number;
  headers?: { get(name: string): string | null } | undefined;
  json(): Promise<unknown>;
}

/** Sends one request; rejects on network failure. `signal` aborts it (timeout, close). */
export type Uploader = (body: UplinkRequest, signal?: AbortSignal) => Promise<UploadResponse>;

export type LogLevel = 'info' | 'warn' | 'error';
export type RelayLog = (level: LogLevel, message: string) => void;

export interface RelayOptions {
  /** Sent as relay.id: 1 to 64 printable ASCII characters, no spaces. */
  relayId: string;
  clock: RelayClock;
  upload: Uploader;
  store: QueueStore;
  log?: RelayLog;
  /** 0 <= random() < 1, for backoff jitter. */
  random?: () => number;
  /** Called after a change worth redrawing (connections, queue, uploads). */
  onChange?: () => void;
  /** Frames in one request, over all devices. Default 200. */
  maxFramesPerRequest?: number;
  /** Devices in one request. Default 100 (the server's default limit). */
  maxDevicesPerRequest?: number;
  /** Frames of one device in one request. Default 500 (the server's default limit). */
  maxFramesPerDevice?: number;
  /** Wait this long after a frame arrives for more to share its request. Default 1000 ms. */
  flushDelayMs?: number;
  /** A request (and reading its answer) that takes longer is abandoned. Default 20 s. */
  requestTimeoutMs?: number;
  /** First retry delay; doubles per consecutive failure. Default 1 s. */
  backoffBaseMs?: number;
  /** Longest retry delay. Default 30 s. */
  backoffCapMs?: number;
  /** A Retry-After longer than this is cut to it. Default 10 min. */
  maxRetryAfterMs?: number;
  /** Beyond this many queued frames new ones are refused (the device keeps them). Default 100,000. */
  maxQueueFrames?: number;
  /** Polls links without onDisconnect this often. Default 1000 ms; 0 turns polling off. */
  linkPollMs?: number;
  /**
   * A connected device whose acks have not covered what it sent for this
   * long, while the relay holds nothing the server lacks, is disconnected so
   * that it resends from its oldest frame on the next connection (see
   * docs/relay.md, "Stalled devices"). Doubles per stall, reset once caught up.
   * Default 15 s; 0 turns it off.
   */
  stallMs?: number;
}

export type DeviceState = 'connecting' | 'connected' | 'disconnected';

export interface DeviceStatus {
  serial: string;
  state: DeviceState;
  frameSize: number;
  board: string;
  firmware: string;
  connections: number;
  connectedAt: number | null;
  lastFrameAt: number | null;
  /** Notifications received (all, including repeats the queue already held). */
  received: number;
  /** Frames of this device now in the queue. */
  queued: number;
  /** Frames the server stored as new. */
  accepted: number;
  duplicates: number;
  rejected: number;
  /** N of the latest ack the server gave for it (0: none yet). */
  ackN: number;
  /** N of the last ack written to the device (0: none). */
  ackWrittenN: number;
  acksWritten: number;
  /** An ack is waiting for the device to reconnect. */
  ackPending: boolean;
  /** Highest counter received from it. */
  maxCounter: number;
  /** Times the relay reconnected it because its ack stopped moving. */
  stalls: number;
}

export interface UploadResult {
  at: number;
  ok: boolean;
  /** HTTP status, or null for a network failure or timeout. */
  status: number | null;
  frames: number;
  message: string;
}

export interface RelayTotals {
  received: number;
  queued: number;
  /** Notifications not queued because the same frame is already in the queue. */
  repeats: number;
  /** Notifications not queued because the server already has them: at or below its N, or stored above it by its answers. */
  settledSkips: number;
  malformed: number;
  refused: number;
  requests: number;
  failedRequests: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  /** Frames dropped after a 400 or 413 that pointed at them. */
  dropped: number;
  acksWritten: number;
  stalls: number;
}

export interface RelayStatus {
  relayId: string;
  /** Frames waiting for the server (durable or being made durable). */
  queue: number;
  uploading: boolean;
  /** Consecutive failed requests. */
  failures: number;
  /** When the next request may go (backoff, Retry-After), or null. */
  retryAt: number | null;
  lastUpload: UploadResult | null;
  lastSuccessAt: number | null;
  devices: DeviceStatus[];
  totals: RelayTotals;
}

export class RelayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RelayError';
  }
}

/** docs/protocol.md section 7, "info". */
export interface DeviceInfo {
  serial: string;
  v: number;
  f: number;
  b: string;
  fw: string;
}

/** Same rule as protocol/provision.ts checkSerial (kept local: that module pulls in HPKE). */
const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const RELAY_ID_PATTERN = /^[\x21-\x7e]{1,64}$/;
/** The server names a bad frame by its path in a 400 message (server/schemas.ts formatSchemaError). */
const FRAME_PATH = /devices\/(\d+)\/frames\/(\d+)/;
/** How long a 413 keeps requests below the size that got it. */
const CEILING_MS = 600_000;
/** Longest server-supplied text copied into a log line. */
const MAX_ECHO = 200;

const DEFAULTS = {
  maxFramesPerRequest: 200,
  maxDevicesPerRequest: 100,
  maxFramesPerDevice: 500,
  flushDelayMs: 1000,
  requestTimeoutMs: 20_000,
  backoffBaseMs: 1000,
  backoffCapMs: 30_000,
  maxRetryAfterMs: 600_000,
  maxQueueFrames: 100_000,
  linkPollMs: 1000,
  stallMs: 15_000,
};

/** Parses the info characteristic; throws a RelayError naming the bad field. */
export function parseDeviceInfo(value: string | Uint8Array): DeviceInfo {
  const text = typeof value === 'string' ? value : new TextDecoder().decode(value);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new RelayError(`device info is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new RelayError('device info is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (typeof d.serial !== 'string' || !SERIAL_PATTERN.test(d.serial)) throw new RelayError(`device info serial is not a serial: ${JSON.stringify(d.serial)}`);
  if (d.v !== PROTOCOL_VERSION) throw new RelayError(`device ${d.serial} speaks protocol ${JSON.stringify(d.v)}; this relay speaks ${PROTOCOL_VERSION}`);
  if (typeof d.f !== 'number' || !Number.isInteger(d.f) || d.f < MIN_FRAME_SIZE || d.f > MAX_FRAME_SIZE) {
    throw new RelayError(`device ${d.serial} info f (frame size) must be ${MIN_FRAME_SIZE}..${MAX_FRAME_SIZE}, got ${JSON.stringify(d.f)}`);
  }
  return { serial: d.serial, v: d.v, f: d.f, b: typeof d.b === 'string' ? d.b.slice(0, 32) : '', fw: typeof d.fw === 'string' ? d.fw.slice(0, 32) : '' };
}

/**
 * Retry-After (RFC 9110 section 10.2.3): delay-seconds or an HTTP-date, in ms
 * from `now`; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

interface Entry extends QueuedFrame {
  counter: number;
  /** clock.now() when it entered the queue (for the flush delay). */
  queuedAt: number;
}

interface Device {
  serial: string;
  info: DeviceInfo;
  link: DeviceLink | undefined;
  state: DeviceState;
  connections: number;
  connectedAt: number | null;
  lastFrameAt: number | null;
  received: number;
  queued: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  ack: Uint8Array | undefined;
  ackN: number;
  ackWrittenN: number;
  acksWritten: number;
  ackPending: boolean;
  malformedLogged: boolean;
  maxCounter: number;
  /**
   * Frames above N the server said it holds (a 200 that did not reject
   * them), counter -> base64: a device resending them is not queued again.
   */
  storedAbove: Map<number, string>;
  /** clock.now() when an answer last covered everything the device had sent in its request. */
  caughtUpAt: number;
  stallWaitMs: number;
  stalls: number;
}

type Answer = { status: number; retryAfter: string | null; json: unknown; jsonError: string | undefined };

interface DeviceAnswer {
  ack: Uint8Array | undefined;
  ackN: number;
  accepted: number;
  duplicates: number;
  rejected: Map<number, string>;
}

const keyOf = (serial: string, data: string) => serial + ' ' + data;

/** The cleartext counter of a frame, or N of an ack, big-endian (as protocol/bytes.ts, kept here so the browser bundle needs nothing else). */
function readU32BE(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function clip(text: unknown): string {
  const s = typeof text === 'string' ? text : JSON.stringify(text) ?? String(text);
  return s.length > MAX_ECHO ? s.slice(0, MAX_ECHO) + '...' : s;
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    const detail = cause instanceof Error ? `: ${cause.message}` : '';
    return clip(e.message + detail);
  }
  return clip(String(e));
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0;
}

export class Relay {
  readonly relayId: string;
  readonly #clock: RelayClock;
  readonly #upload: Uploader;
  readonly #store: QueueStore;
  readonly #log: RelayLog;
  readonly #random: () => number;
  readonly #onChange: (() => void) | undefined;
  readonly #o: typeof DEFAULTS;

  /** Durable frames by id, in id order (Map keeps insertion order and ids only rise). */
  readonly #queue = new Map<number, Entry>();
  /** Frames received but not yet durable. */
  #pending: Entry[] = [];
  /** serial + data of every frame queued or pending, so a resent frame is not queued twice. */
  readonly #index = new Set<string>();
  readonly #devices = new Map<string, Device>();
  #nextId = 1;

  #storeChain: Promise<void> = Promise.resolve();
  #storeOps = 0;
  #appendQueued = false;
  #handling = 0;
  #idleWaiters: (() => void)[] = [];

  #uploading = false;
  #abort: AbortController | undefined;
  #timer: unknown;
  #timerAt: number | undefined;
  #pollTimer: unknown;
  #failures = 0;
  #retryAt: number | null = null;
  #batchLimit: number;
  /** After a 413: requests stay at half the refused size until #ceilingUntil. */
  #ceiling = Infinity;
  #ceilingUntil = 0;
  #lastUpload: UploadResult | null = null;
  #lastSuccessAt: number | null = null;
  #closed = false;
  #queueFullLogged = false;
  readonly #totals: RelayTotals = {
    received: 0,
    queued: 0,
    repeats: 0,
    settledSkips: 0,
    malformed: 0,
    refused: 0,
    requests: 0,
    failedRequests: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
    dropped: 0,
    acksWritten: 0,
    stalls: 0,
  };

  private constructor(options: RelayOptions) {
    if (typeof options.relayId !== 'string' || !RELAY_ID_PATTERN.test(options.relayId)) {
      throw new RelayError(`relayId must be 1 to 64 printable ASCII characters without spaces, got ${JSON.stringify(options.relayId)}`);
    }
    this.relayId = options.relayId;
    this.#clock = options.clock;
    this.#upload = options.upload;
    this.#store = options.store;
    this.#log = options.log ?? defaultLog;
    this.#random = options.random ?? Math.random;
    this.#onChange = options.onChange;
    const o = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const v = options[k];
      if (v === undefined) continue;
      const min = k === 'maxFramesPerRequest' || k === 'maxDevicesPerRequest' || k === 'maxFramesPerDevice' || k === 'maxQueueFrames' ? 1 : 0;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new RelayError(`${k} must be a number >= ${min}, got ${JSON.stringify(v)}`);
      o[k] = v;
    }
    this.#o = o;
    this.#batchLimit = o.maxFramesPerRequest;
  }

  /** Opens a relay on `options.store`: frames left from an earlier run are queued again and uploaded. */
  static async open(options: RelayOptions): Promise<Relay> {
    const relay = new Relay(options);
    await relay.#load();
    return relay;
  }

  async #load(): Promise<void> {
    const frames = await this.#store.load();
    const bad: number[] = [];
    const now = this.#clock.now();
    for (const f of [...frames].sort((a, b) => a.id - b.id)) {
      const bytes = typeof f?.data === 'string' ? fromBase64(f.data) : undefined;
      const ok =
        Number.isSafeInteger(f?.id) &&
        f.id > 0 &&
        typeof f.serial === 'string' &&
        SERIAL_PATTERN.test(f.serial) &&
        bytes !== undefined &&
        bytes.length >= MIN_FRAME_SIZE &&
        bytes.length <= MAX_FRAME_SIZE &&
        Number.isSafeInteger(f.rx) &&
        f.rx >= 0;
      if (!ok || this.#queue.has(f.id) || this.#index.has(keyOf(f.serial, f.data))) {
        if (Number.isSafeInteger(f?.id)) bad.push(f.id);
        continue;
      }
      this.#queue.set(f.id, { id: f.id, serial: f.serial, data: f.data, rx: f.rx, counter: readU32BE(bytes, 0), queuedAt: now });
      this.#index.add(keyOf(f.serial, f.data));
      this.#nextId = Math.max(this.#nextId, f.id + 1);
    }
    if (bad.length > 0) {
      this.#log('warn', `queue store held ${bad.length} unusable or repeated frame(s); removed`);
      await this.#store.remove(bad);
    }
    if (this.#queue.size > 0) this.#log('info', `${this.#queue.size} frame(s) left from an earlier run are queued for upload`);
    this.#kick();
  }

  // ---- devices ------------------------------------------------------------

  /**
   * Takes over a freshly connected link: reads info, subscribes to frames,
   * writes the device's latest ack if the relay holds one. Resolves to the
   * serial; on bad info it disconnects the link and throws a RelayError.
   */
  async connect(link: DeviceLink): Promise<string> {
    if (this.#closed) throw new RelayError('relay is closed');
    let info: DeviceInfo;
    try {
      info = parseDeviceInfo(await link.info());
    } catch (e) {
      this.#log('warn', `refused a device: ${errorText(e)}`);
      await Promise.resolve(link.disconnect()).catch(() => undefined);
      throw e instanceof RelayError ? e : new RelayError(`reading device info failed: ${errorText(e)}`);
    }
    let d = this.#devices.get(info.serial);
    if (!d) {
      d = {
        serial: info.serial,
        info,
        link: undefined,
        state: 'connecting',
        connections: 0,
        connectedAt: null,
        lastFrameAt: null,
        received: 0,
        queued: 0,
        accepted: 0,
        duplicates: 0,
        rejected: 0,
        ack: undefined,
        ackN: 0,
        ackWrittenN: 0,
        acksWritten: 0,
        ackPending: false,
        malformedLogged: false,
        maxCounter: 0,
        storedAbove: new Map(),
        caughtUpAt: 0,
        stallWaitMs: 0,
        stalls: 0,
      };
      this.#devices.set(info.serial, d);
    } else if (d.info.f !== info.f) {
      this.#log('warn', `${info.serial} now reports frame size ${info.f} (was ${d.info.f})`);
    }
    const device = d;
    const previous = device.link;
    device.info = info;
    device.link = link;
    device.state = 'connecting';
    device.ackWrittenN = 0;
    if (previous && previous !== link) await Promise.resolve(previous.disconnect()).catch(() => undefined);
    try {
      await link.onFrame((frame) => this.#receive(device, frame));
    } catch (e) {
      if (device.link === link) device.state = 'disconnected';
      throw new RelayError(`subscribing to ${info.serial} frames failed: ${errorText(e)}`);
    }
    if (device.link !== link) return info.serial;
    link.onDisconnect?.(() => this.#linkDropped(device, link));
    device.state = 'connected';
    device.connections++;
    device.connectedAt = this.#clock.now();
    this.#log('info', `${info.serial} connected (frame size ${info.f}${info.b ? `, ${info.b}` : ''}${info.fw ? ` fw ${info.fw}` : ''})`);
    if (device.ack) void this.#writeAck(device);
    this.#poll();
    this.#changed();
    return info.serial;
  }

  /** The platform tells the relay a link is gone (same as the link's onDisconnect). */
  disconnected(serial: string): void {
    const d = this.#devices.get(serial);
    if (d?.link) this.#linkDropped(d, d.link);
  }

  #linkDropped(device: Device, link: DeviceLink): void {
    if (device.link !== link || device.state === 'disconnected') return;
    device.state = 'disconnected';
    device.link = undefined;
    this.#log('info', `${device.serial} disconnected`);
    this.#changed();
  }

  #poll(): void {
    if (this.#pollTimer !== undefined || this.#o.linkPollMs === 0 || this.#closed) return;
    this.#pollTimer = this.#clock.setTimeout(() => {
      this.#pollTimer = undefined;
      let live = 0;
      for (const d of this.#devices.values()) {
        if (!d.link) continue;
        if (d.link.connected()) live++;
        else this.#linkDropped(d, d.link);
      }
      if (live > 0) this.#poll();
    }, this.#o.linkPollMs);
  }

  #receive(device: Device, frame: Uint8Array): void {
    if (this.#closed) return;
    const t = this.#totals;
    t.received++;
    device.received++;
    device.lastFrameAt = this.#clock.now();
    if (!(frame instanceof Uint8Array) || frame.length !== device.info.f || readU32BE(frame, 0) === 0) {
      t.malformed++;
      if (!device.malformedLogged) {
        device.malformedLogged = true;
        this.#log('warn', `${device.serial} sent a frame of ${frame?.length ?? '?'} bytes or with counter 0 (frame size ${device.info.f}); dropped (logged once per device)`);
      }
      return;
    }
    const counter = readU32BE(frame, 0);
    if (counter > device.maxCounter) device.maxCounter = counter;
    // Settled at the server already (its ack said so): the device sends it
    // only because it has not seen that ack yet.
    if (counter <= device.ackN) {
      t.settledSkips++;
      return;
    }
    const data = toBase64(frame);
    // The same bytes the server said it stored (a different frame under the
    // same counter still goes up: the server must see a reused counter).
    if (device.storedAbove.get(counter) === data) {
      t.settledSkips++;
      return;
    }
    const key = keyOf(device.serial, data);
    if (this.#index.has(key)) {
      t.repeats++;
      return;
    }
    if (this.#queue.size + this.#pending.length >= this.#o.maxQueueFrames) {
      t.refused++;
      if (!this.#queueFullLogged) {
        this.#queueFullLogged = true;
        this.#log('warn', `queue full (${this.#o.maxQueueFrames} frames): new frames are refused; devices keep them until there is room`);
      }
      return;
    }
    this.#queueFullLogged = false;
    const now = this.#clock.now();
    const entry: Entry = { id: this.#nextId++, serial: device.serial, data, rx: Math.max(0, Math.round(now)), counter, queuedAt: now };
    this.#index.add(key);
    this.#pending.push(entry);
    device.queued++;
    this.#scheduleAppend();
  }

  // ---- the durable queue ---------------------------------------------------

  #storeOp(op: () => Promise<void>): Promise<void> {
    this.#storeOps++;
    const run = this.#storeChain.then(op).finally(() => {
      this.#storeOps--;
      this.#maybeIdle();
    });
    this.#storeChain = run.catch(() => undefined);
    return run;
  }

  /** Group commit: frames arriving while the store is busy share the next append. */
  #scheduleAppend(): void {
    if (this.#appendQueued) return;
    this.#appendQueued = true;
    this.#storeOp(async () => {
      this.#appendQueued = false;
      const list = this.#pending;
      this.#pending = [];
      if (list.length === 0 || this.#closed) return;
      try {
        await this.#store.append(list.map((e) => ({ id: e.id, serial: e.serial, data: e.data, rx: e.rx })));
      } catch (e) {
        for (const entry of list) {
          this.#index.delete(keyOf(entry.serial, entry.data));
          const d = this.#devices.get(entry.serial);
          if (d) d.queued--;
        }
        this.#log('error', `queue store refused ${list.length} frame(s), not queued (the devices keep them): ${errorText(e)}`);
        return;
      }
      for (const entry of list) this.#queue.set(entry.id, entry);
      this.#totals.queued += list.length;
      this.#kick();
      this.#changed();
    }).catch(() => undefined);
  }

  #forget(entries: Entry[]): void {
    if (entries.length === 0) return;
    for (const e of entries) {
      if (!this.#queue.delete(e.id)) continue;
      this.#index.delete(keyOf(e.serial, e.data));
      const d = this.#devices.get(e.serial);
      if (d) d.queued--;
    }
    const ids = entries.map((e) => e.id);
    this.#storeOp(() => this.#store.remove(ids)).catch((e) =>
      // The frames stay in the store and go up again after a restart: duplicates, harmless.
      this.#log('error', `queue store could not remove ${ids.length} uploaded frame(s): ${errorText(e)}`),
    );
  }

  // ---- uploads -------------------------------------------------------------

  /** Uploads now instead of waiting for the flush delay (a backoff still applies). */
  flush(): void {
    this.#kick(true);
  }

  #kick(now = false): void {
    if (this.#closed || this.#uploading || this.#queue.size === 0) return;
    const t = this.#clock.now();
    let at: number;
    if (this.#retryAt !== null && this.#retryAt > t) at = this.#retryAt;
    else if (now || this.#queue.size >= this.#batchLimit) at = t;
    else {
      const oldest = this.#queue.values().next().value as Entry;
      at = Math.max(t, oldest.queuedAt + this.#o.flushDelayMs);
    }
    if (at <= t) {
      this.#cancelTimer();
      void this.#run();
      return;
    }
    if (this.#timer !== undefined && this.#timerAt !== undefined && this.#timerAt <= at) return;
    this.#cancelTimer();
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.#kick(this.#retryAt !== null);
    }, at - t);
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = undefined;
  }

  /** The oldest frames, grouped by device in order of first appearance. */
  #batch(): { serial: string; entries: Entry[] }[] {
    const groups = new Map<string, Entry[]>();
    let n = 0;
    for (const e of this.#queue.values()) {
      if (n >= this.#batchLimit) break;
      let g = groups.get(e.serial);
      if (!g) {
        if (groups.size >= this.#o.maxDevicesPerRequest) continue;
        g = [];
        groups.set(e.serial, g);
      }
      if (g.length >= this.#o.maxFramesPerDevice) continue;
      g.push(e);
      n++;
    }
    return [...groups].map(([serial, entries]) => ({ serial, entries }));
  }

  async #run(): Promise<void> {
    const batch = this.#batch();
    if (batch.length === 0) return;
    this.#uploading = true;
    this.#retryAt = null;
    const frames = batch.reduce((s, g) => s + g.entries.length, 0);
    const body: UplinkRequest = {
      relay: { id: this.relayId, time: Math.max(0, Math.round(this.#clock.now())) },
      devices: batch.map((g) => ({ serial: g.serial, frames: g.entries.map((e) => ({ data: e.data, rx: e.rx })) })),
    };
    this.#totals.requests++;
    let answer: Answer | undefined;
    let failure: string | undefined;
    try {
      answer = await this.#send(body);
    } catch (e) {
      failure = errorText(e);
    }
    this.#handling++;
    try {
      if (this.#closed) return;
      if (answer) this.#handle(batch, frames, answer);
      else this.#failed(null, frames, failure ?? 'request failed', undefined);
    } finally {
      this.#uploading = false;
      this.#abort = undefined;
      this.#handling--;
      this.#kick();
      this.#changed();
      this.#maybeIdle();
    }
  }

  async #send(body: UplinkRequest): Promise<Answer> {
    const abort = typeof AbortController === 'function' ? new AbortController() : undefined;
    this.#abort = abort;
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(() => {
        abort?.abort();
        reject(new RelayError(`no answer within ${this.#o.requestTimeoutMs} ms`));
      }, this.#o.requestTimeoutMs);
    });
    const exchange = (async (): Promise<Answer> => {
      const res = await this.#upload(body, abort?.signal);
      const status = typeof res?.status === 'number' ? res.status : NaN;
      let retryAfter: string | null = null;
      try {
        retryAfter = res.headers?.get('retry-after') ?? null;
      } catch {
        retryAfter = null;
      }
      let json: unknown;
      let jsonError: string | undefined;
      try {
        json = await res.json();
      } catch (e) {
        jsonError = errorText(e);
      }
      return { status, retryAfter, json, jsonError };
    })();
    // The loser of the race must not surface as an unhandled rejection.
    exchange.catch(() => undefined);
    try {
      return await Promise.race([exchange, timeout]);
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  #handle(batch: { serial: string; entries: Entry[] }[], frames: number, a: Answer): void {
    if (a.status === 200) {
      const answers = parseAnswer(a.json, batch);
      if (typeof answers === 'string') return this.#failed(200, frames, `answer not understood (${a.jsonError ?? answers}); the frames will go again`, undefined);
      this.#succeeded(batch, frames, answers);
      return;
    }
    const message = serverMessage(a);
    if (a.status === 429) {
      const wait = parseRetryAfter(a.retryAfter, this.#clock.now());
      return this.#failed(429, frames, message, wait === undefined ? undefined : Math.min(wait, this.#o.maxRetryAfterMs));
    }
    if (a.status === 400 || a.status === 413) {
      // The request itself is wrong: retrying it as is would fail forever.
      this.#tooBadToSend(batch, frames, a.status, message);
      return;
    }
    this.#failed(Number.isFinite(a.status) ? a.status : null, frames, message, undefined);
  }

  /**
   * 400 (a bug: the server names the bad frame by its path) or 413 (too
   * large). Drop the frame the server names; otherwise halve the batch, and
   * drop a single frame the server still refuses. Every 400/413 either drops
   * a frame or halves the batch, so this ends.
   */
  #tooBadToSend(batch: { serial: string; entries: Entry[] }[], frames: number, status: number, message: string): void {
    this.#totals.failedRequests++;
    this.#lastUpload = { at: this.#clock.now(), ok: false, status, frames, message };
    const m = status === 400 ? FRAME_PATH.exec(message) : null;
    const named = m ? batch[Number(m[1])]?.entries[Number(m[2])] : undefined;
    const only = frames === 1 ? batch[0]!.entries[0] : undefined;
    const bad = named ?? only;
    if (bad) {
      this.#totals.dropped++;
      this.#log('error', `server refused frame ${bad.counter} of ${bad.serial} with ${status} (${message}); dropped it (a relay or server bug: report it)`);
      this.#forget([bad]);
      return;
    }
    this.#batchLimit = Math.max(1, Math.floor(frames / 2));
    if (status === 413) {
      this.#ceiling = Math.min(this.#ceiling, this.#batchLimit);
      this.#ceilingUntil = this.#clock.now() + CEILING_MS;
    }
    this.#log('warn', `server refused a request of ${frames} frames with ${status} (${message}); retrying in requests of at most ${this.#batchLimit}`);
  }

  #failed(status: number | null, frames: number, message: string, retryAfterMs: number | undefined): void {
    this.#failures++;
    this.#totals.failedRequests++;
    const now = this.#clock.now();
    let wait: number;
    if (retryAfterMs !== undefined) {
      // Honour the server, with up to 10% more so relays told the same time spread out.
      wait = retryAfterMs + Math.floor(this.#random() * Math.min(1000, retryAfterMs * 0.1));
    } else {
      wait = backoffDelay(this.#failures, this.#o.backoffBaseMs, this.#o.backoffCapMs, this.#random);
    }
    this.#retryAt = now + wait;
    this.#lastUpload = { at: now, ok: false, status, frames, message };
    this.#log('warn', `upload of ${frames} frame(s) failed (${status === null ? 'no answer' : status}: ${message}); retry ${this.#failures} in ${(wait / 1000).toFixed(1)} s`);
  }

  #succeeded(batch: { serial: string; entries: Entry[] }[], frames: number, answers: (DeviceAnswer | undefined)[]): void {
    const now = this.#clock.now();
    this.#failures = 0;
    this.#retryAt = null;
    if (now >= this.#ceilingUntil) this.#ceiling = Infinity;
    this.#batchLimit = Math.min(this.#o.maxFramesPerRequest, this.#ceiling, this.#batchLimit * 2);
    const done: Entry[] = [];
    let kept = 0;
    let accepted = 0;
    let duplicates = 0;
    let rejected = 0;
    batch.forEach((g, i) => {
      const ans = answers[i];
      const d = this.#devices.get(g.serial);
      if (!ans) {
        kept += g.entries.length;
        return;
      }
      g.entries.forEach((e, index) => {
        const reason = ans.rejected.get(index);
        if (reason !== undefined) {
          this.#log('warn', `server rejected frame ${e.counter} of ${e.serial}: ${reason}; dropped from the queue`);
          rejected++;
          if (d) d.rejected++;
        } else if (d) rememberStored(d, e.counter, e.data);
        done.push(e);
      });
      accepted += ans.accepted;
      duplicates += ans.duplicates;
      if (d) {
        d.accepted += ans.accepted;
        d.duplicates += ans.duplicates;
      }
      if (ans.ack && d) this.#takeAck(d, ans.ack, ans.ackN, g.entries.reduce((m, e) => Math.max(m, e.counter), 0));
    });
    this.#forget(done);
    const t = this.#totals;
    t.accepted += accepted;
    t.duplicates += duplicates;
    t.rejected += rejected;
    this.#lastSuccessAt = now;
    const keptNote = kept > 0 ? `, ${kept} kept (the answer did not cover their device)` : '';
    this.#lastUpload = {
      at: now,
      ok: true,
      status: 200,
      frames,
      message: `${accepted} new, ${duplicates} duplicate${rejected > 0 ? `, ${rejected} rejected` : ''}${keptNote}`,
    };
    if (kept > 0) this.#log('warn', `server answer left out ${kept} frame(s); they stay queued`);
  }

  // ---- acks ----------------------------------------------------------------

  /** `sent`: the highest counter of this device in the request the ack answers. */
  #takeAck(d: Device, ack: Uint8Array, n: number, sent: number): void {
    // Acks only rise; an older one (answers can cross) is not kept.
    if (n >= d.ackN) {
      d.ack = ack;
      d.ackN = n;
      for (const c of d.storedAbove.keys()) if (c <= n) d.storedAbove.delete(c);
    }
    if (d.ackN >= sent) {
      d.caughtUpAt = this.#clock.now();
      d.stallWaitMs = 0;
    }
    d.ackPending = true;
    void this.#writeAck(d);
    this.#checkStall(d);
  }

  /**
   * The firmware resends a frame the radio lost only when its notification
   * pump goes idle (docs/firmware.md, "Pacing"), and every resend slows the
   * pump down for the rest of the connection. A device that seals as fast as
   * its slowed pump sends never goes idle: its ack lags behind what it sends,
   * its outbox overflows, and from then on it drops and reports about half of
   * its frames (docs/relay.md, "Stalled devices"). A new connection restarts
   * the pump from the oldest frame at full speed, so when the server has not
   * caught up with what the device sends for `stallMs`, and the relay itself
   * holds nothing the server lacks, the relay drops the link and lets the
   * platform reconnect.
   */
  #checkStall(d: Device): void {
    const stallMs = this.#o.stallMs;
    if (stallMs === 0 || d.state !== 'connected' || !d.link) return;
    const now = this.#clock.now();
    const wait = d.stallWaitMs || stallMs;
    const since = Math.max(d.caughtUpAt, d.connectedAt ?? 0);
    if (now - since < wait) return;
    for (const e of this.#queue.values()) if (e.serial === d.serial && e.counter <= d.ackN + 1) return;
    for (const e of this.#pending) if (e.serial === d.serial && e.counter <= d.ackN + 1) return;
    d.stallWaitMs = Math.min(wait * 2, stallMs * 16);
    d.stalls++;
    this.#totals.stalls++;
    const link = d.link;
    this.#log(
      'warn',
      `${d.serial}: the server has had everything up to ${d.ackN} only, for ${Math.round((now - since) / 1000)} s, while the device sends up to ${d.maxCounter}; reconnecting so it resends from its oldest frame`,
    );
    this.#linkDropped(d, link);
    void Promise.resolve()
      .then(() => link.disconnect())
      .catch(() => undefined);
  }

  /**
   * Writes the device's latest ack when it is connected; otherwise it waits
   * (ackPending) for the next connection. Every upload answer is written,
   * even with N unchanged: a device that has sent everything reads "N did
   * not move" as "resend" (docs/firmware.md, "Pacing").
   */
  async #writeAck(d: Device): Promise<void> {
    const link = d.link;
    const ack = d.ack;
    if (!ack || !link || d.state === 'disconnected') return;
    if (!link.connected()) {
      this.#linkDropped(d, link);
      return;
    }
    const n = d.ackN;
    d.ackPending = false;
    try {
      await link.writeAck(ack);
      d.acksWritten++;
      d.ackWrittenN = Math.max(d.ackWrittenN, n);
      this.#totals.acksWritten++;
    } catch (e) {
      d.ackPending = true;
      this.#log('warn', `writing the ack (N=${n}) to ${d.serial} failed: ${errorText(e)}; it is written again on the next connection`);
    }
  }

  // ---- status and lifecycle ------------------------------------------------

  status(): RelayStatus {
    const devices: DeviceStatus[] = [];
    for (const d of this.#devices.values()) {
      if (d.link && d.state !== 'disconnected' && !d.link.connected()) this.#linkDropped(d, d.link);
      devices.push({
        serial: d.serial,
        state: d.state,
        frameSize: d.info.f,
        board: d.info.b,
        firmware: d.info.fw,
        connections: d.connections,
        connectedAt: d.connectedAt,
        lastFrameAt: d.lastFrameAt,
        received: d.received,
        queued: d.queued,
        accepted: d.accepted,
        duplicates: d.duplicates,
        rejected: d.rejected,
        ackN: d.ackN,
        ackWrittenN: d.ackWrittenN,
        acksWritten: d.acksWritten,
        ackPending: d.ackPending,
        maxCounter: d.maxCounter,
        stalls: d.stalls,
      });
    }
    return {
      relayId: this.relayId,
      queue: this.#queue.size + this.#pending.length,
      uploading: this.#uploading,
      failures: this.#failures,
      retryAt: this.#retryAt,
      lastUpload: this.#lastUpload ? { ...this.#lastUpload } : null,
      lastSuccessAt: this.#lastSuccessAt,
      devices,
      totals: { ...this.#totals },
    };
  }

  /** True when no store write or answer handling is under way (a request may still be on the network). */
  isIdle(): boolean {
    return this.#storeOps === 0 && this.#handling === 0 && this.#pending.length === 0;
  }

  /** Resolves when isIdle(): every frame received so far is durable and every answer received is handled. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #maybeIdle(): void {
    if (!this.isIdle() || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #changed(): void {
    try {
      this.#onChange?.();
    } catch (e) {
      this.#log('error', `status listener failed: ${errorText(e)}`);
    }
  }

  /**
   * Stops: abandons a request in flight (its frames stay queued), waits for
   * store writes to finish and disconnects every link. The store can be
   * closed afterwards.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelTimer();
    if (this.#pollTimer !== undefined) this.#clock.clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    this.#abort?.abort();
    const pending = this.#pending;
    this.#pending = [];
    if (pending.length > 0) {
      await this.#storeOp(() => this.#store.append(pending.map((e) => ({ id: e.id, serial: e.serial, data: e.data, rx: e.rx })))).catch((e) =>
        this.#log('error', `queue store refused ${pending.length} frame(s) at close: ${errorText(e)}`),
      );
    }
    await this.#storeChain;
    for (const d of this.#devices.values()) {
      const link = d.link;
      d.link = undefined;
      d.state = 'disconnected';
      if (link) await Promise.resolve(link.disconnect()).catch(() => undefined);
    }
    this.#maybeIdle();
  }
}

/** Most counters above N remembered per device (a few outboxes' worth). */
const MAX_STORED_ABOVE = 4096;

function rememberStored(d: Device, counter: number, data: string): void {
  if (counter <= d.ackN) return;
  d.storedAbove.delete(counter);
  d.storedAbove.set(counter, data);
  if (d.storedAbove.size > MAX_STORED_ABOVE) d.storedAbove.delete(d.storedAbove.keys().next().value as number);
}

/**
 * Exponential backoff with "equal jitter": the n-th consecutive failure waits
 * between half and all of min(cap, base * 2^(n-1)), so retries never bunch at
 * zero yet spread out (AWS Architecture Blog, "Exponential Backoff And Jitter").
 */
export function backoffDelay(failures: number, baseMs: number, capMs: number, random: () => number): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
  return Math.round(exp / 2 + random() * (exp / 2));
}

function serverMessage(a: Answer): string {
  const j = a.json as { message?: unknown; error?: unknown } | null | undefined;
  if (j && typeof j === 'object' && typeof j.message === 'string') return clip(j.message);
  if (j && typeof j === 'object' && typeof j.error === 'string') return clip(j.error);
  return a.jsonError !== undefined ? `HTTP ${a.status}, body not JSON` : `HTTP ${a.status}`;
}

/**
 * Reads a 200 answer. A device's entry is used only if it is well formed;
 * a device without one keeps its frames queued. An answer that is not an
 * object with a devices array is a string (the reason).
 */
function parseAnswer(json: unknown, batch: { serial: string; entries: Entry[] }[]): (DeviceAnswer | undefined)[] | string {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return 'not a JSON object';
  const list = (json as { devices?: unknown }).devices;
  if (!Array.isArray(list)) return 'no devices array';
  const bySerial = new Map<string, unknown>();
  for (const item of list.slice(0, 10_000)) {
    const s = (item as { serial?: unknown } | null)?.serial;
    if (typeof s === 'string' && !bySerial.has(s)) bySerial.set(s, item);
  }
  return batch.map((g, i) => {
    const same = (list[i] as { serial?: unknown } | null)?.serial === g.serial ? list[i] : undefined;
    const item = (same ?? bySerial.get(g.serial)) as Record<string, unknown> | undefined;
    if (!item || typeof item !== 'object') return undefined;
    if (!Array.isArray(item.rejected)) return undefined;
    const rejected = new Map<number, string>();
    for (const r of item.rejected.slice(0, 10_000) as { index?: unknown; reason?: unknown }[]) {
      if (r === null || typeof r !== 'object') continue;
      if (typeof r.index !== 'number' || !Number.isInteger(r.index) || r.index < 0 || r.index >= g.entries.length) continue;
      rejected.set(r.index, clip(typeof r.reason === 'string' ? r.reason : 'no reason given'));
    }
    let ack: Uint8Array | undefined;
    let ackN = 0;
    if (typeof item.ack === 'string' && item.ack.length <= 24) {
      const bytes = fromBase64(item.ack);
      if (bytes && bytes.length === ACK_LEN) {
        const n = readU32BE(bytes, 0);
        if (n >= 1 && n <= MAX_COUNTER) {
          ack = bytes;
          ackN = n;
        }
      }
    }
    return { ack, ackN, accepted: count(item.accepted), duplicates: count(item.duplicates), rejected };
  });
}

function defaultLog(level: LogLevel, message: string): void {
  const line = `relay: ${message}`;
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

// ---- the fetch uploader ------------------------------------------------------

export interface FetchUploaderOptions {
  /** Defaults to globalThis.fetch. */
  fetch?: typeof fetch;
  /** Answers longer than this are not read (their json() rejects). Default 1 MiB. */
  maxResponseBytes?: number;
  headers?: Record<string, string>;
  /** Sent as X-Sealpost-Relay-Key, for a server that lists relay keys (docs/api.md, "Relay keys"). */
  relayKey?: string;
}

/**
 * POSTs to `${base}/v1/uplink`. `base` may be a function so the server can
 * move (the chaos test restarts it on a new port).
 */
export function fetchUploader(base: string | (() => string), options: FetchUploaderOptions = {}): Uploader {
  const max = options.maxResponseBytes ?? 1_048_576;
  return async (body, signal) => {
    const f = options.fetch ?? globalThis.fetch;
    const root = (typeof base === 'function' ? base() : base).replace(/\/+$/, '');
    const res = await f(`${root}/v1/uplink`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...options.headers, ...(options.relayKey !== undefined ? { 'x-sealpost-relay-key': options.relayKey } : {}) },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    let text: string | undefined;
    let problem: string | undefined;
    try {
      text = await readLimited(res, max);
    } catch (e) {
      problem = errorText(e);
    }
    return {
      status: res.status,
      headers: res.headers,
      json: async () => {
        if (text === undefined) throw new RelayError(problem ?? 'no body');
        return JSON.parse(text) as unknown;
      },
    };
  };
}

async function readLimited(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new RelayError(`answer of ${declared} bytes is larger than ${max}`);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw new RelayError(`answer larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return new TextDecoder().decode(all);
}
