// What every app adapter (Capacitor, React Native) does with the devices it
// found, on top of a platform's way to open a link (docs/relay.md, "App
// adapters"): one connection attempt at a time per device, the link handed
// to the core, a drop or a failure retried with backoff, several devices at
// once, and the "not a sealpost device" rule of the DeviceLink contract
// (rule 4): only a device that never relayed is written off when its
// discovery misses the service.
import { RelayError, backoffDelay, type DeviceLink, type Relay, type RelayClock, type RelayLog } from '../index.js';
import { watchSetup } from '../link-setup.js';

/** Thrown by a platform's open() when service discovery came back without the sealpost service or one of its characteristics. */
export class MissingServiceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MissingServiceError';
  }
}

/** Opens a link to `id` (connect, discover); `ended` is called once when that link ends, however it ends. */
export type OpenLink = (id: string, ended: () => void) => Promise<DeviceLink>;

/**
 * connecting: an attempt is under way; connected: relaying; waiting: the next
 * attempt is at `retryAt`; not-sealpost: never had the service (not retried);
 * refused: its info was read and refused by the core (not retried).
 */
export type AdapterDeviceState = 'connecting' | 'connected' | 'waiting' | 'not-sealpost' | 'refused';

export interface AdapterDeviceStatus {
  /** The platform's id (a MAC address on Android, a UUID on iOS, the browser's id on the web). */
  id: string;
  name: string | undefined;
  state: AdapterDeviceState;
  /** Known once the device relayed. */
  serial: string | undefined;
  /** Consecutive failed attempts. */
  failures: number;
  retryAt: number | null;
  /** The last failure, in words. */
  problem: string | undefined;
}

export interface RunnerOptions {
  relay: Relay;
  clock?: RelayClock | undefined;
  random?: (() => number) | undefined;
  /** First reconnection delay; doubles per consecutive failure. Default 1000 ms. */
  reconnectBaseMs?: number | undefined;
  /** Longest reconnection delay. Default 30 s. */
  reconnectCapMs?: number | undefined;
  onChange?: (() => void) | undefined;
  log?: RelayLog | undefined;
}

const systemClock: RelayClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

const text = (e: unknown) => (e instanceof Error ? e.message : String(e));

interface Entry extends AdapterDeviceStatus {
  generation: number;
  timer: unknown;
  link: DeviceLink | undefined;
}

export class DeviceRunner {
  readonly #open: OpenLink;
  readonly #relay: Relay;
  readonly #clock: RelayClock;
  readonly #random: () => number;
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #onChange: (() => void) | undefined;
  readonly #log: RelayLog;
  readonly #devices = new Map<string, Entry>();
  #closed = false;
  /** Why no attempt may start now (Bluetooth off or not allowed), or undefined. */
  #held: string | undefined;

  constructor(open: OpenLink, options: RunnerOptions) {
    this.#open = open;
    this.#relay = options.relay;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#baseMs = options.reconnectBaseMs ?? 1000;
    this.#capMs = options.reconnectCapMs ?? 30_000;
    this.#onChange = options.onChange;
    this.#log = options.log ?? (() => undefined);
  }

  /** Starts relaying a device (again, if it was written off); a device already being relayed is left as it is. */
  add(id: string, name?: string): void {
    if (this.#closed) throw new RelayError('the adapter is stopped');
    const known = this.#devices.get(id);
    if (known && known.state !== 'not-sealpost' && known.state !== 'refused') return;
    const entry: Entry = known ?? { id, name, state: 'connecting', serial: undefined, failures: 0, retryAt: null, problem: undefined, generation: 0, timer: undefined, link: undefined };
    entry.name = name ?? entry.name;
    entry.failures = 0;
    this.#devices.set(id, entry);
    if (this.#held !== undefined) this.#retry(entry);
    else void this.#attempt(entry);
  }

  /** Stops relaying a device and disconnects it. */
  async remove(id: string): Promise<void> {
    const e = this.#devices.get(id);
    if (!e) return;
    this.#devices.delete(id);
    await this.#halt(e);
    this.#changed();
  }

  /**
   * Bluetooth is off or the app may not use it: no attempt starts until
   * resume(); devices wait with this as their problem.
   */
  hold(reason: string): void {
    if (this.#held === reason) return;
    this.#held = reason;
    for (const e of this.#devices.values()) {
      if (e.state !== 'waiting') continue;
      if (e.timer !== undefined) this.#clock.clearTimeout(e.timer);
      e.timer = undefined;
      e.retryAt = null;
      e.problem = reason;
    }
    this.#changed();
  }

  /** Bluetooth is usable again: every waiting device is tried now, with its backoff reset. */
  resume(): void {
    if (this.#held === undefined) return;
    this.#held = undefined;
    for (const e of this.#devices.values()) {
      if (e.state !== 'waiting') continue;
      e.failures = 0;
      if (e.timer !== undefined) this.#clock.clearTimeout(e.timer);
      void this.#attempt(e);
    }
  }

  /** The reason attempts are held, or undefined. */
  get held(): string | undefined {
    return this.#held;
  }

  status(): AdapterDeviceStatus[] {
    return [...this.#devices.values()].map(({ id, name, state, serial, failures, retryAt, problem }) => ({ id, name, state, serial, failures, retryAt, problem }));
  }

  /** Disconnects every device and stops reconnecting; the relay itself stays open. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#devices.values()].map((e) => this.#halt(e)));
    this.#changed();
  }

  async #halt(e: Entry): Promise<void> {
    e.generation++;
    if (e.timer !== undefined) this.#clock.clearTimeout(e.timer);
    e.timer = undefined;
    e.retryAt = null;
    const link = e.link;
    e.link = undefined;
    if (link) await Promise.resolve(link.disconnect()).catch(() => undefined);
  }

  async #attempt(e: Entry): Promise<void> {
    const generation = ++e.generation;
    e.timer = undefined;
    e.retryAt = null;
    e.state = 'connecting';
    this.#changed();
    let link: DeviceLink | undefined;
    let setup: ReturnType<typeof watchSetup> | undefined;
    try {
      link = await this.#open(e.id, () => this.#ended(e, generation));
      if (generation !== e.generation || this.#closed) {
        await Promise.resolve(link.disconnect()).catch(() => undefined);
        return;
      }
      e.link = link;
      const opened = link;
      setup = watchSetup(opened);
      const serial = await this.#relay.connect(setup.link);
      if (generation !== e.generation) return;
      if (!opened.connected()) throw new Error('the device disconnected while the relay set it up');
      e.serial = serial;
      e.state = 'connected';
      e.failures = 0;
      e.problem = undefined;
      this.#changed();
    } catch (err) {
      if (generation !== e.generation) return;
      if (link) await Promise.resolve(link.disconnect()).catch(() => undefined);
      e.link = undefined;
      e.problem = text(err);
      if (err instanceof MissingServiceError && e.serial === undefined) {
        e.state = 'not-sealpost';
        this.#log('warn', `${e.name ?? e.id} is not a sealpost device: ${e.problem}`);
        this.#changed();
        return;
      }
      if (setup?.refused(err)) {
        e.state = 'refused';
        this.#log('warn', `${e.name ?? e.id} refused: ${e.problem}`);
        this.#changed();
        return;
      }
      e.failures++;
      this.#log('info', `${e.serial ?? e.name ?? e.id}: ${e.problem}; trying again`);
      this.#retry(e);
    }
  }

  #ended(e: Entry, generation: number): void {
    if (generation !== e.generation || this.#closed || this.#devices.get(e.id) !== e) return;
    e.link = undefined;
    if (e.serial !== undefined) this.#relay.disconnected(e.serial);
    // A drop after relaying is retried at once the first time (a phone's link drops often); repeated failures back off.
    if (e.state === 'connected') {
      e.problem = 'the connection dropped';
      e.failures = 1;
      this.#retry(e);
    }
  }

  #retry(e: Entry): void {
    if (this.#closed || this.#devices.get(e.id) !== e) return;
    e.generation++;
    e.state = 'waiting';
    if (this.#held !== undefined) {
      e.retryAt = null;
      e.problem = this.#held;
      this.#changed();
      return;
    }
    const delay = backoffDelay(e.failures, this.#baseMs, this.#capMs, this.#random);
    e.retryAt = this.#clock.now() + delay;
    const generation = e.generation;
    e.timer = this.#clock.setTimeout(() => {
      if (generation === e.generation) void this.#attempt(e);
    }, delay);
    this.#changed();
  }

  #changed(): void {
    try {
      this.#onChange?.();
    } catch (err) {
      this.#log('error', `status listener failed: ${text(err)}`);
    }
  }
}
