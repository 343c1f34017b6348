// Key renewal on the device (issue #17 item 3, item 5a): the real firmware (firmware/device.ts with
// firmware/renewal.ts, hal/plain/renewal-crypto.ts) on the sim board renews against the real server
// (in process, SQLite): ANNOUNCE from an uplink answer, REKEY, RENEW_ACK, COMMIT, later frames under
// K_1 stored; a reboot after COMMIT stays on epoch 1; a format-1 device says once that it cannot renew.
import { afterEach, describe, expect, it } from 'vitest';
import { decodeDeviceFile, encodeDeviceFile, openFrame } from '../../protocol/index.js';
import { readU32BE } from '../../protocol/wire/be.js';
import { SimDevice } from '../../sim/device.js';
import { boardProfile } from '../../boards/index.js';
import { renewalWorld, session, simRenewalDevice, type RenewalWorld } from '../helpers/sim-renewal.js';

let world: RenewalWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const epochRows = async (w: RenewalWorld, serial: string) => w.storage.epochs.rows([serial]);

describe('key renewal on the simulated device, against the server', () => {
  for (const store of ['flash-pages', 'storage-log'] as const) {
    it(`renews end to end and stays on epoch 1 after a reboot (${store})`, async () => {
      const w = (world = await renewalWorld(1, store === 'flash-pages' ? 'SP-SRP' : 'SP-SRL'));
      const sim = simRenewalDevice(w, 0, { counterStore: store });
      const serial = w.fleet.devices[0]!.serial;
      sim.boot();
      w.clock.advance(3000);
      // First connection: frames under K_0, the answer carries ack + ANNOUNCE; the device seals REKEY.
      const s1 = await session(w, sim, 3000);
      expect(s1.answers[0].downlink.length).toBe(7);
      expect(sim.consoleLines.some((l) => l.endsWith('renewal: epoch 1 pending'))).toBe(true);
      const rekeys = sim.sealedLog.filter((f) => f.plaintext[0]! >= 0x30 && f.plaintext[0]! <= 0x34);
      expect(rekeys.map((f) => f.plaintext[0])).toEqual([0x30, 0x31, 0x32, 0x33, 0x34]);
      expect(rekeys.map((f) => f.counter - rekeys[0]!.counter)).toEqual([0, 1, 2, 3, 4]);
      // The RENEW_ACK came in the same session (REKEY went out after ANNOUNCE); the device committed.
      const committed = sim.consoleLines.find((l) => /renewal: epoch 1 committed from counter \d+/.test(l));
      expect(committed, sim.consoleLines.join('\n')).toBeDefined();
      const ce = Number(/from counter (\d+)/.exec(committed!)![1]);
      expect((ce - 1) % 16).toBe(0);
      expect(ce).toBeGreaterThan(rekeys[4]!.counter);
      // Frames after c_e are under K_1: the server stores them, its row is committed at c_e.
      const s2 = await session(w, sim, 4000);
      expect(s2.answers.every((a) => a.rejected.length === 0)).toBe(true);
      const rows = await epochRows(w, serial);
      const row = rows.find((r) => r.epoch === 1)!;
      expect(row.state).toBe('committed');
      expect(row.commitCounter).toBe(ce);
      const dev = w.fleet.devices[0]!;
      const after = s2.uploaded.map((f) => readU32BE(f, 0)).filter((c) => c >= ce);
      expect(after.length).toBeGreaterThan(5);
      const stored = await w.storage.readings(serial, { limit: 10000 } as any);
      expect(stored.some((r: any) => r.counter >= ce)).toBe(true);
      // A frame at or after c_e does not open under K_0.
      const f = s2.uploaded.find((x) => readU32BE(x, 0) >= ce)!;
      expect(() => openFrame(dev, f, 20)).toThrow();
      // Reboot: the device comes back on epoch 1 (keys from the log), the server opens what it seals.
      sim.powerOff();
      sim.boot();
      w.clock.advance(2000);
      const s3 = await session(w, sim, 3000);
      expect(s3.uploaded.length).toBeGreaterThan(0);
      expect(s3.answers.every((a) => a.rejected.length === 0 && a.accepted > 0)).toBe(true);
      expect(s3.answers.some((a) => (a.downlink ?? []).length > 1)).toBe(false); // no ANNOUNCE: the server sees it on the latest epoch
      expect(sim.sealedLog.filter((x) => x.power === 2).every((x) => x.counter > ce)).toBe(true);
    });
  }

  it('a format-1 device never renews and says so once', async () => {
    const w = (world = await renewalWorld(1, 'SP-SR1'));
    const d = w.fleet.devices[0]!;
    const file = encodeDeviceFile({ serial: d.serial, frameSize: 20, sealKey: d.sealKey, nonceSalt: d.nonceSalt });
    expect(decodeDeviceFile(file).renewal).toBeUndefined();
    const sim = new SimDevice({ clock: w.clock, profile: boardProfile('sim'), deviceFile: file, seed: 7 });
    sim.boot();
    await session(w, sim, 3000);
    await session(w, sim, 3000);
    const said = sim.consoleLines.filter((l) => l.includes('cannot renew'));
    expect(said).toEqual([`sealpost ${d.serial}: cannot renew: device file format 1 has no renewal key; provision the device again with --renewal-pub`]);
    expect(sim.renewalLoads).toBe(0);
    expect(sim.sealedLog.some((f) => f.plaintext[0]! >= 0x30 && f.plaintext[0]! <= 0x34)).toBe(false);
    expect((await epochRows(w, d.serial)).length).toBe(0);
  });
});
