// One Bluetooth device the user picked, from the first connection to the
// last: opens GATT links, hands each to the relay core, and connects again
// after a drop. The core expects links to come back (docs/relay.md): after a
// lost link, after its own stall disconnect, after an ack write failed.
//
// States: `connecting` (first connection), `connected`, `reconnecting` (a
// retry is scheduled or running), `disconnected` (the user disconnected it,
// it is not a sealpost device, or it stayed away through every retry).
//
// "Not a sealpost device" is said only of a device that has never been
// relayed in this session. One that has, and whose service discovery after a
// reconnection comes back without the service or a characteristic (a stale
// or failed discovery, common on Android), is tried again with the usual
// backoff, like a lost link (issue #16).
import { RelayError } from '../index.js';
import type { DeviceLink } from '../index.js';
import type { LinkEnd } from './ble-link.js';
import { LinkError } from './ble-link.js';
import { plainError } from './messages.js';
import { watchSetup } from '../link-setup.js';
import type { BluetoothDevice } from './web-bluetooth.js';

export type SessionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/** Waits between reconnection attempts: about a minute in all, then the user decides. */
export const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15_000, 30_000];

export interface SessionHost {
  /** relay.connect: reads info, subscribes, resolves to the serial. */
  connect(link: DeviceLink): Promise<string>;
  openLink(device: BluetoothDevice, onEnd: (how: LinkEnd) => void): Promise<DeviceLink>;
  now(): number;
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(handle: number): void;
  changed(): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

export class DeviceSession {
  readonly device: BluetoothDevice;
  serial: string | undefined;
  state: SessionState = 'connecting';
  /** Failed attempts since the last good connection. */
  failures = 0;
  retryAt: number | null = null;
  /** Why it is not connected, in plain words; undefined when all is well. */
  problem: string | undefined;
  /** Disconnected because every retry failed (not by the user, not for good): worth trying again when the page is back on screen. */
  gaveUp = false;
  readonly #host: SessionHost;
  #generation = 0;
  #link: DeviceLink | undefined;
  #timer: number | undefined;
  #userClosed = false;

  constructor(device: BluetoothDevice, host: SessionHost) {
    this.device = device;
    this.#host = host;
  }

  get label(): string {
    return this.serial ?? this.device.name ?? 'sealpost device';
  }

  start(): void {
    this.#userClosed = false;
    this.gaveUp = false;
    this.failures = 0;
    void this.#attempt();
  }

  /** The user asked: disconnect and stay disconnected. */
  disconnect(): void {
    this.#userClosed = true;
    this.#generation++;
    this.#cancelTimer();
    this.state = 'disconnected';
    this.problem = undefined;
    const link = this.#link;
    this.#link = undefined;
    if (link) void Promise.resolve(link.disconnect()).catch(() => undefined);
    else this.device.gatt?.disconnect();
    this.#host.changed();
  }

  /** The user asked: connect again now. */
  reconnect(): void {
    if (this.state === 'connected' || this.state === 'connecting') return;
    this.#cancelTimer();
    this.start();
  }

  async #attempt(): Promise<void> {
    const generation = ++this.#generation;
    this.#cancelTimer();
    this.state = this.serial === undefined && this.failures === 0 ? 'connecting' : 'reconnecting';
    this.#host.changed();
    let link: DeviceLink | undefined;
    let setup: ReturnType<typeof watchSetup> | undefined;
    try {
      const opened = await this.#host.openLink(this.device, (how) => this.#ended(generation, how));
      link = opened;
      if (generation !== this.#generation) {
        await opened.disconnect();
        return;
      }
      this.#link = opened;
      setup = watchSetup(opened);
      const serial = await this.#host.connect(setup.link);
      if (generation !== this.#generation) return;
      if (!link.connected()) throw new Error('the device disconnected while the relay set it up');
      this.serial = serial;
      this.state = 'connected';
      this.failures = 0;
      this.problem = undefined;
      this.#host.changed();
    } catch (e) {
      if (generation !== this.#generation) return;
      if (link) await Promise.resolve(link.disconnect()).catch(() => undefined);
      this.#link = undefined;
      const refused = setup?.refused(e) === true;
      // A device that has relayed is a sealpost device: its service missing now is the phone's discovery, not the device.
      const staleDiscovery = e instanceof LinkError && e.kind === 'not-sealpost' && this.serial !== undefined;
      const words = e instanceof RelayError && !refused ? `the device stopped answering while the relay set it up (${e.message})` : staleDiscovery ? `the phone did not find the device's sealpost service this time (${e.message})` : plainError(e);
      if (refused || (e instanceof LinkError && e.kind !== 'timeout' && !staleDiscovery)) {
        // Not a sealpost device, or one the relay cannot serve: retrying will not help.
        this.state = 'disconnected';
        this.problem = words;
        this.#host.log('error', `${this.label}: ${words}`);
        this.#host.changed();
        return;
      }
      this.#retry(words);
    }
  }

  #ended(generation: number, how: LinkEnd): void {
    if (generation !== this.#generation || this.#userClosed) return;
    this.#link = undefined;
    // During setup the attempt itself sees the failure.
    if (this.state !== 'connected') return;
    this.#host.log(how === 'lost' ? 'warn' : 'info', how === 'lost' ? `${this.label}: lost contact; reconnecting` : `${this.label}: the relay dropped the link on purpose; reconnecting`);
    this.failures = 0;
    this.#retry(how === 'lost' ? 'the connection dropped' : undefined);
  }

  #retry(reason: string | undefined): void {
    this.failures++;
    const delay = RECONNECT_DELAYS_MS[this.failures - 1];
    if (delay === undefined) {
      this.state = 'disconnected';
      this.gaveUp = true;
      this.retryAt = null;
      this.problem = `${reason ?? 'no answer'}. Gave up after ${this.failures - 1} tries: bring it closer, check that it is switched on, and tap Reconnect.`;
      this.#host.log('warn', `${this.label}: ${this.problem}`);
      this.#host.changed();
      return;
    }
    this.state = 'reconnecting';
    this.problem = reason;
    this.retryAt = this.#host.now() + delay;
    const generation = this.#generation;
    this.#timer = this.#host.setTimeout(() => {
      this.#timer = undefined;
      this.retryAt = null;
      if (generation === this.#generation) void this.#attempt();
    }, delay);
    this.#host.changed();
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#host.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.retryAt = null;
  }
}
