// Key renewal on the device under attack (issue #17 item 5c, the device's side): the real firmware on
// the sim board, written to directly as a hostile relay would. ANNOUNCE signed by the factory key, by a
// random key, with a flipped bit, for an older or equal epoch, for another fleet; parts reordered,
// duplicated, truncated, mixed from two announcements; RENEW_ACK forged, replayed from another device
// or epoch; a failing or repeating random source. Each time the device stays on its key and keeps
// sealing frames the factory key opens; the genuine renewal still works afterwards.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { announceWrites, makeRenewAck, serverRenew, type KeyFile } from '../../protocol/index.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { boardProfile } from '../../boards/index.js';
import { SimDevice } from '../../sim/device.js';
import { makeRenewalFleet, type RenewalFleet } from '../helpers/renewal.js';
import { format2File, reusedNonces } from '../helpers/sim-renewal.js';
import type { SimLink } from '../../hal/sim/radio.js';

let fleet: RenewalFleet;
let other: RenewalFleet;
const ingest: KeyFile[] = [];
const announce: Uint8Array[] = [];
let n = 0;

beforeAll(() => {
  fleet = makeRenewalFleet(40, 'SP-AT');
  for (let e = 1; e <= 2; e++) {
    const r = fleet.renew();
    ingest[e] = r.ingestPrivate;
    announce[e] = new Uint8Array(readFileSync(join(fleet.dir, `announce-${String(e).padStart(8, '0')}.bin`)));
  }
  other = makeRenewalFleet(1, 'SP-OT');
  other.renew();
});

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface Dev {
  sim: SimDevice;
  clock: VirtualClock;
  i: number;
  link: SimLink;
  factory: string;
}

function dev(hwRand?: () => number): Dev {
  const i = n++;
  const clock = new VirtualClock();
  const sim = new SimDevice({ clock, profile: boardProfile('sim'), deviceFile: format2File(fleet, fleet.devices[i]!), seed: 300 + i, hwRand });
  sim.boot();
  clock.advance(2000);
  const link = sim.radio!.connect(() => undefined);
  link.subscribe(true);
  return { sim, clock, i, link, factory: hex(fleet.devices[i]!.sealKey) };
}

function reconnect(d: Dev): void {
  d.link.disconnect();
  d.link = d.sim.radio!.connect(() => undefined);
  d.link.subscribe(true);
}

const write = (d: Dev, ws: Uint8Array[]) => ws.forEach((w) => d.link.writeAck(w));
const rekeys = (d: Dev) => d.sim.sealedLog.filter((f) => f.plaintext[0]! >= 0x30 && f.plaintext[0]! <= 0x34);

/** enc of the device's last REKEY set, joined from the plaintexts it sealed. */
function lastEnc(d: Dev): Uint8Array {
  const r = rekeys(d).slice(-5);
  expect(r.map((f) => f.plaintext[0])).toEqual([0x30, 0x31, 0x32, 0x33, 0x34]);
  const payload = Buffer.concat(r.map((f) => Buffer.from(f.plaintext.subarray(1, 8))));
  return new Uint8Array(payload.subarray(2, 34));
}

/** The server's RENEW_ACK for device `i` renewing from epoch 0 to `to` with `enc`. */
function renewAck(i: number, to: number, enc: Uint8Array): Uint8Array {
  const d = fleet.devices[i]!;
  const keys = serverRenew({ serial: d.serial, fromEpoch: 0, toEpoch: to, chain: d.chain }, ingest[to]!.key, enc);
  return makeRenewAck(keys, to);
}

/** The device still seals under its factory key, and keeps doing so. */
function staysOnFactoryKey(d: Dev): void {
  const before = d.sim.sealedLog.length;
  d.clock.advance(3000);
  const after = d.sim.sealedLog.slice(before);
  expect(after.length).toBeGreaterThan(0);
  for (const f of after) expect(f.key).toBe(d.factory);
  expect(reusedNonces(d.sim)).toEqual([]);
}

/** An ANNOUNCE over `body` (44 bytes) signed by `seed` (an Ed25519 private key). */
function signed(body: Uint8Array, seed: Uint8Array): Uint8Array {
  const out = new Uint8Array(108);
  out.set(body.subarray(0, 44));
  out.set(ed25519.sign(Buffer.concat([Buffer.from('sealpost/v1 announce'), Buffer.from(body.subarray(0, 44))]), seed), 44);
  return out;
}

describe('key renewal on the device: hostile ANNOUNCE', () => {
  it('renews from a genuine ANNOUNCE whose parts come reordered, repeated and among junk writes', () => {
    const d = dev();
    const w = announceWrites(announce[1]!);
    write(d, [new Uint8Array(19).fill(0xb0), w[4]!, w[2]!, w[2]!, new Uint8Array(20).fill(0xbf), w[0]!, w[5]!, new Uint8Array(16), w[1]!, w[3]!, w[0]!]);
    expect(d.sim.renewalVerifies).toBe(1);
    expect(rekeys(d).length).toBe(5);
    write(d, [renewAck(d.i, 1, lastEnc(d))]);
    expect(d.sim.consoleLines.some((l) => l.includes('epoch 1 committed'))).toBe(true);
    d.clock.advance(3000);
    expect(d.sim.sealedLog[d.sim.sealedLog.length - 1]!.key).not.toBe(d.factory);
  });

  const forged: Array<[string, () => Uint8Array, RegExp]> = [
    ['signed by the factory key', () => signed(announce[1]!, fleet.factory.privateFile.key), /signature does not verify/],
    ['signed by a random key', () => signed(announce[1]!, new Uint8Array(randomBytes(32))), /signature does not verify/],
    ['for another fleet (signed by its own renewal key)', () => new Uint8Array(readFileSync(join(other.dir, 'announce-00000001.bin'))), /another fleet/],
    ['with nonzero flags (validly re-signed is impossible: forged)', () => Object.assign(announce[1]!.slice(), { 42: 1 }), /flags/],
  ];
  for (const [what, make, said] of forged) {
    it(`ignores an ANNOUNCE ${what}`, () => {
      const d = dev();
      write(d, announceWrites(make()));
      expect(d.sim.consoleLines.some((l) => said.test(l)), d.sim.consoleLines.join('\n')).toBe(true);
      expect(rekeys(d)).toEqual([]);
      staysOnFactoryKey(d);
    });
  }

  it('ignores an ANNOUNCE with any single bit flipped (signed part, key, signature)', () => {
    const d = dev();
    let verifies = 0;
    for (const bit of [0, 9, 17, 40, 50, 47 * 8 + 3, 80 * 8, 100 * 8 + 7, 107 * 8 + 7]) {
      const a = announce[1]!.slice();
      a[bit >> 3]! ^= 1 << (bit & 7);
      write(d, announceWrites(a));
      reconnect(d);
      verifies = d.sim.renewalVerifies;
    }
    expect(verifies).toBeGreaterThan(4); // those the cheap checks let through were verified, and refused
    expect(rekeys(d)).toEqual([]);
    staysOnFactoryKey(d);
  });

  it('verifies at most once per connection: junk first blocks the genuine one until the next connection', () => {
    const d = dev();
    write(d, announceWrites(signed(announce[1]!, new Uint8Array(randomBytes(32)))));
    write(d, announceWrites(announce[1]!));
    expect(d.sim.renewalVerifies).toBe(1);
    expect(rekeys(d)).toEqual([]);
    reconnect(d);
    write(d, announceWrites(announce[1]!));
    expect(d.sim.renewalVerifies).toBe(2);
    expect(rekeys(d).length).toBe(5);
  });

  it('loads the renewal module only for an ANNOUNCE part: junk writes and a stray RENEW_ACK do not', () => {
    const d = dev();
    const atBoot = d.sim.renewalLoads; // the boot scan of the counter log
    expect(atBoot).toBe(1);
    write(d, [new Uint8Array(5), new Uint8Array(16).fill(0xc5), new Uint8Array(20).fill(0xa0), new Uint8Array(13)]);
    expect(d.sim.renewalLoads).toBe(atBoot);
    write(d, [announceWrites(announce[1]!)[3]!]);
    expect(d.sim.renewalLoads).toBe(atBoot + 1);
    staysOnFactoryKey(d);
  });

  it('does nothing with a truncated ANNOUNCE or parts mixed from two announcements', () => {
    const d = dev();
    const a = announceWrites(announce[1]!);
    const b = announceWrites(announce[2]!);
    write(d, a.slice(0, 5));
    write(d, [a[5]!.subarray(0, 19)]);
    expect(d.sim.renewalVerifies).toBe(0);
    reconnect(d);
    // Parts 0..2 of epoch 1 then 0..5 of epoch 2 with 3..5 of epoch 1 after: a part that differs from the one held starts over.
    write(d, [a[0]!, a[1]!, a[2]!, b[3]!, b[4]!, a[5]!]);
    expect(rekeys(d)).toEqual([]);
    staysOnFactoryKey(d);
  });

  it('ignores an ANNOUNCE for its own epoch or an older one after renewing', () => {
    const d = dev();
    write(d, announceWrites(announce[2]!));
    write(d, [renewAck(d.i, 2, lastEnc(d))]);
    expect(d.sim.consoleLines.some((l) => l.includes('epoch 2 committed'))).toBe(true);
    d.clock.advance(2000);
    const k2 = d.sim.sealedLog[d.sim.sealedLog.length - 1]!.key;
    expect(k2).not.toBe(d.factory);
    for (const e of [2, 1]) {
      reconnect(d);
      write(d, announceWrites(announce[e]!));
      expect(d.sim.consoleLines.some((l) => l.includes(`ANNOUNCE for epoch ${e}, not above 2`))).toBe(true);
    }
    expect(rekeys(d).length).toBe(5);
    const before = d.sim.sealedLog.length;
    d.clock.advance(2000);
    expect(d.sim.sealedLog.slice(before).every((f) => f.key === k2)).toBe(true);
    expect(d.sim.sealedLog.length).toBeGreaterThan(before);
  });
});

describe('key renewal on the device: hostile RENEW_ACK and randomness', () => {
  it('refuses a forged RENEW_ACK, one of another device and one of another epoch; stays pending on its key', () => {
    const d = dev();
    write(d, announceWrites(announce[1]!));
    const enc = lastEnc(d);
    const real = renewAck(d.i, 1, enc);
    const forgedTag = real.slice();
    forgedTag[15]! ^= 1;
    const otherDevice = renewAck(d.i + 1, 1, enc);
    // The same device's genuine derivation for epoch 2 (as if the relay replayed an ack of another epoch).
    const otherEpoch = renewAck(d.i, 2, enc);
    const wrongEpochField = real.slice();
    wrongEpochField[4] = 2;
    write(d, [forgedTag, otherDevice, otherEpoch, wrongEpochField, new Uint8Array(16).fill(0xc5)]);
    expect(d.sim.consoleLines.some((l) => l.includes('committed'))).toBe(false);
    staysOnFactoryKey(d);
    // The genuine one still commits.
    write(d, [real]);
    expect(d.sim.consoleLines.some((l) => l.includes('epoch 1 committed'))).toBe(true);
  });

  it('resends the same enc after a power cut with PENDING written and no COMMIT', () => {
    const d = dev();
    write(d, announceWrites(announce[1]!));
    const enc = lastEnc(d);
    d.sim.powerOff();
    d.sim.boot();
    expect(d.sim.consoleLines.some((l) => l.includes('still pending after a restart'))).toBe(true);
    expect(hex(lastEnc(d))).toBe(hex(enc));
    expect(rekeys(d).length).toBe(10);
    // A genuine ANNOUNCE for the same epoch does not make a new enc.
    d.link = d.sim.radio!.connect(() => undefined);
    write(d, announceWrites(announce[1]!));
    expect(rekeys(d).length).toBe(10);
    write(d, [renewAck(d.i, 1, enc)]);
    expect(d.sim.consoleLines.some((l) => l.includes('epoch 1 committed'))).toBe(true);
  });

  const sources: Array<[string, () => () => number]> = [
    ['throws', () => () => {
      throw new Error('E.hwRand failed');
    }],
    ['gives a zero word', () => () => 0],
    ['repeats a word', () => () => 0x12345678],
  ];
  for (const [what, make] of sources) {
    it(`aborts cleanly when the random source ${what}, and renews on a later ANNOUNCE once it works`, () => {
      const d = dev(make());
      write(d, announceWrites(announce[1]!));
      expect(d.sim.consoleLines.some((l) => l.includes('no randomness'))).toBe(true);
      expect(rekeys(d)).toEqual([]);
      staysOnFactoryKey(d);
      d.sim.hwRand = undefined;
      reconnect(d);
      write(d, announceWrites(announce[1]!));
      expect(rekeys(d).length).toBe(5);
      write(d, [renewAck(d.i, 1, lastEnc(d))]);
      expect(d.sim.consoleLines.some((l) => l.includes('epoch 1 committed'))).toBe(true);
    });
  }
});

describe('key renewal on the device: one renewal after another', () => {
  it('renews 0 -> 1 (after a restart with PENDING), then 1 -> 2 from chain_1, and keeps epoch 2 across page swaps', () => {
    const d = dev();
    const dv = fleet.devices[d.i]!;
    write(d, announceWrites(announce[1]!));
    const enc1 = lastEnc(d);
    d.sim.powerOff();
    d.sim.boot();
    d.link = d.sim.radio!.connect(() => undefined);
    const k1 = serverRenew({ serial: dv.serial, fromEpoch: 0, toEpoch: 1, chain: dv.chain }, ingest[1]!.key, enc1);
    write(d, [makeRenewAck(k1, 1)]);
    expect(d.sim.consoleLines.some((l) => l.includes('epoch 1 committed'))).toBe(true);
    const pendingSaid = d.sim.consoleLines.filter((l) => l.includes('still pending')).length;
    reconnect(d); // the renewal object goes; the next ANNOUNCE loads a fresh one
    write(d, announceWrites(announce[2]!));
    expect(d.sim.consoleLines.filter((l) => l.includes('still pending')).length).toBe(pendingSaid);
    expect(d.sim.consoleLines.some((l) => l.includes('epoch 2 pending'))).toBe(true);
    const enc2 = lastEnc(d);
    // REKEY for epoch 2 went out under K_1.
    expect(rekeys(d).slice(-5).every((f) => f.key === hex(k1.sealKey))).toBe(true);
    const k2 = serverRenew({ serial: dv.serial, fromEpoch: 1, toEpoch: 2, chain: k1.chain }, ingest[2]!.key, enc2);
    write(d, [makeRenewAck(k2, 2)]);
    expect(d.sim.consoleLines.some((l) => l.includes('epoch 2 committed'))).toBe(true);
    // Reboots fill two and a half pages: the records of epoch 2 are carried each time.
    for (let i = 0; i < 620; i++) {
      d.sim.powerOff();
      d.sim.boot();
    }
    d.clock.advance(2000);
    const tail = d.sim.sealedLog.filter((f) => f.power === d.sim.boots);
    expect(tail.length).toBeGreaterThan(0);
    expect(tail.every((f) => f.key === hex(k2.sealKey))).toBe(true);
    expect(reusedNonces(d.sim)).toEqual([]);
  });
});
