// In-process events after each committed uplink: the extension point for
// publishers (MQTT) and live views (dashboard). Listeners run after the
// response's transaction committed, so everything they are told is durable;
// a listener that throws is logged and does not affect the ingest path.
//
//   app.events.on('reading', (r) => ...)   one per new reading
//   app.events.on('retime', (e) => ...)    readings of (serial, boot) got a time
//                                          or a better one; re-query them
//   app.events.on('uplink', (u) => ...)    one per device per request
import { EventEmitter } from 'node:events';

export interface ReadingEvent {
  serial: string;
  counter: number;
  channel: number;
  name: string;
  unit: string;
  /** In the channel's unit; null when the sensor gave no reading. */
  value: number | null;
  /** Wall time (ms since 1970), or null until the boot has a time anchor. */
  time: number | null;
  /** 'relay' when the time rests on a relay's receive time, 'server' when only on the server's clock (clamped); null with time. */
  timeSource: 'relay' | 'server' | null;
  boot: number | null;
  /** Seconds since the boot, or null until the boot has a time anchor. */
  uptime: number | null;
}

export interface RetimeEvent {
  serial: string;
  boot: number;
  /** Estimated wall time of the boot (ms). */
  start: number;
}

export interface UplinkEvent {
  serial: string;
  relay: string;
  accepted: number;
  duplicates: number;
  rejected: number;
  /** The ack watermark after the request. */
  settled: number;
}

interface EventMap {
  reading: [ReadingEvent];
  retime: [RetimeEvent];
  uplink: [UplinkEvent];
}

export class IngestEvents extends EventEmitter<EventMap> {}
