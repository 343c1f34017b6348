// Readings and retimes as MQTT messages (topics and payloads in docs/api.md,
// "MQTT"), including the second publication of a reading that had no time
// when it was first published.
import type { FastifyBaseLogger } from 'fastify';
import type { ReadingEvent, RetimeEvent } from '../events.js';
import type { ReadingKey, Storage } from '../storage/types.js';
import type { MqttConfig } from './config.js';
import type { MqttPublisher } from './publisher.js';

/** Payload of `<prefix>/<serial>/<name>` (docs/api.md, "MQTT"). */
export interface ReadingMessage {
  serial: string;
  channel: number;
  name: string;
  unit: string;
  value: number | null;
  time: number | null;
  counter: number;
  uptime: number | null;
  boot: number | null;
}

export const readingMessage = (r: ReadingMessage): ReadingMessage => ({
  serial: r.serial,
  channel: r.channel,
  name: r.name,
  unit: r.unit,
  value: r.value,
  time: r.time,
  counter: r.counter,
  uptime: r.uptime,
  boot: r.boot,
});

/** Readings published with time null, remembered to republish once placed. */
const MAX_UNPLACED = 10_000;
const UNPLACED_TTL_MS = 3_600_000;

/**
 * Readings and retimes to topics and payloads. A reading whose boot had no
 * time anchor yet is published with time, boot and uptime null; its counter
 * is remembered (up to MAX_UNPLACED, for UNPLACED_TTL_MS), and when a retime
 * event says a boot of that device got a time, the device's readings from
 * that time on are read back and the remembered ones of that boot published
 * again, now with time, boot and uptime.
 */
export class ReadingPublisher {
  private readonly unplaced = new Map<string, { counters: Set<number>; since: number }>();
  private unplacedCount = 0;

  constructor(
    private readonly publisher: Pick<MqttPublisher, 'publish'>,
    private readonly config: Pick<MqttConfig, 'topicPrefix'>,
    private readonly storage: Pick<Storage, 'readings'>,
    private readonly log: FastifyBaseLogger,
    private readonly pageSize: number,
  ) {}

  topic(serial: string, name: string): string {
    return `${this.config.topicPrefix}/${serial}/${name}`;
  }

  reading(r: ReadingEvent): void {
    this.publisher.publish(this.topic(r.serial, r.name), JSON.stringify(readingMessage(r)));
    if (r.time === null && this.unplacedCount < MAX_UNPLACED) {
      let u = this.unplaced.get(r.serial);
      if (!u) this.unplaced.set(r.serial, (u = { counters: new Set(), since: Date.now() }));
      if (!u.counters.has(r.counter)) {
        u.counters.add(r.counter);
        this.unplacedCount++;
      }
    }
  }

  retime(e: RetimeEvent): void {
    this.publisher.publish(this.topic(e.serial, 'retime'), JSON.stringify({ serial: e.serial, boot: e.boot, start: e.start }));
    const u = this.unplaced.get(e.serial);
    if (!u) return;
    // Samples whose anchor never arrives (lost with an outbox overflow) stay unplaced for good.
    if (Date.now() - u.since > UNPLACED_TTL_MS) this.forget(e.serial, u.counters.size);
    else void this.republish(e, u.counters);
  }

  private forget(serial: string, n: number): void {
    this.unplaced.delete(serial);
    this.unplacedCount -= n;
  }

  private async republish(e: RetimeEvent, counters: Set<number>): Promise<void> {
    try {
      // A placed reading's time is its boot's start + uptime, so at or after
      // e.start. Page through them (limits.page_max each) until every
      // remembered counter of the boot is found or the readings end.
      let after: ReadingKey | undefined;
      for (;;) {
        const rows = await this.storage.readings(e.serial, { from: e.start, limit: this.pageSize, ...(after ? { after } : {}) });
        const placed = rows.filter((r) => r.boot === e.boot && r.time !== null && counters.has(r.counter));
        for (const r of placed) this.publisher.publish(this.topic(r.serial, r.name), JSON.stringify(readingMessage(r)));
        for (const r of placed) if (counters.delete(r.counter)) this.unplacedCount--;
        const last = rows[rows.length - 1];
        if (rows.length < this.pageSize || counters.size === 0 || !last) break;
        after = { counter: last.counter, idx: last.idx };
      }
      if (counters.size === 0 && this.unplaced.get(e.serial)?.counters === counters) this.unplaced.delete(e.serial);
    } catch (err) {
      this.log.error({ err, serial: e.serial, boot: e.boot }, 'mqtt: cannot read back re-timed readings');
    }
  }
}
