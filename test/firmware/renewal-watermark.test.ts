// After a renewal the server's ack must keep up with the device without a reboot (found by the
// renewal chaos run, test/sim/renewal-chaos.test.ts). A renewal moves the device's counters twice:
// REKEY is sealed from a fresh counter block (after the PENDING record) and COMMIT starts the new
// key at c_e, the first counter of a fresh block. The counters skipped at each move are never
// sealed; unless the device says so, the server's watermark N ("everything up to N is stored or in
// a gap") stops below the first skipped counter for good, every later ack frees nothing, and the
// device's outbox fills and drops frames until the next power cut happens to move the watermark.
import { readU32BE } from '../../protocol/wire/be.js';
import { counterAt } from '../../firmware/outbox.js';
import { afterEach, describe, expect, it } from 'vitest';
import { renewalWorld, session, simRenewalDevice, type RenewalWorld } from '../helpers/sim-renewal.js';

let world: RenewalWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('acks after a renewal, without a reboot', () => {
  for (const store of ['flash-pages', 'storage-log'] as const) {
    it(`the watermark crosses the counters a renewal skips; the outbox empties (${store})`, async () => {
      const w = (world = await renewalWorld(1, store === 'flash-pages' ? 'SP-WMP' : 'SP-WML'));
      const sim = simRenewalDevice(w, 0, { counterStore: store });
      const serial = w.fleet.devices[0]!.serial;
      sim.boot();
      w.clock.advance(3000);
      const first = await session(w, sim, 3000);
      expect(sim.consoleLines.some((l) => /renewal: epoch 1 committed from counter \d+/.test(l)), sim.consoleLines.join('\n')).toBe(true);
      // Two more connections on the same power-up, a few samples each.
      const second = await session(w, sim, 4000);
      const last = await session(w, sim, 4000);
      const sealed = sim.sealedLog.map((f) => f.counter);
      const uploaded = [first, second, last].flatMap((s) => s.uploaded.map((f) => readU32BE(f, 0)));
      const row = await w.storage.device(serial);
      // Every counter the relay carried is at or below the watermark (stored or in a gap), and the
      // device holds only what it sealed after the last upload.
      expect(row!.settled).toBe(Math.max(...uploaded));
      expect(Math.max(...sealed) - row!.settled).toBeLessThan(10);
      expect(last.answers.at(-1).rejected).toEqual([]);
      const ob = sim.device!.outbox;
      for (let i = 0; i < ob.count; i++) expect(counterAt(ob, i)).toBeGreaterThan(row!.settled);
      expect(sim.device!.status().dropped).toBe(0);
      const stored = new Set((await w.storage.frames(serial)).map((f) => f.counter));
      for (const c of sealed.filter((c) => c <= row!.settled)) expect(stored.has(c), `counter ${c} stored`).toBe(true);
      // What lies in gaps was never sealed: the skipped counters, not lost frames.
      for (const g of await w.storage.gaps(serial)) for (let c = g.first; c < g.first + g.count; c++) expect(sealed.includes(c), `gap counter ${c} was sealed`).toBe(false);
    });
  }
});
