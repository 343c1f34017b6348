// A simulated phone relay for Node: it scans simulated devices (hal/sim
// SimDevice: the real firmware on the sim HAL), connects to each one that
// advertises, and drives the relay core (relay/) with the device's SimLink over a real
// HTTP connection to an ingest server. Everything runs on one VirtualClock,
// so device time, receive stamps, flush delays, backoff and request timeouts
// all advance together when the caller advances the clock.
//
// Chaos, from a seeded PRNG so a failing run replays: the relay drops links
// at random, and a share of uploads fail in one of four ways, before the
// server sees the request or after it has stored it (the answer lost).
import type { VirtualClock } from '../hal/sim/clock.js';
import type { SimDevice } from './device.js';
import type { SimLink } from '../hal/sim/radio.js';
import { seededRandom } from '../hal/sim/random.js';
import { Relay, RelayError, fetchUploader, type DeviceLink, type QueueStore, type RelayLog, type RelayOptions, type UploadResponse, type UplinkRequest } from '../relay/index.js';

/**
 * - refused: the connection fails at once; the server never sees the request.
 * - timeout-before: nothing comes back; the server never saw the request.
 * - lost-after: the server stores the frames, the answer is lost (connection reset).
 * - timeout-after: the server stores the frames, the answer never arrives.
 */
export type UploadFailure = 'refused' | 'timeout-before' | 'lost-after' | 'timeout-after';
export const UPLOAD_FAILURES: readonly UploadFailure[] = ['refused', 'timeout-before', 'lost-after', 'timeout-after'];

export interface SimChaos {
  /** Mean time the relay keeps a link before dropping it (ms); 0 never drops. */
  meanLinkMs: number;
  /** Share of uploads that fail, 0..1, each failure of a kind drawn evenly from `failures`. */
  failureRate: number;
  failures: readonly UploadFailure[];
}

export interface SimRelayOptions {
  clock: VirtualClock;
  /** The devices in range, asked at every scan (devices come and go, reboot, lose power). */
  devices: () => Iterable<SimDevice>;
  /** Base URL of the ingest server, e.g. http://127.0.0.1:8080. */
  server: string;
  store: QueueStore;
  seed: number;
  relayId?: string;
  /** Wall-clock ms at virtual time 0; receive stamps are epochMs + clock.now(). Default: Date.now() when created. */
  epochMs?: number;
  /** How often the relay looks for advertising devices and dead links (virtual ms). Default 250. */
  scanIntervalMs?: number;
  chaos?: Partial<SimChaos>;
  /** Settings passed to the relay core (batch size, flush delay, timeouts, backoff). */
  relay?: Partial<Omit<RelayOptions, 'clock' | 'upload' | 'store' | 'relayId' | 'random'>>;
  log?: RelayLog;
  fetch?: typeof fetch;
  /** Sent with every upload as X-Sealpost-Relay-Key. */
  relayKey?: string;
}

export interface SimRelayStats {
  scans: number;
  connects: number;
  /** Links the relay dropped on purpose. */
  drops: number;
  /** Links found dead (the device lost power or dropped it). */
  lost: number;
  uploads: number;
  failed: Record<UploadFailure, number>;
}

interface Held {
  sim: SimDevice;
  link: SimLink;
  gone: () => void;
}

function hang(signal: AbortSignal | undefined, what: string): Promise<never> {
  return new Promise((_, reject) => {
    if (!signal) return;
    const fail = () => reject(new RelayError(`${what} (simulated), abandoned`));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

export class SimRelay {
  readonly core: Relay;
  readonly stats: SimRelayStats = {
    scans: 0,
    connects: 0,
    drops: 0,
    lost: 0,
    uploads: 0,
    failed: { refused: 0, 'timeout-before': 0, 'lost-after': 0, 'timeout-after': 0 },
  };
  readonly #o: SimRelayOptions;
  readonly #held = new Map<SimDevice, Held>();
  readonly #network = new Set<Promise<unknown>>();
  readonly #linkRandom: () => number;
  readonly #uploadRandom: () => number;
  #chaos: SimChaos;
  #server: string;
  #scanTimer: number | undefined;
  #stopped = false;

  private constructor(options: SimRelayOptions, core: Relay | undefined) {
    this.#o = options;
    this.#server = options.server;
    this.#chaos = { meanLinkMs: 0, failureRate: 0, failures: UPLOAD_FAILURES, ...options.chaos };
    this.#linkRandom = seededRandom(options.seed * 7 + 1);
    this.#uploadRandom = seededRandom(options.seed * 7 + 2);
    this.core = core!;
  }

  /** Opens the relay core on the store (queued frames from an earlier run go up first) and starts scanning. */
  static async start(options: SimRelayOptions): Promise<SimRelay> {
    const epoch = options.epochMs ?? Date.now();
    const clock = options.clock;
    let self: SimRelay | undefined;
    const upload = (body: UplinkRequest, signal?: AbortSignal) => self!.#upload(body, signal);
    const core = await Relay.open({
      linkPollMs: 0,
      ...options.relay,
      relayId: options.relayId ?? 'sim-relay',
      clock: {
        now: () => epoch + clock.now(),
        setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
        clearTimeout: (h) => clock.clearTimeout(h as number),
      },
      upload,
      store: options.store,
      random: seededRandom(options.seed * 7 + 3),
      ...(options.log ? { log: options.log } : {}),
    });
    self = new SimRelay(options, core);
    self.#scan();
    return self;
  }

  /** The server moved (restarted on another port). */
  setServer(url: string): void {
    this.#server = url;
  }

  setChaos(chaos: Partial<SimChaos>): void {
    this.#chaos = { ...this.#chaos, ...chaos };
  }

  get chaos(): SimChaos {
    return { ...this.#chaos };
  }

  /** Devices with a live link now. */
  connected(): number {
    let n = 0;
    for (const h of this.#held.values()) if (h.link.connected()) n++;
    return n;
  }

  #upload(body: UplinkRequest, signal?: AbortSignal): Promise<UploadResponse> {
    this.stats.uploads++;
    const real = fetchUploader(() => this.#server, {
      ...(this.#o.fetch ? { fetch: this.#o.fetch } : {}),
      ...(this.#o.relayKey !== undefined ? { relayKey: this.#o.relayKey } : {}),
    });
    const c = this.#chaos;
    let failure: UploadFailure | undefined;
    if (c.failureRate > 0 && c.failures.length > 0 && this.#uploadRandom() < c.failureRate) {
      failure = c.failures[Math.floor(this.#uploadRandom() * c.failures.length)]!;
      this.stats.failed[failure]++;
    }
    switch (failure) {
      case undefined:
        return this.#track(real(body, signal));
      case 'refused':
        return Promise.reject(new RelayError('connection refused (simulated)'));
      case 'timeout-before':
        return hang(signal, 'request never reached the server');
      case 'lost-after':
        return this.#track(real(body, signal)).then(() => {
          throw new RelayError('connection reset after the server answered (simulated): answer lost');
        });
      case 'timeout-after':
        return this.#track(real(body, signal)).then(() => hang(signal, 'answer never arrived'));
    }
  }

  /** Real network work in flight: settle() waits for it; simulated hangs wait for the clock instead. */
  #track<T>(p: Promise<T>): Promise<T> {
    this.#network.add(p);
    const done = () => this.#network.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * Resolves once nothing can progress without the clock: every real HTTP
   * exchange has finished, its answer is handled, and every received frame
   * is durable. Call it between clock advances.
   */
  async settle(): Promise<void> {
    for (let rounds = 0; ; rounds++) {
      await new Promise<void>((r) => setImmediate(r));
      if (this.#network.size === 0 && this.core.isIdle()) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.#network.size === 0 && this.core.isIdle()) return;
      }
      await Promise.allSettled([...this.#network, this.core.idle()]);
      if (rounds > 100_000) throw new Error('sim relay never settled');
    }
  }

  #scan(): void {
    if (this.#stopped) return;
    this.stats.scans++;
    const interval = this.#o.scanIntervalMs ?? 250;
    const dropChance = this.#chaos.meanLinkMs > 0 ? Math.min(1, interval / this.#chaos.meanLinkMs) : 0;
    const present = new Set<SimDevice>();
    for (const sim of this.#o.devices()) {
      present.add(sim);
      const held = this.#held.get(sim);
      if (held) {
        if (!held.link.connected()) {
          this.stats.lost++;
          this.#release(sim);
        } else if (dropChance > 0 && this.#linkRandom() < dropChance) {
          this.stats.drops++;
          held.link.disconnect();
          this.#release(sim);
          continue;
        } else continue;
      }
      if (sim.radio?.advertising()) this.#connect(sim);
    }
    for (const sim of [...this.#held.keys()]) {
      if (present.has(sim)) continue;
      this.#held.get(sim)!.link.disconnect();
      this.#release(sim);
    }
    this.#scanTimer = this.#o.clock.setTimeout(() => this.#scan(), interval);
  }

  #release(sim: SimDevice): void {
    const held = this.#held.get(sim);
    if (!held) return;
    this.#held.delete(sim);
    held.gone();
  }

  #connect(sim: SimDevice): void {
    let handler: ((frame: Uint8Array) => void) | undefined;
    const early: Uint8Array[] = [];
    let onGone: (() => void) | undefined;
    let link: SimLink;
    try {
      link = sim.radio!.connect((frame) => (handler ? handler(frame) : early.push(frame)));
    } catch {
      return;
    }
    this.stats.connects++;
    const device: DeviceLink = {
      info: () => link.info(),
      onFrame: (cb) => {
        handler = cb;
        for (const f of early.splice(0)) cb(f);
        // The CCCD write: the device starts sending now, not after its fallback delay.
        link.subscribe(true);
      },
      write: (writes) => {
        for (const w of writes) link.writeAck(w);
      },
      disconnect: () => link.disconnect(),
      connected: () => link.connected(),
      onDisconnect: (cb) => {
        onGone = cb;
      },
    };
    this.#held.set(sim, { sim, link, gone: () => onGone?.() });
    this.core.connect(device).catch(() => this.#release(sim));
  }

  /** Stops scanning and closes the core (a request in flight is abandoned; its frames stay in the store). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#scanTimer !== undefined) this.#o.clock.clearTimeout(this.#scanTimer);
    await this.core.close();
    this.#held.clear();
  }
}
