// What the relay knows about one device (docs/relay.md, "Using the core"):
// its info and link, its counters, its latest ack, the frames above N the
// server said it holds, and how that reads in Relay.status().
import type { DeviceLink, RelayDeviceStatus } from './contracts.js';
import type { DeviceInfo } from './device-info.js';

/** What Relay.status() shows of a device (its info aside), and what the relay keeps besides. */
export interface Device extends Omit<RelayDeviceStatus, 'frameSize' | 'board' | 'firmware'> {
  info: DeviceInfo;
  link: DeviceLink | undefined;
  /** The latest ack from the server, written to the device (acks.ts). */
  ack: Uint8Array | undefined;
  /** Key renewal: the latest answer's writes after the ack (RENEW_ACK, ANNOUNCE parts), until written once. */
  extra: Uint8Array[];
  malformedLogged: boolean;
  /** The link a downlink write is under way on (one list at a time per link), and whether a newer ack came meanwhile. */
  writingOn: DeviceLink | undefined;
  writeAgain: boolean;
  /**
   * Frames above N the server said it holds (a 200 that did not reject
   * them), counter -> base64: a device resending them is not queued again.
   */
  storedAbove: Map<number, string>;
  /** clock.now() when an answer last covered everything the device had sent in its request. */
  caughtUpAt: number;
  stallWaitMs: number;
}

/** A device seen for the first time, not yet connected. */
export function newDevice(info: DeviceInfo): Device {
  return {
    serial: info.serial,
    info,
    link: undefined,
    extra: [],
    state: 'connecting',
    connections: 0,
    connectedAt: null,
    lastFrameAt: null,
    received: 0,
    queued: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
    ack: undefined,
    ackN: 0,
    ackWrittenN: 0,
    acksWritten: 0,
    ackPending: false,
    malformedLogged: false,
    writingOn: undefined,
    writeAgain: false,
    maxCounter: 0,
    storedAbove: new Map(),
    caughtUpAt: 0,
    stallWaitMs: 0,
    stalls: 0,
  };
}

export function deviceStatus(d: Device): RelayDeviceStatus {
  return {
    serial: d.serial,
    state: d.state,
    frameSize: d.info.f,
    board: d.info.b,
    firmware: d.info.fw,
    connections: d.connections,
    connectedAt: d.connectedAt,
    lastFrameAt: d.lastFrameAt,
    received: d.received,
    queued: d.queued,
    accepted: d.accepted,
    duplicates: d.duplicates,
    rejected: d.rejected,
    ackN: d.ackN,
    ackWrittenN: d.ackWrittenN,
    acksWritten: d.acksWritten,
    ackPending: d.ackPending,
    maxCounter: d.maxCounter,
    stalls: d.stalls,
  };
}

/** Most counters above N remembered per device (a few outboxes' worth). */
const MAX_STORED_ABOVE = 4096;

/** The server holds this frame above the device's N: a resend of it is not queued again. */
export function rememberStored(d: Device, counter: number, data: string): void {
  if (counter <= d.ackN) return;
  d.storedAbove.delete(counter);
  d.storedAbove.set(counter, data);
  if (d.storedAbove.size > MAX_STORED_ABOVE) d.storedAbove.delete(d.storedAbove.keys().next().value as number);
}
