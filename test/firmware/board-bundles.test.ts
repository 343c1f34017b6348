// The BLE board bundles of dist/ (puckjs, mdbt42q, pixljs, banglejs2,
// nrf52840dk), minified as they are flashed, run against stand-ins for the
// board's builtins (sim/espruino/board.ts): boot line, GATT service,
// advertising, console lock, paced notifications of frames the host opens
// (from the central's CCCD write, or 1.5 s after connecting without one),
// readings from the board's sensors, acks that free and acks that do not,
// resending, and nothing in Storage created or replaced at run time.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOARDS } from '../../boards/index.js';
import type { BoardProfile } from '../../boards/types.js';
import { counterLogImage, initialPageHeader } from '../../protocol/wire/counter-log.js';
import { FIRMWARE_VERSION } from '../../firmware/version.js';
import { ACK_UUID, decodePlaintext, FRAMES_UUID, INFO_UUID, makeAck, openFrame, SERVICE_UUID, toHex } from '../../protocol/index.js';
import { boardRig, FREE_AREA, PAGE, READINGS } from '../../sim/espruino/board.js';
import { kernelImage } from '../../sim/espruino/kernel.js';
import { KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { provisionSim, type Provisioned } from '../helpers/sim-fleet.js';
import { startEspruino, writeStorage } from '../helpers/espruino-process.js';
import { prelude } from '../helpers/board-prelude.js';

const DIST = new URL('../../dist/', import.meta.url).pathname;
const BLE_BOARDS = BOARDS.filter((b) => b.radio === 'ble');

/** What each sensor of a profile reads through the stand-ins, by codec channel, at the codec's resolution. */
const EXPECTED: Record<string, Record<string, number>> = {
  temperature: { temperature: READINGS.temperature },
  battery: { battery: READINGS.battery },
  battery_voltage: { battery_voltage: READINGS.batteryVoltage },
  light: { light: READINGS.light },
  magnetometer: { magnetic_x: READINGS.mag.x / 10, magnetic_y: READINGS.mag.y / 10, magnetic_z: READINGS.mag.z / 10 },
  acceleration: { acceleration: READINGS.accelMag },
};

/** Every channel the profile's sensors give, with its value through the stand-ins. */
function expectedReadings(board: BoardProfile): Record<string, number> {
  return Object.assign({}, ...board.device.sensors.map((s) => EXPECTED[s]));
}

/** What the factory reads at boot: serial, key check value, firmware version. */
function bootLine(prov: Provisioned): string {
  return `sealpost ${prov.serial} kcv ${toHex(prov.kcv)} fw ${FIRMWARE_VERSION}`;
}

/** The complete-local-name AD structure: "sealpost " and the serial's last 6 characters. */
function scanResponse(prov: Provisioned): number[] {
  const name = `sealpost ${prov.serial.slice(-6)}`;
  return [name.length + 1, 0x09, ...Buffer.from(name, 'latin1')];
}

/** An ack for counter n under the right key but another device's nonce salt. */
function forgedAck(prov: Provisioned, n: number): Uint8Array {
  return makeAck({ sealKey: prov.keys.sealKey, nonceSalt: new Uint8Array(8) }, n);
}

/** Kernel set-up of a native-kernel board: in place or copied, and a damaged, missing or miscomputing kernel. */
type KernelCase = { xip?: boolean; wrongOutput?: boolean; file?: 'flip' | 'none' };

function provisioned(board: BoardProfile, kernel: KernelCase = {}) {
  const prov = provisionSim(`SP-${board.id.toUpperCase()}-0042`, board.frameSize);
  const files: Record<string, Uint8Array> = { 'sealpost.dev': prov.deviceFile };
  if (board.counterStore.kind === 'storage-log') files['sealpost.ctr'] = counterLogImage(board.counterStore.bytes);
  if (board.crypto === 'native-kernel' && kernel.file !== 'none') {
    // As the factory writes it (sealpost flash), or with one bit flipped.
    files[KERNEL_FILE_NAME] = kernelImage();
    if (kernel.file === 'flip') files[KERNEL_FILE_NAME][333]! ^= 0x10;
  }
  const rig = boardRig(board, `${DIST}${board.id}.js`, files, { xip: kernel.xip, wrongOutput: kernel.wrongOutput });
  if (board.counterStore.kind === 'flash-pages') rig.flash.set(initialPageHeader(), FREE_AREA.length - 2 * PAGE);
  const open = (f: Uint8Array) => openFrame(prov.keys, f, board.frameSize);
  return { prov, rig, open };
}

describe('BLE board bundles on stand-ins for the board builtins', () => {
  it('cover every BLE board', () => {
    expect(BLE_BOARDS.map((b) => b.id).sort()).toEqual(['banglejs2', 'mdbt42q', 'nrf52840dk', 'pixljs', 'puckjs']);
  });

  for (const board of BLE_BOARDS) {
    describe(`dist/${board.id}.js`, () => {
      it('boots: boot line with the key check value, the GATT service, advertising with name and service, console closed after 3 s', () => {
        const { prov, rig } = provisioned(board);
        rig.start();
        expect(rig.lines).toEqual([bootLine(prov)]);

        expect(rig.gatt).toHaveLength(1);
        const { services, options } = rig.gatt[0]!;
        expect(Object.keys(services)).toEqual([SERVICE_UUID]);
        const chars = services[SERVICE_UUID]!;
        expect(Object.keys(chars).sort()).toEqual([FRAMES_UUID, ACK_UUID, INFO_UUID].sort());
        // Notified, never readable (readable defaults to false on Espruino).
        expect(chars[FRAMES_UUID]).toMatchObject({ maxLen: board.frameSize, notify: true });
        expect((chars[FRAMES_UUID] as { readable?: boolean }).readable).toBeFalsy();
        expect(chars[ACK_UUID]).toMatchObject({ maxLen: 12, writable: true });
        expect(chars[INFO_UUID]).toMatchObject({ readable: true });
        expect(JSON.parse(chars[INFO_UUID]!.value as string)).toEqual({ serial: prov.serial, v: 1, f: board.frameSize, b: board.id, fw: FIRMWARE_VERSION });
        expect(options).toEqual({ uart: false, advertise: [SERVICE_UUID] });
        // Connectable: 2v29 changes that flag only when `connectable` is given, and it starts connectable.
        expect(rig.advertising.at(-1)!.options).toMatchObject({ discoverable: true });
        expect((rig.advertising.at(-1)!.options as { connectable?: boolean }).connectable).not.toBe(false);
        expect(rig.scanResponse).toEqual([scanResponse(prov)]);

        rig.clock.advance(2999);
        expect(rig.console.locked).toBe(false);
        rig.clock.advance(1);
        expect(rig.console).toMatchObject({ locked: true, loopback: true });
        expect(rig.console.password).toMatch(/^[0-9a-z]{8,}$/);
      });

      it('sends frames the host opens, in order, with the readings of its sensors; an ack frees them, a forged one does not', () => {
        const { prov, rig, open } = provisioned(board);
        rig.start();
        rig.clock.advance(5000);
        expect(rig.notified).toHaveLength(0);
        rig.connect();
        rig.clock.advance(1499);
        expect(rig.notified).toHaveLength(0);
        rig.clock.advance(500);
        // Boot anchor, then the connect anchor.
        expect(rig.notified.map((f) => open(f).counter)).toEqual([1, 2]);
        expect(decodePlaintext(open(rig.notified[0]!).plaintext)).toMatchObject({ type: 'anchor', boot: 1, reason: 0 });
        expect(decodePlaintext(open(rig.notified[1]!).plaintext)).toMatchObject({ type: 'anchor', boot: 1, reason: 1 });

        // One sampling period: every sensor of the profile, at the codec's
        // resolution. Without acks the device keeps resending from the
        // oldest frame, so counters repeat, but each first appears in order.
        rig.clock.advance(board.device.samplePeriodMs + 5000);
        const firstSeen = new Map<number, ReturnType<typeof open>>();
        for (const f of rig.notified.map(open)) if (!firstSeen.has(f.counter)) firstSeen.set(f.counter, f);
        expect([...firstSeen.keys()]).toEqual([...firstSeen.keys()].map((_, i) => 1 + i));
        const fresh = [...firstSeen.values()].slice(2);
        expect(fresh.length).toBeGreaterThan(0);
        const readings = Object.fromEntries(
          fresh.flatMap((f) => {
            const d = decodePlaintext(f.plaintext);
            return d.type === 'sample' ? d.readings.map((r) => [r.name, r.value] as const) : [];
          }),
        );
        const expected = expectedReadings(board);
        expect(Object.keys(readings).sort()).toEqual(Object.keys(expected).sort());
        for (const [channel, value] of Object.entries(expected)) expect(readings[channel], channel).toBeCloseTo(value as number, 4);

        // A forged ack (another device's salt) frees nothing: counter 1 is sent again.
        const last = Math.max(...firstSeen.keys());
        rig.writeAck(forgedAck(prov, last));
        const mark = rig.notified.length;
        rig.clock.advance(20_000);
        expect(rig.notified.slice(mark).map((f) => open(f).counter)).toContain(1);

        // A valid ack frees 1..last: later passes start above it.
        rig.writeAck(makeAck(prov.keys, last));
        const mark2 = rig.notified.length;
        rig.clock.advance(board.device.samplePeriodMs + 10_000);
        const after = rig.notified.slice(mark2).map((f) => open(f).counter);
        expect(after.length).toBeGreaterThan(0);
        expect(Math.min(...after)).toBeGreaterThan(last);

        rig.disconnect();
        const mark3 = rig.notified.length;
        rig.clock.advance(board.device.samplePeriodMs);
        expect(rig.notified.length).toBe(mark3);
        expect(rig.fileReplacements).toEqual([]);
      });

      it('starts sending as soon as the central enables notifications (CCCD write), stops when it disables them', () => {
        const { rig, open } = provisioned(board);
        rig.start();
        rig.clock.advance(5000);
        rig.connect();
        rig.clock.advance(20);
        expect(rig.notified).toHaveLength(0);
        rig.writeCccd(1);
        // Right after the subscription, not 1.5 s after the connection.
        rig.clock.advance(1);
        expect(rig.notified.map((f) => open(f).counter)).toEqual([1]);
        rig.clock.advance(board.device.notifyIntervalMs);
        expect(rig.notified.map((f) => open(f).counter)).toEqual([1, 2]);
        rig.writeCccd(0);
        rig.clock.advance(board.device.samplePeriodMs + 10_000);
        expect(rig.notified).toHaveLength(2);
        // On again: from the oldest unacknowledged frame, at once.
        rig.writeCccd(1);
        rig.clock.advance(1);
        expect(rig.notified.map((f) => open(f).counter)).toEqual([1, 2, 1]);
      });

      it('records its boot in the counter medium and starts the next boot on a fresh block', () => {
        const { prov, rig, open } = provisioned(board);
        rig.start();
        rig.connect();
        rig.clock.advance(2000);
        expect(open(rig.notified[0]!).counter).toBe(1);
        if (board.counterStore.kind === 'storage-log') {
          expect(Array.from(rig.storage.get('sealpost.ctr')!.subarray(0, 8))).toEqual([0x53, 0x50, 0x63, 0x01, 0x00, 0x01, 0xff, 0xfe]);
        }
        // Power loss: a new interpreter on the same Storage and flash.
        const next = boardRig(board, `${DIST}${board.id}.js`, Object.fromEntries(rig.storage));
        next.flash.set(rig.flash);
        next.start();
        next.connect();
        next.clock.advance(2000);
        const first = open(next.notified[0]!);
        expect(first.counter).toBe(board.device.counterBlock + 1);
        expect(decodePlaintext(first.plaintext)).toMatchObject({ type: 'anchor', boot: 2, reason: 0 });
        expect(next.lines[0]).toBe(bootLine(prov));
      });

      if (board.crypto === 'native-kernel') {
        it('runs its compiled kernel in place from flash (a RAM copy only where the Storage address is 0)', () => {
          for (const xip of [true, false]) {
            const { prov, rig, open } = provisioned(board, { xip });
            rig.start();
            rig.connect();
            rig.clock.advance(2000);
            expect(rig.lines).toEqual([bootLine(prov)]);
            expect(open(rig.notified[0]!).counter).toBe(1);
            expect(rig.kernel.flatCopies.includes(kernelImage().length)).toBe(!xip);
            // The boot self-test and the key check value, then one seal per frame.
            expect(rig.kernel.calls.aes_block).toBe(1);
            expect(rig.kernel.calls.aes_ccm_seal).toBeGreaterThanOrEqual(3);
          }
        });

        for (const [what, damage, message] of [
          ['a damaged kernel file (one bit flipped)', { file: 'flip' }, /^sealpost SP-\S+: crypto unusable: kernel sealpost.krn is damaged or not this firmware's: flash the device again$/],
          ['no kernel file', { file: 'none' }, /^sealpost SP-\S+: crypto unusable: kernel sealpost.krn is missing: provision this device with sealpost flash$/],
          ['a kernel that seals its self-test vector wrong', { wrongOutput: true }, /^sealpost SP-\S+: crypto unusable: kernel sealpost.krn failed its self-test$/],
        ] as const) {
          it(`with ${what} it says why and never puts a frame on the air`, () => {
            const { rig } = provisioned(board, damage);
            rig.start();
            rig.clock.advance(10_000);
            expect(rig.lines).toHaveLength(1);
            expect(rig.lines[0]).toMatch(message);
            expect(rig.gatt).toEqual([]);
            expect(rig.notified).toEqual([]);
            expect(rig.fileReplacements).toEqual([]);
            // Refused before the counter store recorded a boot.
            if (board.counterStore.kind === 'storage-log') expect(Array.from(rig.storage.get('sealpost.ctr')!.subarray(4, 8))).toEqual([255, 255, 255, 255]);
          });
        }
      }

      it('without a device file it says how to provision and neither advertises nor seals', () => {
        const rig = boardRig(board, `${DIST}${board.id}.js`, {});
        rig.start();
        rig.clock.advance(10_000);
        expect(rig.lines).toEqual(['sealpost: no device file: provision this device with sealpost flash']);
        expect(rig.gatt).toEqual([]);
        expect(rig.fileReplacements).toEqual([]);
      });
    });
  }
});

// Opt-in (ESPRUINO_BIN=/path/to/espruino, the Linux build, see README): the
// same bundles on the real interpreter. A prelude defines what the Linux
// build lacks (NRF, Puck, Bangle, battery) in JavaScript, keeps the console
// on stdout, and runs the clock 50 times faster so a sampling period takes a
// second; its timeline connects, enables notifications 200 ms later (the
// CCCD write, handed to the characteristic's onWriteDesc as an ArrayBuffer
// as 2v29's bluetooth_utils.c does), then writes a forged and a valid ack.
// The native-kernel bundles run with the kernel file in Storage and the prelude's stand-in for the
// kernel (test/helpers/board-prelude.ts kernelStandIn: the x86-64 build cannot execute Thumb code);
// the compiled kernel itself runs on the 32-bit ARM build in test/firmware/kernel-arm.test.ts.
const BIN = process.env.ESPRUINO_BIN;
describe.runIf(BIN)('BLE board bundles on the real interpreter ($ESPRUINO_BIN)', () => {
  for (const board of BLE_BOARDS.filter((b) => b.counterStore.kind === 'storage-log')) {
    const kernel = board.crypto === 'native-kernel';
    it(`dist/${board.id}.js boots, advertises, sends frames the host opens and honours only a valid ack${kernel ? ' (kernel stand-in)' : ''}`, async () => {
      const prov = provisionSim(`SP-${board.id.toUpperCase()}-0042`, board.frameSize);
      const dir = mkdtempSync(join(tmpdir(), 'sealpost-board-'));
      const files: Record<string, Uint8Array> = { 'sealpost.dev': prov.deviceFile, 'sealpost.ctr': counterLogImage((board.counterStore as { bytes: number }).bytes) };
      if (kernel) files[KERNEL_FILE_NAME] = kernelImage();
      writeStorage(BIN!, dir, files);
      const acks: Record<number, string> = {};
      for (let n = 1; n <= 60; n++) acks[n] = toHex(makeAck(prov.keys, n));
      const forged = toHex(forgedAck(prov, 30));
      writeFileSync(join(dir, 'fw.js'), prelude(acks, forged, { kernelStandIn: kernel }) + readFileSync(`${DIST}${board.id}.js`, 'utf8'));
      const session = startEspruino(BIN!, dir, 'fw.js');
      await session.waitFor((l) => l === 'DONE', 60_000);
      await session.stop();
      const lines = session.lines;
      expect(lines).toContain(bootLine(prov));
      // The backend went through the kernel's entries: the key check value, the self-test and the frames.
      if (kernel) expect(lines.filter((l) => l.startsWith('KERNEL standin ')).sort()).toEqual(['KERNEL standin ack', 'KERNEL standin block', 'KERNEL standin init', 'KERNEL standin seal']);
      expect(lines).toContain(`GATT ${SERVICE_UUID}/${FRAMES_UUID} ${SERVICE_UUID}/${ACK_UUID} ${SERVICE_UUID}/${INFO_UUID} uart false adv ${SERVICE_UUID}`);
      expect(lines).toContain(`SCAN ${scanResponse(prov).join(',')}`);
      expect(lines).toEqual(expect.arrayContaining(['LOCK console', 'LOCK loopback true']));

      // The first frame follows the subscription, before the 1.5 s fallback would have sent it.
      const firstFrame = lines.findIndex((l) => l.startsWith('FRAME '));
      expect(firstFrame).toBeGreaterThan(lines.indexOf('SUBSCRIBE'));
      expect(firstFrame).toBeLessThan(lines.indexOf('SETTLE'));
      const frames = lines.flatMap((l, i) => (l.startsWith('FRAME ') ? [{ i, f: openFrame(prov.keys, Buffer.from(l.slice(6), 'hex'), board.frameSize) }] : []));
      const firstSeen = [...new Set(frames.map((x) => x.f.counter))];
      expect(firstSeen.slice(0, 4)).toEqual([1, 2, 3, 4]);
      expect(firstSeen).toEqual(firstSeen.map((_, i) => i + 1));
      const names = new Set(
        frames.flatMap(({ f }) => {
          const d = decodePlaintext(f.plaintext);
          return d.type === 'sample' ? d.readings.map((r) => r.name) : [];
        }),
      );
      expect([...names].sort()).toEqual(Object.keys(expectedReadings(board)).sort());

      const forgedAt = lines.indexOf('FORGED');
      const ackLine = lines.findIndex((l) => l.startsWith('ACK '));
      const acked = Number(lines[ackLine]!.slice(4));
      expect(acked).toBeGreaterThan(2);
      // After the forged ack counter 1 is still sent; after the valid one nothing up to N is.
      expect(frames.filter((x) => x.i > forgedAt && x.i < ackLine).map((x) => x.f.counter)).toContain(1);
      const later = frames.filter((x) => x.i > ackLine).map((x) => x.f.counter);
      expect(later.length).toBeGreaterThan(0);
      expect(Math.min(...later)).toBeGreaterThan(acked);
    }, 90_000);
  }
});
