// Acks back to devices (docs/relay.md, "What the core does"): keeping each
// device's latest ack from the server, writing it when the device is
// connected (or on its next connection), and dropping the link of a device
// whose ack has stopped following what it sends ("Stalled devices").
import type { DeviceLink, RelayClock, RelayLog, RelayTotals } from './contracts.js';
import type { Device } from './devices.js';
import type { FrameQueue } from './queue.js';
import { ackWrites, checkDownlink } from './downlink.js';
import { errorText } from './log.js';

export interface AckDeps {
  clock: RelayClock;
  log: RelayLog;
  totals: RelayTotals;
  queue: FrameQueue;
  /** RelayOptions.stallMs; 0 turns stall detection off. */
  stallMs: number;
  /** The relay forgets a link that is gone (or that it drops). */
  dropped(d: Device, link: DeviceLink): void;
}

export class Acks {
  readonly #deps: AckDeps;

  constructor(deps: AckDeps) {
    this.#deps = deps;
  }

  /**
   * Keeps an ack from an answer and writes it. `sent`: the highest counter of this device in the request it answers.
   * `extra`: the answer's other downlink writes (key renewal: RENEW_ACK, ANNOUNCE), written after the ack.
   */
  take(d: Device, ack: Uint8Array | undefined, n: number, sent: number, extra: Uint8Array[] = []): void {
    if (extra.length > 0) d.extra = extra;
    // Acks only rise; an older one (answers can cross) is not kept.
    if (ack && n >= d.ackN) {
      d.ack = ack;
      d.ackN = n;
      for (const c of d.storedAbove.keys()) if (c <= n) d.storedAbove.delete(c);
    }
    if (d.ackN >= sent) {
      d.caughtUpAt = this.#deps.clock.now();
      d.stallWaitMs = 0;
    }
    d.ackPending = true;
    void this.write(d);
    this.#checkStall(d);
  }

  /**
   * Writes the device's latest ack when it is connected; otherwise it waits
   * (ackPending) for the next connection. Every upload answer is written,
   * even with N unchanged: a device that has sent everything reads "N did
   * not move" as "resend" (docs/firmware.md, "Pacing"). A link gets one
   * downlink list at a time (DeviceLink.write): answers that come while a
   * write is under way are written once it is done, as the latest ack only
   * (an older one frees nothing more).
   */
  async write(d: Device): Promise<void> {
    const link = d.link;
    if ((!d.ack && d.extra.length === 0) || !link || d.state === 'disconnected') return;
    if (!link.connected()) {
      this.#deps.dropped(d, link);
      return;
    }
    if (d.writingOn === link) {
      d.writeAgain = true;
      return;
    }
    d.writingOn = link;
    let n = d.ackN;
    try {
      do {
        d.writeAgain = false;
        n = d.ackN;
        const extra = d.extra;
        const writes = checkDownlink([...(d.ack ? ackWrites(d.ack) : []), ...extra]);
        d.ackPending = false;
        await link.write(writes);
        if (d.extra === extra) d.extra = [];
        d.acksWritten++;
        d.ackWrittenN = Math.max(d.ackWrittenN, n);
        this.#deps.totals.acksWritten++;
      } while (d.writeAgain && d.link === link && link.connected());
    } catch (e) {
      d.ackPending = true;
      this.#deps.log('warn', `writing the ack (N=${n}) to ${d.serial} failed: ${errorText(e)}; it is written again on the next connection`);
    } finally {
      if (d.writingOn === link) d.writingOn = undefined;
      if (d.writeAgain) d.ackPending = true;
      d.writeAgain = false;
    }
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
    const { stallMs, clock, totals } = this.#deps;
    if (stallMs === 0 || d.state !== 'connected' || !d.link) return;
    const now = clock.now();
    const wait = d.stallWaitMs || stallMs;
    const since = Math.max(d.caughtUpAt, d.connectedAt ?? 0);
    if (now - since < wait) return;
    if (this.#deps.queue.holdsUpTo(d.serial, d.ackN + 1)) return;
    d.stallWaitMs = Math.min(wait * 2, stallMs * 16);
    d.stalls++;
    totals.stalls++;
    const link = d.link;
    this.#deps.log(
      'warn',
      `${d.serial}: the server has had everything up to ${d.ackN} only, for ${Math.round((now - since) / 1000)} s, while the device sends up to ${d.maxCounter}; reconnecting so it resends from its oldest frame`,
    );
    this.#deps.dropped(d, link);
    void Promise.resolve()
      .then(() => link.disconnect())
      .catch(() => undefined);
  }
}
