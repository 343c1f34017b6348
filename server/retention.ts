// Retention: the `retention` config section and the background task that
// deletes readings older than `readings_days`, a small batch at a time
// (docs/server.md, "Retention"). Frames are the device's record for replay
// detection ("counter reused with different content" compares their bytes)
// and the watermark and gaps are computed from them, so only readings go;
// frames, anchors, boots, gaps and device rows stay. The tables are hash
// partitioned by serial (migration 3), not by time, so there is no partition
// to drop: each batch is one short DELETE of at most `batch_rows` readings of
// `batch_devices` devices, then a pause of `pause_ms`, so an upload never
// waits behind retention for more than one batch.
import { ConfigError } from './errors.js';
import type { Storage } from './storage/types.js';

export interface RetentionConfig {
  /** Readings whose time is more than this many days before now are deleted. */
  readingsDays: number;
  /** The most readings one batch deletes. */
  batchRows: number;
  /** Devices (by serial) one batch covers. */
  batchDevices: number;
  /** Pause between two batches of a pass, in ms. */
  pauseMs: number;
  /** Seconds from the end of one pass to the start of the next. */
  everyS: number;
}

export const RETENTION_DEFAULTS: Omit<RetentionConfig, 'readingsDays'> = { batchRows: 200, batchDevices: 50, pauseMs: 10, everyS: 3_600 };

const EXAMPLE = '{"readings_days": 90}';
const SETTINGS: Record<string, [keyof RetentionConfig, number, number, string]> = {
  readings_days: ['readingsDays', 1, 36_500, 'days'],
  batch_rows: ['batchRows', 1, 100_000, 'readings'],
  batch_devices: ['batchDevices', 1, 100_000, 'devices'],
  pause_ms: ['pauseMs', 0, 60_000, 'ms'],
  every_s: ['everyS', 1, 604_800, 'seconds'],
};

/** The `retention` section: absent, null or false is off; else {"readings_days": N, ...}. */
export function checkRetentionConfig(value: unknown, where: string): RetentionConfig | null {
  if (value === null || value === false) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${where} must be an object such as ${EXAMPLE} (delete readings older than 90 days), or false to keep every reading`);
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(k in SETTINGS)) throw new ConfigError(`${where} has an unknown setting "${k}" (known: ${Object.keys(SETTINGS).join(', ')})`);
  }
  if (o.readings_days === undefined) throw new ConfigError(`${where} needs "readings_days", how many days of readings to keep, e.g. ${EXAMPLE}`);
  const c = { ...RETENTION_DEFAULTS, readingsDays: 0 } as RetentionConfig;
  for (const [name, [key, min, max, unit]] of Object.entries(SETTINGS)) {
    const v = o[name];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ConfigError(`${where}.${name} must be a whole number of ${unit} from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
    c[key] = v;
  }
  return c;
}

export interface PassReport {
  /** Readings older than this (ms since 1970) were deleted. */
  before: number;
  deleted: number;
  batches: number;
  /** Wall time of the pass, pauses included. */
  ms: number;
  /** The longest single batch: what an upload could have waited behind. */
  longestBatchMs: number;
}

interface Log {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

const DAY_MS = 86_400_000;

export class Retention {
  private timer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;

  constructor(
    private readonly storage: Storage,
    private readonly config: RetentionConfig,
    private readonly clock: () => number,
    private readonly log: Log,
  ) {}

  /** Starts the first pass now and the next ones `every_s` after each ends. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops after the batch in flight, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.wake?.();
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.pass()
        .then((r) => this.log.info({ ...r, readingsDays: this.config.readingsDays }, 'retention pass finished'))
        .catch((e: unknown) => this.log.warn({ err: e }, 'retention pass failed; the next pass starts at the usual time'))
        .finally(() => {
          this.running = null;
          this.schedule(this.config.everyS * 1000);
        });
    }, ms);
    this.timer.unref();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  /** One pass over every device; stops early (with what it did) when stop() is called. */
  async pass(): Promise<PassReport> {
    const { batchRows, batchDevices, pauseMs, readingsDays } = this.config;
    const start = performance.now();
    const report: PassReport = { before: this.clock() - readingsDays * DAY_MS, deleted: 0, batches: 0, ms: 0, longestBatchMs: 0 };
    let after = '';
    while (!this.stopped) {
      const t = performance.now();
      const r = await this.storage.pruneReadings({ after, devices: batchDevices, before: report.before, limit: batchRows });
      report.longestBatchMs = Math.max(report.longestBatchMs, performance.now() - t);
      report.batches++;
      report.deleted += r.deleted;
      if (r.through === null) break;
      // A full batch may have left more of these devices' old readings: the same devices again.
      if (r.deleted < batchRows) after = r.through;
      if (pauseMs > 0 && !this.stopped) await this.pause(pauseMs);
    }
    report.ms = Math.round(performance.now() - start);
    report.longestBatchMs = Math.round(report.longestBatchMs * 10) / 10;
    return report;
  }
}
