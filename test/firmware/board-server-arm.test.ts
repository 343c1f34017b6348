// Opt-in (ESPRUINO_ARM_BIN: Espruino 2v29 for 32-bit ARM Linux under qemu-arm, ../shared/espruino):
// the MDBT42Q bundle as flashed (dist/mdbt42q.js as .bootcde, the kernel files, a format-2 device file
// from a key set made by `keys init`, the counter log) bridged to a real `sealpost server` process over
// HTTP by test/helpers/board-server.ts (issue #17 item 5(d)). What it shows:
// - plain operation: every notification the board sends is stored by the server (nothing rejected),
//   the acks the server answers with are honoured (after a new connection the board sends nothing at
//   or below the acked counter: the outbox freed them), GET /v1/devices/:serial counts the frames;
// - key renewal end to end: `keys renew` makes epoch 1, the server restarts with it, the board gets
//   ANNOUNCE in a downlink, loads the renewal module, verifies, derives with the kernels, sends REKEY,
//   gets RENEW_ACK and commits; later frames are stored under epoch 1 (GET /v1/devices/:serial: epoch 1,
//   committed), every counter the server lacks is inside a gap it reports, and after a restart of the
//   interpreter (a power cycle) the board stays on epoch 1. It logs the renewal's wall time (qemu
//   emulation, not a board figure), the variables in use before, during and after, and Storage bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boardProfile } from '../../boards/index.js';
import { FIRMWARE_VERSION } from '../../firmware/version.js';
import { BoardRelay, boardWorld, renewalModuleFiles, type BoardWorld } from '../helpers/board-server.js';

const BIN = process.env.ESPRUINO_ARM_BIN;
const BOARD = boardProfile('mdbt42q');
/**
 * The renewal module the build leaves in dist/ for boards. The board bundles carry no renewal yet
 * (hal/features.ts, RENEWAL off for boards; docs/firmware.md "Renewal on the interpreter, end to
 * end" for what a trial build with it on met): until the build makes the module, the renewal case is
 * skipped and says so.
 */
const MODULE = renewalModuleFiles();
const RENEWS = Object.keys(MODULE).length > 0;

describe.runIf(BIN)('dist/mdbt42q.js on the 32-bit ARM interpreter against sealpost server over HTTP ($ESPRUINO_ARM_BIN)', () => {
  let world: BoardWorld;
  beforeAll(async () => {
    world = await boardWorld(BIN!, BOARD.id, 'SP-E2E00001', MODULE);
    await world.startServer();
  }, 300_000);
  afterAll(async () => {
    await world?.close();
  });

  it('sends frames the server stores and honours the acks it answers with', async () => {
    const relay = new BoardRelay(BIN!, world);
    try {
      await relay.session.waitFor((l) => l.startsWith(`sealpost ${world.serial} kcv `), 180_000);
      expect(relay.session.lines).toContainEqual(expect.stringMatching(new RegExp(`^sealpost ${world.serial} kcv [0-9a-f]+ fw ${FIRMWARE_VERSION}$`)));
      // Boot anchor, connect anchor and a few samples (the prelude runs the clock 50 times faster).
      await relay.until('an ack for counter 4 or more', () => relay.acked >= 4, 240_000);
      expect(relay.answers.every((a) => a.rejected.size === 0)).toBe(true);

      relay.paused = true;
      await relay.settle();
      const acked = relay.acked;
      const cut = await relay.relink();
      const sent = () => relay.notified.filter((n) => n.line > cut).map((n) => n.counter);
      await relay.until('frames after a new connection', () => sent().length >= 2, 120_000);
      const after = sent();
      // Nothing the server acked comes again: the outbox freed it.
      expect(Math.min(...after)).toBeGreaterThan(acked);
      relay.paused = false;
      await relay.until('the frames after the new connection acked', () => relay.acked >= Math.max(...after), 120_000);
      relay.paused = true;
      await relay.settle();

      const counters = new Set(relay.notified.map((n) => n.counter));
      const dev = await world.get(`/v1/devices/${world.serial}`);
      expect(dev).toMatchObject({ serial: world.serial, board: BOARD.id, status: 'active', epoch: 0, frames: counters.size });
      expect(dev.settled).toBeGreaterThanOrEqual(Math.max(...after));
      expect(relay.answers.every((a) => a.rejected.size === 0)).toBe(true);
      expect(relay.failures).toEqual([]);
    } finally {
      await relay.stop();
    }
  }, 600_000);

  it.skipIf(!RENEWS)(`renews to epoch 1 against the server${RENEWS ? '' : ' (skipped: the build makes no dist/sealpost.rnw for boards yet)'}, stores later frames under epoch 1, and stays on it after a restart`, async () => {
    const serial = world.serial;
    const said = (what: string) => (l: string) => l === `sealpost ${serial}: renewal: ${what}`;
    let relay = new BoardRelay(BIN!, world);
    try {
      await relay.session.waitFor((l) => l.startsWith(`sealpost ${serial} kcv `), 180_000);
      await relay.until('an ack on epoch 0', () => relay.acked > 0, 240_000);
      relay.paused = true;
      await relay.settle();
      const before = await relay.variables();
      const freeBefore = Number(await relay.eval('require("Storage").getFree()'));

      world.fleet.renew(); // what `sealpost keys renew` does: epoch 1's ingest key and ANNOUNCE file
      await world.stopServer();
      await world.startServer();
      const t0 = Date.now();
      relay.paused = false;
      await relay.session.waitFor(said('epoch 1 pending'), 600_000);
      const tPending = Date.now();
      const during = await relay.variables();
      const wrote = relay.writes.length;
      console.log(`board-server-arm ${BOARD.id}: server start with epoch 1 -> PENDING ${tPending - t0} ms wall (qemu-arm emulation on a shared x86 host, not a board figure); variables before ${before}, at PENDING ${during}; downlink writes so far ${wrote}`);
      const committed = await relay.session.waitFor((l) => l.startsWith(`sealpost ${serial}: renewal: epoch 1 committed from counter `), 600_000);
      const tCommit = Date.now();
      const ce = Number(/from counter (\d+)$/.exec(committed)![1]);
      expect(ce % BOARD.device.counterBlock).toBe(1);
      await relay.until('frames at or above c_1 acked', () => relay.acked >= ce + 1, 300_000);
      relay.paused = true;
      await relay.settle();
      // The module is dropped at the next connection once no renewal is open.
      await relay.relink();
      const after = await relay.variables();
      const freeAfter = Number(await relay.eval('require("Storage").getFree()'));

      const dev = await world.get(`/v1/devices/${serial}`);
      expect(dev).toMatchObject({ serial, epoch: 1, renewal: 'committed' });
      expect(relay.answers.every((a) => a.rejected.size === 0)).toBe(true);
      console.log(
        `board-server-arm ${BOARD.id}: renewal ANNOUNCE-bearing server start -> PENDING ${tPending - t0} ms, -> COMMIT ${tCommit - t0} ms wall (qemu-arm emulation on a shared x86 host, not a board figure); ` +
          `variables before ${before}, during (PENDING) ${during}, after (next connection) ${after}; Storage free ${freeBefore} -> ${freeAfter} bytes`,
      );
    } finally {
      await relay.stop();
    }

    // A power cycle: the board boots on epoch 1 and the server opens what it sends.
    relay = new BoardRelay(BIN!, world);
    try {
      await relay.session.waitFor((l) => l.startsWith(`sealpost ${serial} kcv `), 180_000);
      const stored = (await world.get(`/v1/devices/${serial}`)).frames as number;
      await relay.until('frames of the new boot acked', () => relay.answers.some((a) => a.accepted > 0) && relay.acked > 0, 300_000);
      relay.paused = true;
      await relay.settle();
      expect(relay.answers.every((a) => a.rejected.size === 0)).toBe(true);
      const dev = await world.get(`/v1/devices/${serial}`);
      expect(dev).toMatchObject({ serial, epoch: 1, renewal: 'committed' });
      expect(dev.frames).toBeGreaterThan(stored);
      expect(relay.session.lines.some((l) => l.includes(': renewal: '))).toBe(false);
      // Every frame the board sent is stored, and no loss that was not reported: every counter below
      // the highest it sent that it never sent is inside a gap the server shows.
      expect(dev.frames).toBe(world.sent.size);
      const gaps = (await world.get(`/v1/devices/${serial}/gaps`)).gaps as { first: number; last: number; kind: string }[];
      const unexplained: number[] = [];
      for (let c = 1; c <= Math.max(...world.sent); c++) if (!world.sent.has(c) && !gaps.some((g) => c >= g.first && c <= g.last)) unexplained.push(c);
      console.log(`board-server-arm ${BOARD.id}: ${world.sent.size} frames stored, gaps ${JSON.stringify(gaps)}`);
      expect(unexplained).toEqual([]);
    } finally {
      await relay.stop();
    }
  }, 1_800_000);
});
