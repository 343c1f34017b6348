// What the relay core and its platforms agree on (docs/relay.md): the clock,
// device links, the durable queue store and the uploader it is handed
// (style.md rule 1), its options, the status it reports and its error type.
// Types only, apart from RelayError; no imports.

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
  /**
   * The downlink: writes these to the ack characteristic in order, each with
   * response and each only after the previous one was acknowledged; each is
   * 1..20 bytes (relay/downlink.ts, MAX_DOWNLINK_WRITE). Resolves once the
   * last is acknowledged; rejects at the first that fails (the rest are not
   * written). The core hands over one list at a time per link, the next only
   * after this one settled, so a link never merges, reorders or drops writes.
   * Today a list is one message, the 12-byte ack.
   */
  write(writes: readonly Uint8Array[]): void | Promise<void>;
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

/** One device as Relay.status() reports it (not firmware/device.ts DeviceStatus, the device's own view). */
export interface RelayDeviceStatus {
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
  devices: RelayDeviceStatus[];
  totals: RelayTotals;
}

export class RelayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RelayError';
  }
}
