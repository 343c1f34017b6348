// The firmware (firmware/device.ts) on the sim HAL: what a provisioned device
// seals, what the outbox keeps and frees, and how it behaves across
// connections and power loss.
import { describe, expect, it } from 'vitest';
import { connect, firstArrivals, runWithAcks, simDevice } from '../helpers/sim-fleet.js';
import { channels, keyCheckValue, makeAck, toHex } from '../../protocol/index.js';
import { boardProfile, withDevice } from '../../boards/index.js';
import type { CryptoBackend } from '../../hal/types.js';
import { FIRMWARE_VERSION } from '../../firmware/version.js';
import { counterAt } from '../../firmware/outbox.js';
import { readFileSync } from 'node:fs';
import { seededRandom } from '../../hal/sim/random.js';

const SECOND = 1000;

describe('a provisioned device on the sim HAL', () => {
  it('prints its key check value at boot, then closes the console', () => {
    const { sim, prov, clock } = simDevice('SP-BOOT-1');
    sim.boot();
    expect(sim.consoleLines[0]).toBe(`sealpost SP-BOOT-1 kcv ${toHex(keyCheckValue(prov.keys.sealKey))} fw ${FIRMWARE_VERSION}`);
    expect(sim.locked).toBe(false);
    clock.advance(5 * SECOND);
    expect(sim.locked).toBe(true);
  });

  it('firmware version equals the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(FIRMWARE_VERSION).toBe(pkg.version);
  });

  for (const backend of ['native-ccm', 'native-aes', 'plain-js'] as CryptoBackend[]) {
    it(`seals frames the server opens, in order, carrying the readings it sampled (${backend})`, () => {
      const { sim, receiver, clock, profile } = simDevice('SP-' + backend, { crypto: backend });
      sim.boot();
      const link = connect(sim, receiver);
      runWithAcks(clock, link, receiver, 30 * SECOND);
      expect(receiver.rejected).toBe(0);
      expect(receiver.reused).toEqual([]);
      const order = firstArrivals(receiver);
      // In counter order from 1, no holes: boot anchor, connect anchor, then samples.
      expect(order.length).toBeGreaterThan(100);
      expect(order).toEqual(order.map((_, i) => i + 1));
      expect(sim.device!.status().dropped).toBe(0);
      const first = receiver.frames.get(1)!.decoded;
      expect(first).toMatchObject({ type: 'anchor', reason: 0, boot: 1 });
      expect(receiver.frames.get(2)!.decoded).toMatchObject({ type: 'anchor', reason: 1 });
      // Every sampled value arrives at the codec's resolution, in sampling order.
      const arrived: Array<{ name: string; value: number | null }> = [];
      for (const c of order) {
        const d = receiver.frames.get(c)!.decoded;
        if (d.type === 'sample') for (const r of d.readings) arrived.push({ name: r.name, value: r.value });
      }
      const sampled = sim.sampled.flatMap((s) => Object.entries(s.values).map(([name, value]) => ({ name, value })));
      expect(sampled.length).toBe(30 * profile.device.sensors.length);
      // The last second's readings may still be on their way.
      expect(arrived.length).toBeGreaterThanOrEqual(sampled.length - profile.device.sensors.length);
      arrived.forEach((a, i) => {
        const spec = channels().find((c) => c.name === sampled[i]!.name)!;
        expect(a.name).toBe(sampled[i]!.name);
        expect(Math.abs(a.value! - sampled[i]!.value)).toBeLessThanOrEqual(0.5 / spec.mul + 1e-9);
      });
      link.disconnect();
    });
  }

  it('exposes public info: serial, protocol version, frame size, board, firmware version', () => {
    const { sim, receiver } = simDevice('SP-INFO-7');
    sim.boot();
    const link = connect(sim, receiver);
    expect(JSON.parse(link.info())).toEqual({ serial: 'SP-INFO-7', v: 1, f: 20, b: 'sim', fw: FIRMWARE_VERSION });
  });

  it('does nothing but say why when the device file is missing or corrupt', () => {
    const { sim } = simDevice('SP-NOFILE');
    sim.files.delete('sealpost.dev');
    expect(sim.boot()).toBeUndefined();
    expect(sim.consoleLines).toEqual(['sealpost: no device file: provision this device with sealpost flash']);
    const other = simDevice('SP-CORRUPT');
    other.sim.files.get('sealpost.dev')![20] ^= 1;
    expect(other.sim.boot()).toBeUndefined();
    expect(other.sim.consoleLines[0]).toBe('sealpost: device file fails its CRC check: provision this device again');
  });
});

describe('outbox and acknowledgements on the device', () => {
  /** Connected for 3 s without acks: 17 frames, fewer than the 64 the outbox holds. */
  function running(serial: string) {
    const env = simDevice(serial);
    const device = env.sim.boot()!;
    const link = connect(env.sim, env.receiver);
    env.clock.advance(3 * SECOND);
    return { ...env, device, link };
  }

  it('a valid ack frees exactly the frames up to N', () => {
    const { device, receiver, link, prov } = running('SP-ACK-1');
    const before = device.outbox.count;
    expect(before).toBe(device.status().sealed);
    expect(firstArrivals(receiver).length).toBeGreaterThan(5);
    link.writeAck(makeAck(prov.keys, 5));
    expect(device.outbox.count).toBe(before - 5);
    expect(counterAt(device.outbox, 0)).toBe(6);
    link.writeAck(receiver.ack()!);
    expect(counterAt(device.outbox, 0)).toBe(receiver.watermark() + 1);
    expect(device.status().acked).toBe(receiver.watermark());
  });

  it('forged acks free nothing and do not crash: random bytes, wrong key, flipped tag, wrong length, N = 0', () => {
    const { device, link, prov, clock } = running('SP-FORGE');
    const count = device.outbox.count;
    const other = simDevice('SP-OTHER').prov;
    const flipped = makeAck(prov.keys, 3);
    flipped[11] ^= 0x40;
    const zero = makeAck(prov.keys, 3);
    zero.fill(0, 0, 4);
    const forgeries = [new Uint8Array(12).fill(0xff), crypto.getRandomValues(new Uint8Array(12)), makeAck(other.keys, 3), flipped, zero, new Uint8Array(0), new Uint8Array(11), makeAck(prov.keys, 3).subarray(0, 8), new Uint8Array(64)];
    for (const f of forgeries) link.writeAck(f);
    clock.advance(SECOND);
    expect(device.outbox.count).toBeGreaterThanOrEqual(count);
    expect(counterAt(device.outbox, 0)).toBe(1);
    expect(device.status().acked).toBe(0);
  });

  it('a replayed old ack frees nothing more', () => {
    const { device, link, prov } = running('SP-REPLAY');
    const old = makeAck(prov.keys, 4);
    link.writeAck(old);
    const after = device.outbox.count;
    link.writeAck(old);
    link.writeAck(makeAck(prov.keys, 2));
    expect(device.outbox.count).toBe(after);
    expect(counterAt(device.outbox, 0)).toBe(5);
  });

  it('resends unacknowledged frames on the next connection', () => {
    const { sim, receiver, link, clock } = running('SP-RESEND');
    const seen = firstArrivals(receiver).length;
    link.disconnect();
    clock.advance(5 * SECOND);
    const again: number[] = [];
    const link2 = sim.radio!.connect((frame) => {
      again.push(((frame[0]! << 24) | (frame[1]! << 16) | (frame[2]! << 8) | frame[3]!) >>> 0);
      receiver.receive(frame);
    });
    clock.advance(2 * SECOND);
    // Everything sealed so far comes again from counter 1, the unacked frames first.
    expect(again.slice(0, seen)).toEqual(Array.from({ length: seen }, (_, i) => i + 1));
    link2.writeAck(receiver.ack()!);
    expect(counterAt(sim.device!.outbox, 0)).toBeGreaterThan(seen);
  });

  it('resends what the radio dropped silently, once nothing more is acknowledged', () => {
    const { sim, receiver, clock } = simDevice('SP-DROPS', { radio: { queue: 1, intervalMs: 9 } });
    const device = sim.boot()!;
    clock.advance(8 * SECOND);
    const link = connect(sim, receiver);
    clock.advance(2 * SECOND);
    expect(sim.radio!.stats.droppedQueueFull).toBeGreaterThan(0);
    runWithAcks(clock, link, receiver, 50 * SECOND, 2 * SECOND);
    const sealedBefore = device.status().sealed;
    runWithAcks(clock, link, receiver, 10 * SECOND, 2 * SECOND);
    const last = receiver.watermark();
    // Despite the drops, everything sealed more than 10 s ago is settled, and whatever the
    // outbox had to give up while the first passes were being repaired is in a gap report.
    expect(last).toBeGreaterThanOrEqual(sealedBefore);
    for (let c = 1; c <= last; c++) expect(receiver.settled(c), `counter ${c}`).toBe(true);
    const inGaps = receiver.gaps.reduce((n, g) => n + g.count, 0);
    expect(inGaps).toBeLessThanOrEqual(device.status().dropped);
    expect(receiver.reused).toEqual([]);
  });

  it('when the outbox overflows it drops the oldest and reports the gap, so every counter is accounted for', () => {
    const profile = withDevice(boardProfile('sim'), { outboxFrames: 8 });
    const { sim, receiver, clock } = simDevice('SP-OVERFLOW', { profile });
    const device = sim.boot()!;
    clock.advance(20 * SECOND);
    expect(device.status().dropped).toBeGreaterThan(0);
    const link = connect(sim, receiver);
    runWithAcks(clock, link, receiver, 3 * SECOND, 500);
    const gaps = receiver.gaps.filter((g) => g.kind === 'outbox-overflow');
    expect(gaps.length).toBeGreaterThan(0);
    expect(Math.min(...gaps.map((g) => g.first))).toBe(1);
    link.disconnect();
    const sealed = device.status().sealed;
    for (let c = 1; c <= sealed - device.outbox.count; c++) expect(receiver.settled(c), `counter ${c}`).toBe(true);
    expect(receiver.reused).toEqual([]);
  });
});

describe('power loss', () => {
  it('after a power cut the device boots with a higher boot number and never reuses a counter', () => {
    const { sim, receiver, clock, profile } = simDevice('SP-POWER');
    const used = new Set<number>();
    for (let boot = 1; boot <= 5; boot++) {
      sim.boot();
      const link = connect(sim, receiver);
      runWithAcks(clock, link, receiver, (3 + boot) * SECOND);
      expect(sim.device!.status().boot).toBe(boot);
      link.disconnect();
      sim.powerOff();
      clock.advance(SECOND);
    }
    for (const c of receiver.order) used.add(c);
    expect(receiver.reused).toEqual([]);
    expect(used.size).toBeGreaterThan(100);
    // Each boot starts on a fresh block: its boot anchor is the first counter of a block.
    const bootAnchors = [...receiver.frames.values()].filter((f) => f.decoded.type === 'anchor' && f.decoded.reason === 0).map((f) => f.counter);
    expect(bootAnchors.length).toBe(5);
    bootAnchors.forEach((c) => expect((c - 1) % profile.device.counterBlock).toBe(0));
  });

  it('a device on a storage-log board profile keeps its counters in the counter-log file', () => {
    const { sim, receiver, clock } = simDevice('SP-LOG', { counterStore: 'storage-log' });
    sim.boot();
    connect(sim, receiver);
    clock.advance(3 * SECOND);
    sim.powerOff();
    sim.boot();
    connect(sim, receiver);
    clock.advance(3 * SECOND);
    expect(sim.log!.written).toBeGreaterThan(0);
    const counters = receiver.order;
    expect(new Set(counters).size).toBe(counters.length);
    expect(sim.device!.status().boot).toBe(2);
  });
});

describe('the sim harness', () => {
  it('logs every sealed frame with its counter, for accounting in fleet tests', () => {
    for (const crypto of ['native-ccm', 'native-aes', 'plain-js'] as CryptoBackend[]) {
      const { sim, receiver, clock } = simDevice('SP-TAP-' + crypto, { crypto });
      sim.boot();
      const link = connect(sim, receiver);
      runWithAcks(clock, link, receiver, 3 * SECOND);
      expect(sim.sealedLog.length).toBe(sim.device!.status().sealed);
      for (const s of sim.sealedLog) {
        const got = receiver.frames.get(s.counter);
        if (got) expect(Buffer.from(got.raw).length).toBe(20);
      }
      expect(new Set(sim.sealedLog.map((s) => s.counter)).size).toBe(sim.sealedLog.length);
    }
  });
});

describe('delivery under steady radio loss', () => {
  it('a device that seals faster than its pacing never goes idle, yet resends what the air lost and keeps its outbox drained', () => {
    const profile = withDevice(boardProfile('sim'), { sensors: ['temperature'] });
    const { sim, receiver, clock } = simDevice('SP-LOSSY', { profile, radio: { lossRate: 0.05, random: seededRandom(5) } });
    const device = sim.boot()!;
    const link = connect(sim, receiver);
    runWithAcks(clock, link, receiver, 400 * SECOND);
    const sealed = device.status().sealed;
    expect(device.status().dropped).toBe(0);
    expect(receiver.watermark()).toBeGreaterThanOrEqual(sealed - 20);
    expect(receiver.gaps).toEqual([]);
  });
});

