// The one storage interface both backends implement (docs/server.md,
// "Storage"). Everything the ingest path writes goes through `Tx`, inside one
// transaction per request; the algorithms that decide *what* to write (settled
// watermark, gaps, time mapping, registry import) live once, in
// server/ingest/ and server/registry.ts, and only the SQL differs per backend.
import type { EpochStore } from './epochs.js';

export type DeviceStatus = 'active' | 'revoked';
/**
 * What a time rests on (docs/server.md, "Time clamp"): 'relay' when the boot
 * start estimate came from a relay's receive time inside the clamp window,
 * 'server' when that claim was clamped and only the server's clock remains.
 */
export type TimeSource = 'relay' | 'server';
export type GapKind = 'outbox-overflow' | 'power-loss';

/** A registry row plus the per-device ingest state kept next to it. */
export interface DeviceRow {
  serial: string;
  /** HPKE enc: public, opens nothing without the ingest private key. */
  enc: Uint8Array;
  ingestKeyId: string;
  board: string;
  frameSize: number;
  batch: string;
  status: DeviceStatus;
  registeredAt: number;
  revokedAt: number | null;
  /** Frames stored. */
  frames: number;
  /** Server time (ms) of the last authenticated frame, or null. */
  lastSeen: number | null;
  /** The ack watermark: every counter 1..settled is settled (docs/protocol.md section 6). */
  settled: number;
  /** Highest stored counter (a hint: nothing is stored above it). */
  maxCounter: number;
  /** Highest counter of a boot anchor (reason 0); every counter below it is settled. */
  bootFloor: number;
  /** Highest counter any gap row ever covered (a hint: no gap row reaches above it). */
  gapHi: number;
  /** Latest battery reading (%), by counter, and the counter it came from. */
  battery: number | null;
  batteryCounter: number;
  /**
   * Seal key and nonce salt, AES-256-GCM under the registry key-encryption
   * key (docs/server.md, "Wrapped device keys"); null until derived once.
   */
  keysWrapped: Uint8Array | null;
}

/**
 * What a request's frames are checked, opened and answered with (the device's
 * keys, frame size, status and watermark), read before any transaction so a
 * request whose frames all fail takes no lock (server/ingest/uplink.ts).
 */
export type DeviceKeyRow = Pick<DeviceRow, 'serial' | 'enc' | 'ingestKeyId' | 'frameSize' | 'status' | 'settled' | 'keysWrapped'>;

/** What GET /v1/devices and `registry list` show. */
export interface DeviceSummary {
  serial: string;
  board: string;
  batch: string;
  status: DeviceStatus;
  frameSize: number;
  ingestKeyId: string;
  registeredAt: number;
  frames: number;
  lastSeen: number | null;
  settled: number;
  battery: number | null;
  /** Visible gap ranges and the counters they hold. */
  gaps: number;
  lost: number;
  /** Key renewal: the epoch the device is on (0: its factory key) and its renewal state (GET /v1/devices; listed pages only, else 0 and none). */
  epoch: number;
  renewal: 'none' | 'pending' | 'committed' | 'frozen';
}

export interface NewFrame {
  serial: string;
  counter: number;
  /** The sealed frame exactly as received (not secret). */
  frame: Uint8Array;
  /** Plaintext byte 0 (frame type). */
  type: number;
  /** The decoded content as JSON. */
  content: string;
  relay: string;
  relayTime: number;
  /** Relay receive time (ms, the relay's clock). */
  rx: number;
  /** Server receive time (ms). */
  received: number;
}

export type StoredFrame = NewFrame;

export interface Anchor {
  counter: number;
  boot: number;
  uptime: number;
  reason: number;
}

export interface NewReading {
  serial: string;
  counter: number;
  /** Position of the reading within its sample record. */
  idx: number;
  channel: number;
  name: string;
  unit: string;
  value: number | null;
  boot8: number;
  uptime24: number;
  /** The relay rx clamped into [server receive time - max_relay_delay, server receive time]: an upper bound of its wall time. */
  bound: number;
  boot: number | null;
  uptime: number | null;
  time: number | null;
  /** Null while time is null. */
  timeSource: TimeSource | null;
}

export interface StoredReading {
  serial: string;
  counter: number;
  idx: number;
  channel: number;
  name: string;
  unit: string;
  value: number | null;
  boot: number | null;
  uptime: number | null;
  time: number | null;
  /** Whether time rests on a relay's receive time or only on the server's clock; null while time is null. */
  timeSource: TimeSource | null;
}

/** A pending sample frame (its boot had no anchor when it arrived). */
export interface PendingSample {
  counter: number;
  uptime24: number;
  bound: number;
  /** The relay's claimed receive time of the frame (bound differs from it when it was clamped). */
  rx: number;
}

export interface ResolvedSample {
  counter: number;
  boot: number;
  uptime: number;
  time: number;
  timeSource: TimeSource;
}

/** Inclusive range of counters. */
export interface Range {
  first: number;
  last: number;
}

export interface GapRow {
  id: number;
  serial: string;
  first: number;
  count: number;
  kind: GapKind;
  detectedAt: number;
}

export interface NewGap {
  serial: string;
  first: number;
  count: number;
  kind: GapKind;
  detectedAt: number;
}

export interface BatchRow {
  batch: string;
  factoryKeyId: string;
  ingestKeyId: string;
  board: string;
  frameSize: number;
  created: string;
  manifestSha256: string;
  devices: number;
  importedAt: number;
}

export interface NewDevice {
  serial: string;
  enc: Uint8Array;
  ingestKeyId: string;
  board: string;
  frameSize: number;
  batch: string;
  registeredAt: number;
  /** Wrapped at import when the importer holds the ingest private key, else null (wrapped at server start). */
  keysWrapped?: Uint8Array | null;
}

/** A row whose keys are still to be wrapped. */
export interface UnwrappedDevice {
  serial: string;
  enc: Uint8Array;
  ingestKeyId: string;
}

/** A boot's start estimate and what it rests on. */
export interface BootStart {
  start: number;
  source: TimeSource;
}

/** An API token as stored (server/auth/tokens.ts): never the token itself, only its SHA-256. */
export type TokenRole = 'read' | 'admin';

export interface NewToken {
  name: string;
  role: TokenRole;
  /** SHA-256 of the token (32 bytes). */
  hash: Uint8Array;
  createdAt: number;
}

/** What `token list` shows: no token, no hash. */
export interface TokenInfo {
  name: string;
  role: TokenRole;
  createdAt: number;
  lastUsed: number | null;
}

/** Where a page of readings ends: the last (counter, idx) it holds (docs/api.md, "Paging"). */
export interface ReadingKey {
  counter: number;
  idx: number;
}

/** Where a page of gaps ends: gaps are ordered by (first, id). */
export interface GapKey {
  first: number;
  id: number;
}

export interface ReadingsQuery {
  from?: number;
  to?: number;
  /** Only readings after this position, by (counter, idx). */
  after?: ReadingKey;
  limit: number;
}

export interface DevicesQuery {
  /** Only devices whose serial sorts after this one. */
  after?: string;
  limit: number;
}

export interface GapsQuery {
  after?: GapKey;
  limit: number;
}

/** One page of the read API, asked of the storage so the backend can encode it off the ingest path. */
export type PageRequest =
  | { kind: 'readings'; serial: string; query: ReadingsQuery; format: 'json' | 'csv' }
  | { kind: 'devices'; query: DevicesQuery }
  | { kind: 'gaps'; serial: string; query: GapsQuery };

/**
 * A page encoded for the wire (server/reads/wire.ts): JSON items joined by commas
 * (no brackets), or CSV lines; `next` is the position of its last item when
 * more follow, else null.
 */
export interface EncodedPage {
  body: Uint8Array;
  count: number;
  next: ReadingKey | GapKey | string | null;
}

/** One batch of retention (server/retention.ts, docs/server.md "Retention"). */
export interface PruneRequest {
  /** The batch covers the devices whose serial sorts after this one ('' from the first). */
  after: string;
  /** How many devices, by serial, the batch covers. */
  devices: number;
  /** Readings whose time (ms since 1970) is before this are deleted; readings without a time are kept. */
  before: number;
  /** The most readings the batch deletes. */
  limit: number;
}

export interface PruneResult {
  /** Readings deleted. */
  deleted: number;
  /** The last serial the batch covered; null when no device sorts after `after` (the pass is over). */
  through: string | null;
}

/** Writes and locked reads inside one transaction. */
export interface Tx {
  /** Locks and returns the rows of these serials (PostgreSQL: FOR UPDATE, in serial order). */
  lockDevices(serials: string[]): Promise<DeviceRow[]>;
  /** Inserts idempotently; returns, per row, whether it was new. */
  insertFrames(rows: NewFrame[]): Promise<boolean[]>;
  frameBytes(serial: string, counters: number[]): Promise<Map<number, Uint8Array>>;
  insertAnchors(serial: string, rows: Anchor[]): Promise<void>;
  /** Up to `limit` anchors with counter < below, newest first. */
  anchorsBefore(serial: string, below: number, limit: number): Promise<Anchor[]>;
  /** The newest anchor with counter < below and boot mod 256 = boot8. */
  anchorFor(serial: string, below: number, boot8: number): Promise<Anchor | undefined>;
  pendingSamples(serial: string, boot8: number, above: number): Promise<PendingSample[]>;
  resolveSamples(serial: string, rows: ResolvedSample[]): Promise<void>;
  bootStarts(serial: string, boots: number[]): Promise<Map<number, BootStart>>;
  saveBoot(serial: string, boot: number, start: BootStart, anchorCounter: number, isNew: boolean): Promise<void>;
  /** Sets time = start + uptime * 1000 and time_source on every resolved reading of the boot. */
  retimeBoot(serial: string, boot: number, start: BootStart): Promise<void>;
  insertReadings(rows: NewReading[]): Promise<void>;
  /** Islands of stored counters within [lo, hi], ascending. */
  storedRanges(serial: string, lo: number, hi: number): Promise<Range[]>;
  /** Gap rows overlapping [lo, hi], ascending by first. */
  gapsOverlapping(serial: string, lo: number, hi: number): Promise<GapRow[]>;
  deleteGaps(ids: number[]): Promise<void>;
  insertGaps(rows: NewGap[]): Promise<void>;
  updateDevice(row: DeviceRow): Promise<void>;

  // registry
  batch(batch: string): Promise<BatchRow | undefined>;
  devicesBySerial(serials: string[]): Promise<DeviceRow[]>;
  insertBatch(row: BatchRow): Promise<void>;
  insertDevices(rows: NewDevice[]): Promise<void>;
  setStatus(serial: string, status: DeviceStatus, at: number): Promise<void>;
  /** Up to `limit` rows of these ingest keys whose keys_wrapped is NULL and serial > after, by serial. */
  unwrappedDevices(ingestKeyIds: string[], after: string, limit: number): Promise<UnwrappedDevice[]>;
  /** Sets keys_wrapped where it is still NULL (a row wrapped meanwhile keeps its value). */
  setKeysWrapped(rows: { serial: string; keysWrapped: Uint8Array }[]): Promise<void>;
}

/**
 * What an uplink request's transaction will touch, known before it starts
 * (server/ingest/uplink.ts): the serials it names and, per device, its
 * authenticated frames' counters and anchors. PostgreSQL reads the state
 * settling needs for them in one round trip (server/storage/postgres-ingest.ts).
 */
export interface IngestPlan {
  serials: string[];
  frames: { serial: string; counter: number; anchorBoot: number | undefined }[];
}

export interface Storage {
  readonly backend: 'sqlite' | 'postgres';
  /** Key renewal's per-device epoch rows (migration 5; server/storage/epochs.ts). */
  readonly epochs: EpochStore;
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * An uplink request's transaction: like `transaction`, for a `fn` that
   * starts with `tx.lockDevices` and changes nothing it is given, so it may
   * run more than once. PostgreSQL runs it first on state read in one round
   * trip and writes in one more, and runs it again under the row locks when
   * that state changed meanwhile (docs/server.md, "One round trip per write").
   */
  ingestTransaction<T>(plan: IngestPlan, fn: (tx: Tx) => Promise<T>): Promise<T>;
  device(serial: string): Promise<DeviceRow | undefined>;
  /**
   * The key rows of these distinct serials (those registered), committed
   * state and no lock, outside any transaction; on the ingest side (never
   * behind the read API). In no particular order.
   */
  deviceKeyRows(serials: string[]): Promise<DeviceKeyRow[]>;
  /**
   * Fills the node's key directory (server/storage/key-directory.ts) from the
   * registry, up to its capacity; returns the rows held. Server start only.
   */
  loadKeyDirectory?(): Promise<number>;
  /** All devices by serial, or the one with this serial. */
  devices(serial?: string): Promise<DeviceSummary[]>;
  /** Up to `limit` devices by serial, after `after`. */
  devicesPage(query: DevicesQuery): Promise<DeviceSummary[]>;
  /** Up to `limit` readings by (counter, idx), after `after`, with from <= time <= to when given. */
  readings(serial: string, query: ReadingsQuery): Promise<StoredReading[]>;
  /** The device's gaps by (first, id); all of them without a query. */
  gaps(serial: string, query?: GapsQuery): Promise<GapRow[]>;
  /**
   * One page of the read API, encoded (server/reads/wire.ts). SQLite files run it
   * on the read worker, PostgreSQL on the read pool: never on the ingest path.
   */
  readPage(request: PageRequest): Promise<EncodedPage>;
  frames(serial: string): Promise<StoredFrame[]>;
  batches(): Promise<BatchRow[]>;
  // API tokens (server/auth/tokens.ts). Writes outside `transaction` are single statements.
  /** Inserts a token; false when the name is taken (nothing changed). */
  insertToken(row: NewToken): Promise<boolean>;
  /** Every token by name, without hashes. */
  tokens(): Promise<TokenInfo[]>;
  /** The token whose SHA-256 is `hash`. */
  tokenByHash(hash: Uint8Array): Promise<TokenInfo | undefined>;
  /** Deletes the token; false when no token has that name. */
  deleteToken(name: string): Promise<boolean>;
  /** Sets last_used (only ever later: a slower node never moves it back). */
  touchToken(name: string, at: number): Promise<void>;
  /**
   * Retention: deletes up to `limit` readings older than `before` of the
   * `devices` devices after `after`, as one short transaction that never
   * waits for a row an upload holds. Frames, anchors, boots, gaps and device
   * rows are never touched: replay detection, the watermark and gaps need them.
   */
  pruneReadings(request: PruneRequest): Promise<PruneResult>;
  /** Applied migration versions, ascending. */
  migrations(): Promise<number[]>;
  close(): Promise<void>;
}
