// Key renewal through power cuts (issue #17 item 5a for the device): the real firmware on the sim
// board's NOR flash model (hal/sim/nor-flash.ts, torn words on) loses power after every word written
// and during every erase of a renewal, at every step: ANNOUNCE, PENDING, REKEY, RENEW_ACK, COMMIT, and
// the flash page swap that carries the renewal records over. After each cut the device boots again and
// meets the server on later connections: no nonce is ever reused under any key, the server opens every
// frame it is sent, and the renewal finishes (the server's row committed, the device sealing under K_1).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readU32BE } from '../../protocol/wire/be.js';
import { seededRandom } from '../../hal/sim/random.js';
import { renewalWorld, reusedNonces, session, simRenewalDevice, type RenewalWorld } from '../helpers/sim-renewal.js';
import type { SimDevice } from '../../sim/device.js';

let w: RenewalWorld;
let next = 0;
beforeAll(async () => {
  w = await renewalWorld(700, 'SP-PC');
});
afterAll(async () => {
  await w?.close();
});

const PAGE_SLOTS = (1024 - 32) / 4;

/** A device of the fleet with `prefill` boots already recorded (slots used before the renewal). */
type Medium = 'flash-pages' | 'storage-log';

function device(prefill: number, seed: number, medium: Medium): SimDevice {
  const sim = simRenewalDevice(w, next++, { counterStore: medium, flash: { tornWords: true, random: seededRandom(seed) } });
  // As `prefill` earlier boots leave the first page (or the log file): one block record (boot, complement) each.
  const into = medium === 'storage-log' ? sim.log!.bytes : sim.flash.bytes;
  const at = medium === 'storage-log' ? 4 : 32;
  for (let b = 1; b <= prefill; b++) into.set([b >> 8, b & 255, ~b >> 8 & 255, ~b & 255], at + 4 * (b - 1));
  sim.boot();
  expect(sim.device!.status().boot).toBe(prefill + 1);
  w.clock.advance(2000);
  return sim;
}

interface Outcome {
  cut: boolean;
  kind?: string;
  sessions: number;
}

/** The renewal with a power cut after `k` flash operations from the first connection on; then reboots and reconnects until renewed. */
async function run(prefill: number, k: number | undefined, seed: number, medium: Medium = 'flash-pages'): Promise<{ sim: SimDevice; out: Outcome }> {
  const sim = device(prefill, seed, medium);
  const serial = w.fleet.devices[next - 1]!.serial;
  const store = medium === 'storage-log' ? sim.log! : sim.flash;
  if (k !== undefined) store.cutAfter(k);
  const stopIf = () => store.off;
  await session(w, sim, 1600, { stopIf, stepMs: 400 });
  const out: Outcome = { cut: store.off, kind: medium === 'storage-log' ? 'write' : sim.flash.lastCut, sessions: 1 };
  if (store.off) {
    sim.powerOff();
    sim.boot();
    w.clock.advance(1000);
  }
  for (let i = 0; i < 4; i++) {
    const rows = await w.storage.epochs.rows([serial]);
    const row = rows.find((r) => r.epoch === 1);
    if (row?.state === 'committed' && sim.consoleLines.some((l) => l.includes('committed'))) break;
    const s = await session(w, sim, 1600, { stepMs: 400 });
    out.sessions++;
    for (const a of s.answers) expect(a.rejected, `${serial} cut after ${k}: the server refused frames`).toEqual([]);
  }
  // One more connection on the new key: everything it sends opens.
  const last = await session(w, sim, 800, { stepMs: 400 });
  expect(last.answers.length).toBeGreaterThan(0);
  for (const a of last.answers) expect(a.rejected).toEqual([]);
  const row = (await w.storage.epochs.rows([serial])).find((r) => r.epoch === 1);
  expect(row?.state, `${serial} (prefill ${prefill}, cut after ${k} ops, ${out.kind}): renewal not committed\n${sim.consoleLines.join('\n')}`).toBe('committed');
  expect(reusedNonces(sim), `${serial} cut after ${k}`).toEqual([]);
  // The device seals under K_1 now: the last frames' key is not the factory key, and from c_e on.
  const factory = Buffer.from(w.fleet.devices[next - 1]!.sealKey).toString('hex');
  const tail = sim.sealedLog[sim.sealedLog.length - 1]!;
  expect(tail.key).not.toBe(factory);
  expect(tail.counter).toBeGreaterThanOrEqual(row!.commitCounter!);
  for (const f of sim.sealedLog) if (f.key !== factory) expect(f.counter).toBeGreaterThanOrEqual(row!.commitCounter!);
  return { sim, out };
}

describe('key renewal on the device through power cuts (NOR model, torn words)', () => {
  it('every third byte of a renewal on the Storage counter log (a cut inside any byte position of a word)', async () => {
    const clean = await run(0, undefined, 1, 'storage-log');
    expect(clean.out.cut).toBe(false);
    const bytes = clean.sim.log!.written;
    let cuts = 0;
    for (let k = 0; ; k += 3) {
      const { sim, out } = await run(0, k, 2000 + k, 'storage-log');
      if (!out.cut) break;
      cuts++;
      expect(sim.log!.cuts.midWrite + sim.log!.cuts.beforeWrite).toBe(1);
      expect(k).toBeLessThan(bytes + 200);
    }
    console.log(`renewal power cuts, storage log: ${cuts} cut points (every third of ${bytes} bytes written)`);
    expect(cuts).toBeGreaterThan(70);
  }, 600_000);

  it('keeps epoch 1 across reboots that fill page after page (the records are carried to each new page)', async () => {
    const { sim } = await run(0, undefined, 7);
    const serial = w.fleet.devices[next - 1]!.serial;
    const factory = Buffer.from(w.fleet.devices[next - 1]!.sealKey).toString('hex');
    const headerEpoch = () => Math.max(...[0, 1].map((p) => readU32BE(sim.flash.bytes, p * 1024 + 4) ^ 0 || 0));
    const before = headerEpoch();
    // Each boot records one block: 2.5 pages of boots swap pages at least twice.
    for (let i = 0; i < Math.ceil(2.5 * PAGE_SLOTS); i++) {
      sim.powerOff();
      sim.boot();
    }
    expect(headerEpoch()).toBeGreaterThanOrEqual(before + 2);
    w.clock.advance(2000);
    const s = await session(w, sim, 3000);
    expect(s.answers.length).toBeGreaterThan(0);
    for (const a of s.answers) expect(a.rejected).toEqual([]);
    const last = sim.sealedLog[sim.sealedLog.length - 1]!;
    expect(last.key).not.toBe(factory);
    expect(sim.sealedLog.filter((f) => f.power === sim.boots).every((f) => f.key === last.key)).toBe(true);
    expect((await w.storage.epochs.rows([serial])).find((r) => r.epoch === 1)?.state).toBe('committed');
    expect(reusedNonces(sim)).toEqual([]);
  });

  // prefill 0: no page swap; near the page end: the swap (erase, header, carried records) falls
  // inside PENDING, REKEY or COMMIT.
  for (const prefill of [0, PAGE_SLOTS - 52, PAGE_SLOTS - 45, PAGE_SLOTS - 12]) {
    it(`every cut point of a renewal, ${prefill} boots recorded before it`, async () => {
      const clean = await run(prefill, undefined, 1);
      expect(clean.out.cut).toBe(false);
      const ops = clean.sim.flash.ops;
      let cuts = 0;
      const kinds = { write: 0, erase: 0 };
      for (let k = 0; ; k++) {
        const { out } = await run(prefill, k, 1000 + k);
        if (!out.cut) break;
        cuts++;
        kinds[out.kind as 'write' | 'erase']++;
        expect(k).toBeLessThan(ops + 50);
      }
      console.log(`renewal power cuts, prefill ${prefill}: ${cuts} cut points (${kinds.write} in a word write, ${kinds.erase} in an erase)`);
      expect(cuts).toBeGreaterThan(56);
      if (prefill > 0) expect(kinds.erase).toBeGreaterThan(0);
    }, 600_000);
  }
});
