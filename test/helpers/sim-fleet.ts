// Test support: provision a simulated device the way the factory does, and a
// minimal receiving side that opens frames with keys re-derived from the
// public registry row and answers with acks by the "settled" rule of
// docs/protocol.md section 6. The real server has its own implementation;
// this one is small enough to read at a glance.
import { boardProfile, type BoardProfile } from '../../boards/index.js';
import {
  decodePlaintext,
  encodeDeviceFile,
  generateKeyPair,
  makeAck,
  openFrame,
  provisionDevice,
  recoverDeviceKeys,
  type Decoded,
  type DeviceKeys,
} from '../../protocol/index.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { SimDevice, type SimDeviceOptions } from '../../sim/device.js';
import type { SimLink } from '../../hal/sim/radio.js';

export interface Received {
  counter: number;
  decoded: Decoded;
  raw: Uint8Array;
}

export class Receiver {
  readonly frames = new Map<number, Received>();
  readonly order: number[] = [];
  readonly gaps: Array<{ first: number; count: number; kind: string }> = [];
  rejected = 0;
  /** Counters that arrived twice with different bytes: a reused counter, the one failure CCM may never have. */
  readonly reused: number[] = [];
  #settledBelow = 0;
  readonly #keys: DeviceKeys;
  readonly #frameSize: number;

  constructor(keys: DeviceKeys, frameSize: number) {
    this.#keys = keys;
    this.#frameSize = frameSize;
  }

  receive(frame: Uint8Array): void {
    let opened;
    try {
      opened = openFrame(this.#keys, frame, this.#frameSize);
    } catch {
      this.rejected++;
      return;
    }
    this.order.push(opened.counter);
    const known = this.frames.get(opened.counter);
    if (known) {
      if (Buffer.compare(known.raw, frame) !== 0) this.reused.push(opened.counter);
      return;
    }
    const decoded = decodePlaintext(opened.plaintext);
    this.frames.set(opened.counter, { counter: opened.counter, decoded, raw: frame.slice() });
    if (decoded.type === 'gap') this.gaps.push({ first: decoded.first, count: decoded.count, kind: 'outbox-overflow' });
    if (decoded.type === 'anchor' && decoded.reason === 0 && opened.counter > 1) this.gaps.push({ first: 1, count: opened.counter - 1, kind: 'power-loss' });
  }

  settled(counter: number): boolean {
    if (this.frames.has(counter)) return true;
    return this.gaps.some((g) => (g.kind === 'power-loss' ? counter < g.first + g.count && !this.frames.has(counter) : counter >= g.first && counter < g.first + g.count));
  }

  /** Highest N with 1..N settled, or 0. */
  watermark(): number {
    let n = this.#settledBelow;
    while (this.settled(n + 1)) n++;
    this.#settledBelow = n;
    return n;
  }

  ack(): Uint8Array | undefined {
    const n = this.watermark();
    return n > 0 ? makeAck(this.#keys, n) : undefined;
  }
}

export interface Provisioned {
  serial: string;
  keys: DeviceKeys;
  deviceFile: Uint8Array;
  kcv: Uint8Array;
}

const ingest = generateKeyPair();

export function provisionSim(serial: string, frameSize = 20): Provisioned {
  const p = provisionDevice(ingest.publicKey, serial);
  return {
    serial,
    keys: recoverDeviceKeys(ingest.privateKey, p.enc, serial),
    deviceFile: encodeDeviceFile({ serial, frameSize, sealKey: p.sealKey, nonceSalt: p.nonceSalt }),
    kcv: p.kcv,
  };
}

export function simDevice(serial: string, overrides: Partial<SimDeviceOptions> & { profile?: BoardProfile; frameSize?: number } = {}) {
  const clock = overrides.clock ?? new VirtualClock();
  const profile = overrides.profile ?? boardProfile('sim');
  const prov = provisionSim(serial, overrides.frameSize ?? profile.frameSize);
  const sim = new SimDevice({ clock, profile, deviceFile: prov.deviceFile, seed: 7, ...overrides });
  const receiver = new Receiver(prov.keys, overrides.frameSize ?? profile.frameSize);
  return { clock, profile, prov, sim, receiver };
}

/** Counters in order of first arrival. */
export function firstArrivals(receiver: Receiver): number[] {
  return [...new Set(receiver.order)];
}

/** Runs the clock, acknowledging what the receiver has settled every `everyMs`, as a relay would. */
export function runWithAcks(clock: { advance(ms: number): void }, link: SimLink, receiver: Receiver, ms: number, everyMs = 1000): void {
  for (let t = 0; t < ms; t += everyMs) {
    clock.advance(Math.min(everyMs, ms - t));
    const ack = receiver.ack();
    if (ack && link.connected()) link.writeAck(ack);
  }
}

/** Connects a relay that hands every notification to the receiver. */
export function connect(sim: SimDevice, receiver: Receiver): SimLink {
  if (!sim.radio) throw new Error('device is off');
  return sim.radio.connect((frame) => receiver.receive(frame));
}
