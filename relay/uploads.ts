// The relay's uploads (docs/relay.md, "What the core does"): when a request
// goes (flush delay, backoff, Retry-After), which frames it carries, and what
// each answer does to the queue, the devices and the request size.
import type { RelayClock, RelayLog, RelayStatus, RelayTotals, UplinkRequest, Uploader, UploadResult } from './contracts.js';
import { parseAnswer, parseRetryAfter, sendRequest, serverMessage, type Answer, type DeviceAnswer } from './answer.js';
import type { Acks } from './acks.js';
import { rememberStored, type Device } from './devices.js';
import { errorText } from './log.js';
import type { Entry, FrameQueue } from './queue.js';
import type { RelaySettings } from './settings.js';

/** The server names a bad frame by its path in a 400 message (server/schemas.ts formatSchemaError). */
const FRAME_PATH = /devices\/(\d+)\/frames\/(\d+)/;
/** How long a 413 keeps requests below the size that got it. */
const CEILING_MS = 600_000;

/** The frames of one device in one request. */
type Group = { serial: string; entries: Entry[] };

export interface UploadDeps {
  relayId: string;
  clock: RelayClock;
  upload: Uploader;
  settings: RelaySettings;
  queue: FrameQueue;
  devices: ReadonlyMap<string, Device>;
  acks: Acks;
  totals: RelayTotals;
  log: RelayLog;
  random: () => number;
  /** An answer (or a failure) has been handled. */
  answered(): void;
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

export class Uploads {
  readonly #d: UploadDeps;
  #uploading = false;
  #handling = 0;
  #abort: AbortController | undefined;
  #timer: unknown;
  #timerAt: number | undefined;
  #failures = 0;
  #retryAt: number | null = null;
  #batchLimit: number;
  /** After a 413: requests stay at half the refused size until #ceilingUntil. */
  #ceiling = Infinity;
  #ceilingUntil = 0;
  #lastUpload: UploadResult | null = null;
  #lastSuccessAt: number | null = null;
  #closed = false;

  constructor(deps: UploadDeps) {
    this.#d = deps;
    this.#batchLimit = deps.settings.maxFramesPerRequest;
  }

  /** True while an answer is being handled. */
  get handling(): boolean {
    return this.#handling > 0;
  }

  status(): Pick<RelayStatus, 'uploading' | 'failures' | 'retryAt' | 'lastUpload' | 'lastSuccessAt'> {
    return {
      uploading: this.#uploading,
      failures: this.#failures,
      retryAt: this.#retryAt,
      lastUpload: this.#lastUpload ? { ...this.#lastUpload } : null,
      lastSuccessAt: this.#lastSuccessAt,
    };
  }

  /** Abandons a request in flight (its frames stay queued) and sends no more. */
  close(): void {
    this.#closed = true;
    this.#cancelTimer();
    this.#abort?.abort();
  }

  /** Starts a request when one is due, or sets a timer for when it will be; `now`: without the flush delay. */
  kick(now = false): void {
    const { clock, queue, settings } = this.#d;
    if (this.#closed || this.#uploading || queue.durableSize === 0) return;
    const t = clock.now();
    let at: number;
    if (this.#retryAt !== null && this.#retryAt > t) at = this.#retryAt;
    else if (now || queue.durableSize >= this.#batchLimit) at = t;
    else at = Math.max(t, queue.oldest()!.queuedAt + settings.flushDelayMs);
    if (at <= t) {
      this.#cancelTimer();
      void this.#run();
      return;
    }
    if (this.#timer !== undefined && this.#timerAt !== undefined && this.#timerAt <= at) return;
    this.#cancelTimer();
    this.#timerAt = at;
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.kick(this.#retryAt !== null);
    }, at - t);
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#d.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = undefined;
  }

  /** The oldest frames, grouped by device in order of first appearance. */
  #batch(): Group[] {
    const { maxDevicesPerRequest, maxFramesPerDevice } = this.#d.settings;
    const groups = new Map<string, Entry[]>();
    let n = 0;
    for (const e of this.#d.queue.durable()) {
      if (n >= this.#batchLimit) break;
      let g = groups.get(e.serial);
      if (!g) {
        if (groups.size >= maxDevicesPerRequest) continue;
        g = [];
        groups.set(e.serial, g);
      }
      if (g.length >= maxFramesPerDevice) continue;
      g.push(e);
      n++;
    }
    return [...groups].map(([serial, entries]) => ({ serial, entries }));
  }

  async #run(): Promise<void> {
    const { clock, totals } = this.#d;
    const batch = this.#batch();
    if (batch.length === 0) return;
    this.#uploading = true;
    this.#retryAt = null;
    const frames = batch.reduce((s, g) => s + g.entries.length, 0);
    const body: UplinkRequest = {
      relay: { id: this.#d.relayId, time: Math.max(0, Math.round(clock.now())) },
      devices: batch.map((g) => ({ serial: g.serial, frames: g.entries.map((e) => ({ data: e.data, rx: e.rx })) })),
    };
    totals.requests++;
    let answer: Answer | undefined;
    let failure: string | undefined;
    try {
      const abort = typeof AbortController === 'function' ? new AbortController() : undefined;
      this.#abort = abort;
      answer = await sendRequest(this.#d.upload, body, abort, clock, this.#d.settings.requestTimeoutMs);
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
      this.kick();
      this.#d.answered();
    }
  }

  #handle(batch: Group[], frames: number, a: Answer): void {
    if (a.status === 200) {
      const answers = parseAnswer(a.json, batch);
      if (typeof answers === 'string') return this.#failed(200, frames, `answer not understood (${a.jsonError ?? answers}); the frames will go again`, undefined);
      this.#succeeded(batch, frames, answers);
      return;
    }
    const message = serverMessage(a);
    if (a.status === 429) {
      const wait = parseRetryAfter(a.retryAfter, this.#d.clock.now());
      return this.#failed(429, frames, message, wait === undefined ? undefined : Math.min(wait, this.#d.settings.maxRetryAfterMs));
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
  #tooBadToSend(batch: Group[], frames: number, status: number, message: string): void {
    const { clock, totals, log } = this.#d;
    totals.failedRequests++;
    this.#lastUpload = { at: clock.now(), ok: false, status, frames, message };
    const m = status === 400 ? FRAME_PATH.exec(message) : null;
    const named = m ? batch[Number(m[1])]?.entries[Number(m[2])] : undefined;
    const only = frames === 1 ? batch[0]!.entries[0] : undefined;
    const bad = named ?? only;
    if (bad) {
      totals.dropped++;
      log('error', `server refused frame ${bad.counter} of ${bad.serial} with ${status} (${message}); dropped it (a relay or server bug: report it)`);
      this.#d.queue.forget([bad]);
      return;
    }
    this.#batchLimit = Math.max(1, Math.floor(frames / 2));
    if (status === 413) {
      this.#ceiling = Math.min(this.#ceiling, this.#batchLimit);
      this.#ceilingUntil = clock.now() + CEILING_MS;
    }
    log('warn', `server refused a request of ${frames} frames with ${status} (${message}); retrying in requests of at most ${this.#batchLimit}`);
  }

  #failed(status: number | null, frames: number, message: string, retryAfterMs: number | undefined): void {
    const { clock, settings, random } = this.#d;
    this.#failures++;
    this.#d.totals.failedRequests++;
    const now = clock.now();
    let wait: number;
    if (retryAfterMs !== undefined) {
      // Honour the server, with up to 10% more so relays told the same time spread out.
      wait = retryAfterMs + Math.floor(random() * Math.min(1000, retryAfterMs * 0.1));
    } else {
      wait = backoffDelay(this.#failures, settings.backoffBaseMs, settings.backoffCapMs, random);
    }
    this.#retryAt = now + wait;
    this.#lastUpload = { at: now, ok: false, status, frames, message };
    this.#d.log('warn', `upload of ${frames} frame(s) failed (${status === null ? 'no answer' : status}: ${message}); retry ${this.#failures} in ${(wait / 1000).toFixed(1)} s`);
  }

  #succeeded(batch: Group[], frames: number, answers: (DeviceAnswer | undefined)[]): void {
    const { clock, devices, log } = this.#d;
    const now = clock.now();
    this.#failures = 0;
    this.#retryAt = null;
    if (now >= this.#ceilingUntil) this.#ceiling = Infinity;
    this.#batchLimit = Math.min(this.#d.settings.maxFramesPerRequest, this.#ceiling, this.#batchLimit * 2);
    const done: Entry[] = [];
    let kept = 0;
    let accepted = 0;
    let duplicates = 0;
    let rejected = 0;
    batch.forEach((g, i) => {
      const ans = answers[i];
      const d = devices.get(g.serial);
      if (!ans) {
        kept += g.entries.length;
        return;
      }
      g.entries.forEach((e, index) => {
        const reason = ans.rejected.get(index);
        if (reason !== undefined) {
          log('warn', `server rejected frame ${e.counter} of ${e.serial}: ${reason}; dropped from the queue`);
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
      if ((ans.ack || ans.extra.length > 0) && d) this.#d.acks.take(d, ans.ack, ans.ackN, g.entries.reduce((m, e) => Math.max(m, e.counter), 0), ans.extra);
    });
    this.#d.queue.forget(done);
    const t = this.#d.totals;
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
    if (kept > 0) log('warn', `server answer left out ${kept} frame(s); they stay queued`);
  }
}
