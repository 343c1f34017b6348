// Opt-in (ESPRUINO_BIN, Espruino's Linux build): the console lock of the BLE board bundles on the real interpreter, shown by commands typed at the console that run before the lock and not after it.
//
// The Linux build's stdin is its USB console. The prelude stands in only for
// NRF and Puck (board-bundles.test.ts has the full one) and copies whatever
// the interpreter prints on LoopbackA (where the firmware moves the console)
// to stdout through LoopbackB, so output printed after the lock stays
// visible. E.setPassword, E.lockConsole and LoopbackA.setConsole are the
// interpreter's own. A typed command prints a marker and writes a file with
// the build's fs module: before the lock both happen, after it neither.
// A second case leaves the console on USB (LoopbackA.setConsole stubbed) to
// show that the password lock alone refuses the same commands.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOARDS } from '../../boards/index.js';
import { counterLogImage } from '../../protocol/wire/counter-log.js';
import { provisionSim } from '../helpers/sim-fleet.js';
import { startEspruino, writeStorage } from '../helpers/espruino-process.js';
import { kernelStandIn } from '../helpers/board-prelude.js';
import { kernelImage } from '../../sim/espruino/kernel.js';
import { KERNEL_FILE_NAME } from '../../protocol/wire/names.js';

const BIN = process.env.ESPRUINO_BIN;
const DIST = new URL('../../dist/', import.meta.url).pathname;
// The native-kernel bundles run with the kernel file in Storage and the x86 stand-in for the kernel
// (test/helpers/board-prelude.ts kernelStandIn): they lock only once their crypto is usable.
const BOARDS_LOG = BOARDS.filter((b) => b.radio === 'ble' && b.counterStore.kind === 'storage-log');

function prelude(loopback: boolean, kernel: boolean): string {
  return `${kernel ? kernelStandIn() : ''}
var NRF = { setServices: function () {}, setAdvertising: function () {}, setScanResponse: function () {}, on: function () {}, updateServices: function () {}, getBattery: function () { return 3; } };
var Puck = { light: function () { return 0.5; }, mag: function () { return { x: 1, y: 2, z: 3 }; } };
var Bangle = { getAccel: function () { return { x: 0, y: 0, z: -1, mag: 1 }; } };
LoopbackB.on("data", function (d) { USB.write(d); });
${loopback ? '' : 'LoopbackA.setConsole = function () {};'}
setTimeout(function () { print("LOCKED-NOW"); }, 3100);
`;
}

/** A command that prints `MARK<n*2>` and creates `<name>` in the working directory. */
function command(n: number, name: string): string {
  return `require("fs").writeFileSync(${JSON.stringify(name)}, "x"); print("MARK" + (${n} * 2))`;
}

async function run(board: (typeof BOARDS)[number], loopback: boolean) {
  const prov = provisionSim(`SP-LOCK-${board.id.toUpperCase()}`, board.frameSize);
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-lock-'));
  const files: Record<string, Uint8Array> = { 'sealpost.dev': prov.deviceFile, 'sealpost.ctr': counterLogImage((board.counterStore as { bytes: number }).bytes) };
  if (board.crypto === 'native-kernel') files[KERNEL_FILE_NAME] = kernelImage();
  writeStorage(BIN!, dir, files);
  writeFileSync(join(dir, 'fw.js'), prelude(loopback, board.crypto === 'native-kernel') + readFileSync(`${DIST}${board.id}.js`, 'utf8'));
  const s = startEspruino(BIN!, dir, 'fw.js');
  try {
    await s.waitFor((l) => l.startsWith(`sealpost ${prov.serial} kcv `));
    s.send(command(21, 'before.txt'));
    await s.waitFor((l) => l.includes('MARK42'));
    await s.waitFor((l) => l.includes('LOCKED-NOW'));
    s.send(command(50, 'after.txt'));
    s.send('E.setPassword(); E.lockConsole = 0; ' + command(60, 'after2.txt'));
    // Give the interpreter time to run them, were it going to.
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    await s.stop();
  }
  return { lines: s.lines, file: (name: string) => existsSync(join(dir, name)) };
}

describe.runIf(BIN)('the console lock on the real interpreter ($ESPRUINO_BIN)', () => {
  for (const board of BOARDS_LOG) {
    it(`dist/${board.id}.js: a command typed before the lock runs, the same command typed after it does not`, async () => {
      const { lines, file } = await run(board, true);
      expect(file('before.txt')).toBe(true);
      expect(lines.join('\n')).toContain('-> LoopbackA');
      expect(lines.some((l) => l.includes('MARK100') || l.includes('MARK120'))).toBe(false);
      expect(file('after.txt')).toBe(false);
      expect(file('after2.txt')).toBe(false);
    }, 30_000);
  }

  it('with the console left on USB, the password lock alone refuses typed commands', async () => {
    const { lines, file } = await run(BOARDS_LOG[0]!, false);
    expect(file('before.txt')).toBe(true);
    expect(lines.filter((l) => l.includes('Invalid password'))).toHaveLength(2);
    expect(lines.some((l) => l.includes('MARK100') || l.includes('MARK120'))).toBe(false);
    expect(file('after.txt')).toBe(false);
    expect(file('after2.txt')).toBe(false);
  }, 30_000);
});
