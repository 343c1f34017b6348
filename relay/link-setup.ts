// Pieces every platform's DeviceLink and its connection loop share (docs/relay.md, "The device link"): a link's
// end, reported once to onDisconnect and its owner (EndingLink), and a link watched while the core sets it up, so
// that a refusal of the info it read (final) is told apart from a radio failure (retried) (watchSetup).
import { RelayError, type DeviceLink } from './contracts.js';

/** The end of a link: once, to onDisconnect's callback and then to `onEnd`; connected() false from then on. */
export abstract class EndingLink {
  #ended = false;
  #onDisconnect: (() => void) | undefined;
  readonly #onEnd: () => void;

  constructor(onEnd: () => void) {
    this.#onEnd = onEnd;
  }

  get ended(): boolean {
    return this.#ended;
  }

  connected(): boolean {
    return !this.#ended;
  }

  onDisconnect(cb: () => void): void {
    if (this.#ended) queueMicrotask(cb);
    else this.#onDisconnect = cb;
  }

  /** disconnect(): ends the link and asks the platform to drop the connection (errors ignored). */
  disconnect(): void {
    if (this.#ended) return;
    this.end();
    this.close().catch(() => undefined);
  }

  /** The platform's call that drops the connection. */
  protected abstract close(): Promise<unknown>;

  /** The platform reported the drop, or disconnect() was called. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.ending();
    const cb = this.#onDisconnect;
    this.#onDisconnect = undefined;
    try {
      cb?.();
    } finally {
      this.#onEnd();
    }
  }

  /** Releases the platform's subscriptions when the link ends. */
  protected ending(): void {}
}

/**
 * `link` as the core should see it while connect() runs, and whether a
 * failure of connect() is final: the core wraps every failure in a
 * RelayError, and only info that was read and refused (not JSON, a bad
 * serial, another protocol) is; a failed read or subscription is the radio.
 */
export function watchSetup(link: DeviceLink): { link: DeviceLink; refused(e: unknown): boolean } {
  let infoRead = false;
  let subscribing = false;
  return {
    link: {
      info: async () => {
        const value = await link.info();
        infoRead = true;
        return value;
      },
      onFrame: (cb) => {
        subscribing = true;
        return link.onFrame(cb);
      },
      write: (writes) => link.write(writes),
      disconnect: () => link.disconnect(),
      connected: () => link.connected(),
      ...(link.onDisconnect ? { onDisconnect: (cb: () => void) => link.onDisconnect!(cb) } : {}),
    },
    refused: (e) => e instanceof RelayError && infoRead && !subscribing,
  };
}
