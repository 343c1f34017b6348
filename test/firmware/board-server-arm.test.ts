// Opt-in (ESPRUINO_ARM_BIN: Espruino 2v29 for 32-bit ARM Linux under qemu-arm, ../shared/espruino):
// the MDBT42Q bundle as flashed (dist/mdbt42q.js as .bootcde, the kernel files, a format-2 device file
// from a key set made by `keys init`, the counter log) bridged to a real `sealpost server` process over
// HTTP by test/helpers/board-server.ts (issue #17 item 5(d)). What it shows:
// - plain operation: every notification the board sends is stored by the server (nothing rejected),
//   the acks the server answers with are honoured (after a new connection the board sends nothing at
//   or below the acked counter: the outbox freed them), GET /v1/devices/:serial counts the frames.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boardProfile } from '../../boards/index.js';
import { FIRMWARE_VERSION } from '../../firmware/version.js';
import { BoardRelay, boardWorld, type BoardWorld } from '../helpers/board-server.js';

const BIN = process.env.ESPRUINO_ARM_BIN;
const BOARD = boardProfile('mdbt42q');

describe.runIf(BIN)('dist/mdbt42q.js on the 32-bit ARM interpreter against sealpost server over HTTP ($ESPRUINO_ARM_BIN)', () => {
  let world: BoardWorld;
  beforeAll(async () => {
    world = await boardWorld(BIN!, BOARD.id);
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
});
