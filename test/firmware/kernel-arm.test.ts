// Opt-in (ESPRUINO_ARM_BIN: Espruino 2v29 built for 32-bit ARM Linux with USE_JIT=1, run by qemu-arm,
// ../shared/espruino): the MDBT42Q and Puck.js firmware bundles, as flashed, with the compiled kernel
// as the Storage file sealpost.krn, on an interpreter whose E.nativeCall executes the Thumb code. The
// prelude (test/helpers/board-prelude.ts) stands in for NRF and the battery. What it shows:
// - first boot, with the kernel executed in place (the prelude hands the backend a flat string
//   with a non-zero address for sealpost.krn, as memory-mapped flash is on a board): boot line with
//   the key check value (aes_block), frames that open on the host, a forged ack ignored, a valid
//   one honoured;
// - a restart in the same directory (a power cycle), now on the Linux build's own Storage string
//   (address 0, so the backend copies the image into a flat string): boot 2, first counter on a
//   fresh block;
// - a damaged kernel file: the firmware says why and puts no frame on the air;
// - the crypto self-test bundle with all four backends.
// The Linux builds keep Storage in ./espruino.flash, so each case runs in its own directory.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boardProfile } from '../../boards/index.js';
import type { BoardProfile } from '../../boards/types.js';
import { FIRMWARE_VERSION } from '../../firmware/version.js';
import { decodePlaintext, makeAck, openFrame, toHex } from '../../protocol/index.js';
import { counterLogImage } from '../../protocol/wire/counter-log.js';
import { KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { kernelImage } from '../../sim/espruino/kernel.js';
import { provisionSim } from '../helpers/sim-fleet.js';
import { flashLikeABoard, startEspruino, writeStorageInPieces as writeStorage } from '../helpers/espruino-process.js';
import { prelude } from '../helpers/board-prelude.js';
import { ackVectors, sealVectors } from '../helpers/vectors.js';

const BIN = process.env.ESPRUINO_ARM_BIN;
const DIST = new URL('../../dist/', import.meta.url).pathname;
/** The native-kernel boards run here: MDBT42Q, the module products are built on, and Puck.js. */
const BOARDS = ['mdbt42q', 'puckjs'].map((id) => boardProfile(id));
/** The codec channels each sensor of a profile gives (board-prelude.ts stands in for the readings). */
const CHANNELS: Record<string, string[]> = { temperature: ['temperature'], battery: ['battery'], battery_voltage: ['battery_voltage'], light: ['light'], magnetometer: ['magnetic_x', 'magnetic_y', 'magnetic_z'] };

async function boot(dir: string, until: (line: string) => boolean, ms: number): Promise<string[]> {
  const session = startEspruino(BIN!, dir);
  try {
    await session.waitFor(until, ms);
  } finally {
    await session.stop();
  }
  return session.lines;
}

function setUp(board: BoardProfile, kernel: Uint8Array) {
  const prov = provisionSim(`SP-${board.id.toUpperCase()}-ARM1`, board.frameSize);
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-kernel-arm-'));
  writeStorage(BIN!, dir, { 'sealpost.dev': prov.deviceFile, 'sealpost.ctr': counterLogImage(8192), [KERNEL_FILE_NAME]: kernel, '.bootcde': new Uint8Array(readFileSync(`${DIST}${board.id}.js`)) });
  const acks: Record<number, string> = {};
  for (let n = 1; n <= 60; n++) acks[n] = toHex(makeAck(prov.keys, n));
  const forged = toHex(makeAck({ sealKey: prov.keys.sealKey, nonceSalt: new Uint8Array(8) }, 30));
  const run = async (kernelInPlace: boolean, withAcks = true) => {
    flashLikeABoard(BIN!, dir, {}, prelude(withAcks ? acks : {}, forged, { kernelInPlace, memoryAt: 3500 }));
    return boot(dir, (l) => l === 'DONE' || /crypto unusable/.test(l), 180_000);
  };
  const frames = (lines: string[]) => lines.flatMap((l, i) => (l.startsWith('FRAME ') ? [{ i, f: openFrame(prov.keys, Buffer.from(l.slice(6), 'hex'), board.frameSize) }] : []));
  return { prov, run, frames };
}

describe.runIf(BIN)('the native-kernel bundles with their compiled kernel on the 32-bit ARM interpreter ($ESPRUINO_ARM_BIN)', () => {
  for (const board of BOARDS) {
    it(`dist/${board.id}.js seals frames the host opens with the kernel in place, honours only a valid ack, and restarts on a fresh counter block with the kernel copied to RAM`, async () => {
      const { prov, run, frames } = setUp(board, kernelImage());
      const boot = `sealpost ${prov.serial} kcv ${toHex(prov.kcv)} fw ${FIRMWARE_VERSION}`;

      const lines = await run(true);
      expect(lines.find((l) => l.startsWith('KERNEL at '))).toMatch(/^KERNEL at [1-9]\d*$/);
      expect(lines).toContain(boot);
      const got = frames(lines);
      const firstSeen = [...new Set(got.map((x) => x.f.counter))];
      expect(firstSeen.slice(0, 4)).toEqual([1, 2, 3, 4]);
      expect(firstSeen).toEqual(firstSeen.map((_, i) => i + 1));
      expect(decodePlaintext(got[0]!.f.plaintext)).toMatchObject({ type: 'anchor', boot: 1, reason: 0 });
      const names = new Set(got.flatMap(({ f }) => (d => (d.type === 'sample' ? d.readings.map((r) => r.name) : []))(decodePlaintext(f.plaintext))));
      expect([...names].sort()).toEqual(board.device.sensors.flatMap((id) => CHANNELS[id]!).sort());
      const forgedAt = lines.indexOf('FORGED');
      const ackLine = lines.findIndex((l) => l.startsWith('ACK '));
      const acked = Number(lines[ackLine]!.slice(4));
      expect(acked).toBeGreaterThan(2);
      expect(got.filter((x) => x.i > forgedAt && x.i < ackLine).map((x) => x.f.counter)).toContain(1);
      const later = got.filter((x) => x.i > ackLine).map((x) => x.f.counter);
      expect(later.length).toBeGreaterThan(0);
      expect(Math.min(...later)).toBeGreaterThan(acked);

      const again = await run(false);
      expect(again).toContain(boot);
      const first = frames(again)[0]!.f;
      expect(first.counter).toBe(board.device.counterBlock + 1);
      expect(decodePlaintext(first.plaintext)).toMatchObject({ type: 'anchor', boot: 2, reason: 0 });
      // What a run holds after boot (process.memory().usage, of 2,630): in place, then with the image copied.
      console.log(`kernel-arm ${board.id}: usage after boot ${lines.find((l) => l.startsWith('MEM '))} in place, ${again.find((l) => l.startsWith('MEM '))} copied`);
    }, 300_000);

    it(`dist/${board.id}.js refuses a damaged kernel file: says why, no GATT service, no frame`, async () => {
      const damaged = kernelImage();
      damaged[900] ^= 0x01;
      const { prov, run } = setUp(board, damaged);
      // Without the 60 acks in the prelude: what the stand-ins hold is not on a board.
      const lines = await run(false, false);
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^sealpost ${prov.serial}: crypto unusable: kernel sealpost.krn is damaged or not this firmware's: flash the device again$`)));
      expect(lines.some((l) => l.startsWith('GATT ') || l.startsWith('FRAME '))).toBe(false);
    }, 300_000);
  }

  it('passes the crypto self-test with all four backends, RENEW_ACK included', async () => {
    // The self-test bundle as .bootcde, the vectors in .boot0, five seal vectors per boot (the
    // vectors of a whole file do not fit beside it in 2,630 variables), the acks with the first.
    const seal = sealVectors();
    const ack = ackVectors();
    // RENEW_ACK (domain 3, empty message): on native-kernel from aes_block (hal/espruino/kernel.ts kernelEmpty).
    const renew = (JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as { renew_ack: unknown[] }).renew_ack;
    expect(renew.length).toBeGreaterThan(3);
    const dir = mkdtempSync(join(tmpdir(), 'sealpost-kernel-selftest-'));
    writeStorage(BIN!, dir, { [KERNEL_FILE_NAME]: kernelImage(), '.bootcde': new Uint8Array(readFileSync(`${DIST}crypto-selftest.js`)) });
    for (let from = 0; from < seal.length; from += 5) {
      const vectors = { seal: seal.slice(from, from + 5), ack: from === 0 ? ack : [], renew: from === 0 ? renew : [] };
      flashLikeABoard(BIN!, dir, {}, `var SEALPOST_VECTORS=${JSON.stringify(vectors)};`);
      const lines = (await boot(dir, (l) => /^SELFTEST (PASS|FAIL)/.test(l), 300_000)).filter((l) => l.startsWith('SELFTEST'));
      const all = `seal ${vectors.seal.length}/${vectors.seal.length} ack ${vectors.ack.length}/${vectors.ack.length} renew ${vectors.renew.length}/${vectors.renew.length}`;
      expect(lines, `seal vectors ${from}..${from + 4}`).toEqual([`SELFTEST plain-js ${all}`, `SELFTEST native-aes ${all}`, `SELFTEST native-ccm ${all}`, `SELFTEST native-kernel ${all}`, 'SELFTEST PASS']);
    }
  }, 1_800_000);
});
