// `sealpost flash`: argument errors, refusals before anything is written, the
// exact espruino CLI command lines and Storage files, a fake device that
// answers like Espruino and the firmware's boot line, a bad port through the
// real espruino CLI, and SWD hex files made by the real CLI and parsed back.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { boardProfile } from '../../boards/index.js';
import { crc32, decodeDeviceFile, encodeDeviceFile, keyCheckValue, toHex } from '../../protocol/index.js';
import { flashCommand } from '../../factory/flash-cli.js';
import { runCommand } from '../../cli/main.js';
import { counterPagesExpression, espruinoBoard, loadFlashTarget, planPortFlash, writeStorageHex, type FlashTarget } from '../../factory/flash.js';
import { checkSource } from '../../tools/espruino-check/checker.js';
import type { EspruinoRun, EspruinoRunner } from '../../factory/espruino-cli.js';
import { redactDeviceText } from '../../factory/espruino-cli.js';
import { provisionBatch } from '../../factory/provision.js';
import { parseSerialRange } from '../../factory/serials.js';
import { parseIntelHex, parseStorage } from '../../factory/storage-image.js';
import { counterLogImage } from '../../protocol/wire/counter-log.js';
import { FIRMWARE, makeKeys, tempDir, removeTempDirs } from '../fixtures/factory/setup.js';

/** The committed kernel image: what dist/aes-ccm.bin (npm run build) and so sealpost.krn must be. */
const KERNEL_BIN = new URL('../../kernel/aes-ccm/aes-ccm.bin', import.meta.url).pathname;
/** The committed renewal kernels: sealpost.c25 and sealpost.hkd. */
const CURVE_BIN = new URL('../../kernel/curve25519/curve25519.bin', import.meta.url).pathname;
const HKDF_BIN = new URL('../../kernel/hkdf-sha256/hkdf-sha256.bin', import.meta.url).pathname;
const RENEWAL_STEP = 'write the renewal kernels sealpost.c25 and sealpost.hkd';

afterAll(removeTempDirs);

const keys = makeKeys();
const out = tempDir('flash');

async function batch(board: string, serials: string): Promise<string> {
  const range = parseSerialRange(serials);
  const r = await provisionBatch({ out, batch: serials, board: boardProfile(board), range, ingest: keys.ingestPub, factory: keys.factoryPriv });
  return r.batchDir;
}

let puck: string;
let dk: string;
let bangle: string;
let pixl: string;
beforeAll(async () => {
  puck = await batch('puckjs', 'PK-0001-PK-0003');
  dk = await batch('nrf52840dk', 'DK-0001-DK-0002');
  bangle = await batch('banglejs2', 'BG-0001-BG-0001');
  pixl = await batch('pixljs', 'PX-0001-PX-0001');
});

/** The steps of a storage-log board on the kernel (Puck.js, Pixl.js), in order. */
const STORAGE_LOG_KERNEL_STEPS = [
  'connect and check the device',
  'write sealpost.dev',
  'write sealpost.ctr',
  'write the kernel sealpost.krn',
  RENEWAL_STEP,
  'write the firmware as boot code (.bootcde)',
  'restart the device and check its key',
];
const dev = (batchDir: string, serial: string) => join(batchDir, 'devices', `${serial}.dev`);

/** Output of console.log/console.error during `body`. */
/** `sealpost flash ARGS` as cli/main.ts runs it (usage errors: exit 2 and the usage), with `runner` in place of the espruino CLI. */
const runFlash = (args: string[], runner?: EspruinoRunner) => runCommand('flash', args, (a) => flashCommand(a, runner));

async function captured(body: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await body();
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

interface FakeDevice {
  board: string;
  storage: Map<string, Buffer>;
  /** Tamper with what the firmware reports. */
  kcvOverride?: string;
  /** Flip a bit of sealpost.krn as it lands in flash (a bad write). */
  kernelDamage?: number;
  /** Flip a bit of this Storage file (a renewal kernel) as it lands in flash. */
  renewalDamage?: { name: string; at: number };
  commands: string[][];
}

/**
 * Answers the espruino CLI command lines the way Espruino and the sealpost
 * firmware would: --storage files land in a Map, the -e expressions of each
 * step are recognised by their markers, load() prints the boot line computed
 * from the stored device file.
 */
function fakeDevice(board: string): FakeDevice & { runner: EspruinoRunner } {
  const d: FakeDevice = { board, storage: new Map(), commands: [] };
  const runner: EspruinoRunner = async (args) => {
    d.commands.push(args);
    const lines: string[] = ['>'];
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '--storage') {
        const [name, file] = args[i + 1]!.split(':') as [string, string];
        d.storage.set(name, readFileSync(file));
      }
    }
    const expr = args[args.indexOf('-e') + 1] ?? '';
    const lenCrc = (name: string) => (d.storage.has(name) ? `${d.storage.get(name)!.length} ${crc32(d.storage.get(name)!)}` : '-1 0');
    if (expr.includes('SPFLASH1')) {
      const c = d.storage.get('sealpost.ctr');
      lines.push('SPFLASH1 ' + JSON.stringify({ board: d.board, version: '2v29', stats: { freeBytes: 30000, trashBytes: 0 }, ctrLength: c ? c.length : -1, ctrCrc: c ? crc32(c) : 0 }));
    } else if (expr.includes('SPFLASH2')) {
      const f = d.storage.get('sealpost.dev')!;
      lines.push(`SPFLASH2 ${f.length} ${f.subarray(0, 7 + f[6]!).toString('hex')}`);
    } else if (expr.includes('SPFLASH3')) lines.push(`SPFLASH3 ${lenCrc('sealpost.ctr')}`);
    else if (expr.includes('SPFLASH4')) lines.push(`SPFLASH4 ${lenCrc('.bootcde')}`);
    else if (expr.includes('SPFLASH6')) {
      // E.CRC32 as the interpreter prints it: the same 32 bits, possibly negative.
      if (d.kernelDamage && d.storage.has('sealpost.krn')) d.storage.get('sealpost.krn')![d.kernelDamage]! ^= 1;
      const k = d.storage.get('sealpost.krn');
      lines.push(`SPFLASH6 ${k ? `${k.length} ${crc32(k) | 0}` : '-1 0'}`);
    }
    else if (expr.includes('SPFLASH7')) {
      if (d.renewalDamage && d.storage.has(d.renewalDamage.name)) d.storage.get(d.renewalDamage.name)![d.renewalDamage.at]! ^= 1;
      const files = JSON.parse(/\["[^\]]*\]/.exec(expr)![0]) as string[];
      lines.push(`SPFLASH7 ${files.map((f) => (d.storage.has(f) ? `${d.storage.get(f)!.length} ${crc32(d.storage.get(f)!) | 0}` : '-1 0')).join(' ')}`);
    } else if (expr === 'load()') {
      const f = decodeDeviceFile(new Uint8Array(d.storage.get('sealpost.dev')!));
      lines.push(`sealpost ${f.serial} kcv ${d.kcvOverride ?? toHex(keyCheckValue(f.sealKey))} fw 0.1.0`);
      // The firmware writes its first counter record at boot.
      const c = d.storage.get('sealpost.ctr');
      if (c) c[4] = 0x00;
    }
    const run: EspruinoRun = { code: 0, stdout: lines.map((l) => `--] ${l}`).join('\n'), stderr: '', deviceLines: lines, timedOut: false, stopped: false };
    return run;
  };
  return Object.assign(d, { runner });
}

describe('sealpost flash: arguments', () => {
  const never: EspruinoRunner = () => {
    throw new Error('must not run the CLI');
  };
  const cases: [string[], RegExp][] = [
    [['--device', 'x.dev'], /give either --port PORT .* or --ohex FILE\.hex/],
    [['--port', 'tcp://h', '--ohex', 'a.hex', '--device', 'x.dev'], /not both or neither/],
    [['--port', 'tcp://h'], /--device is required/],
    [['--ohex', 'a.hex', '--device', 'x.dev'], /--ohex needs --board BOARD/],
    [['--port', 'tcp://h', '--device', 'x.dev', '--timeout', '0'], /--timeout must be a whole number of seconds from 1 to 600, got "0"/],
    [['--port', 'tcp://h', '--device', 'x.dev', '--speed', '9'], /unknown option --speed/],
    [['--port', 'tcp://h', '--device', 'x.dev', 'extra'], /unexpected argument "extra"/],
  ];
  for (const [args, message] of cases) {
    it(`exit 2 with usage: ${args.join(' ')}`, async () => {
      const r = await captured(() => runFlash(args, never));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain('usage: sealpost flash --port PORT');
    });
  }

  it('refuses device files that are not from a finished batch, or do not match it', async () => {
    const refuse = async (args: string[], message: RegExp) => {
      const r = await captured(() => runFlash(['--port', 'tcp://127.0.0.1:9', ...args], never));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
    };
    await refuse(['--device', join(out, 'nope.dev')], /--device .*nope\.dev: no such file/);
    await refuse(['--device', FIRMWARE], /is not a sealpost device file: device file does not start with the sealpost magic/);
    const elsewhere = join(tempDir('elsewhere'), 'PK-0001.dev');
    copyFileSync(dev(puck, 'PK-0001'), elsewhere);
    await refuse(['--device', elsewhere, '--firmware', FIRMWARE], /is not OUT\/<batch>\/devices\/PK-0001\.dev/);
    await refuse(['--device', dev(puck, 'PK-0001'), '--firmware', FIRMWARE, '--board', 'pixljs'], /--board pixljs does not match batch PK-0001-PK-0003, which was provisioned for puckjs/);
    await refuse(['--device', dev(puck, 'PK-0001'), '--firmware', join(out, 'none.js')], /firmware .*none\.js not found: build it with `npm run build`/);
    // Another valid device file for the same serial (a different key).
    const original = readFileSync(dev(puck, 'PK-0002'));
    writeFileSync(dev(puck, 'PK-0002'), encodeDeviceFile({ serial: 'PK-0002', frameSize: 20, sealKey: new Uint8Array(16).fill(7), nonceSalt: new Uint8Array(8) }));
    await refuse(['--device', dev(puck, 'PK-0002'), '--firmware', FIRMWARE], /does not match .*kcv\.json .*do not flash this file/);
    writeFileSync(dev(puck, 'PK-0002'), original);
    // An unfinished batch: no manifest yet.
    const unfinished = join(out, 'PK-0001-PK-0003', 'manifest.json');
    const manifest = readFileSync(unfinished);
    rmSync(unfinished);
    await refuse(['--device', dev(puck, 'PK-0001'), '--firmware', FIRMWARE], /batch PK-0001-PK-0003 is not finished \(no manifest\.json/);
    writeFileSync(unfinished, manifest);
  });
});

describe('sealpost flash: the espruino CLI command lines', () => {
  it('seven steps in order for a storage-log board on the kernel (Puck.js), with the exact files', () => {
    const t = loadFlashTarget({ devicePath: dev(puck, 'PK-0001'), firmware: FIRMWARE });
    const steps = planPortFlash(t, { port: 'tcp://127.0.0.1:2323', workDir: '/w' }, '/w/sealpost.ctr');
    const json = espruinoBoard(boardProfile('puckjs')).json;
    expect(json).toMatch(/boards\/espruino\/PUCKJS\.json$/);
    expect(steps.map((s) => s.title)).toEqual(STORAGE_LOG_KERNEL_STEPS);
    const base = ['-p', 'tcp://127.0.0.1:2323', '--board', json, '--no-ble'];
    for (const s of steps) expect(s.args.slice(0, 5)).toEqual(base);
    expect(steps[1]!.args.slice(5, 7)).toEqual(['--storage', `sealpost.dev:${dev(puck, 'PK-0001')}`]);
    expect(steps[2]!.args.slice(5, 7)).toEqual(['--storage', 'sealpost.ctr:/w/sealpost.ctr']);
    expect(steps[3]!.args.slice(5, 7)).toEqual(['--storage', `sealpost.krn:${t.kernel!.path}`]);
    expect(steps[4]!.args.slice(5, 9)).toEqual(['--storage', `sealpost.c25:${t.renewalKernels![0]!.path}`, '--storage', `sealpost.hkd:${t.renewalKernels![1]!.path}`]);
    expect(steps[5]!.args.slice(5, 7)).toEqual(['--storage', `.bootcde:${FIRMWARE}`]);
    expect(steps[6]!.args.slice(5)).toEqual(['-e', 'load()', '--sleep', '10']);
    expect(steps[0]!.args[6]).toContain('process.env.BOARD');
    expect(steps[1]!.args[8]).toContain('for(var i=0;i<14;i++)');
    // Nothing in any command line reads the key: only lengths, CRCs of public files and the 7+n header bytes.
    expect(steps.map((s) => s.args.join(' ')).join(' ')).not.toMatch(/sealKey|readArrayBuffer|E\.CRC32\(require\("Storage"\)\.read\("sealpost\.dev"/);
    // The counter log: 8192 bytes, the magic then erased bytes.
    const log = t.counterLog!;
    expect(log.length).toBe(8192);
    expect(Array.from(log.subarray(0, 4))).toEqual([0x53, 0x50, 0x63, 0x01]);
    expect(log.subarray(4).every((b) => b === 0xff)).toBe(true);
    // A BLE address keeps BLE on.
    const ble = planPortFlash(t, { port: 'c7:12:34:56:78:9a', workDir: '/w' }, '/w/sealpost.ctr');
    expect(ble[0]!.args.slice(0, 4)).toEqual(['-p', 'c7:12:34:56:78:9a', '--board', json]);
    expect(ble[0]!.args).not.toContain('--no-ble');
  });

  it('for a board with flash pages: no counter-log file, the counter pages initialised on the device instead, and no SWD hex', async () => {
    const t = loadFlashTarget({ devicePath: dev(dk, 'DK-0001'), firmware: FIRMWARE });
    expect(t.counterLog).toBeUndefined();
    const steps = planPortFlash(t, { port: '/dev/ttyACM0', workDir: '/w' }, '/w/sealpost.ctr');
    expect(steps.map((s) => s.title)).toEqual([
      'connect and check the device',
      'write sealpost.dev',
      'initialise the counter pages',
      'write the kernel sealpost.krn',
      RENEWAL_STEP,
      'write the firmware as boot code (.bootcde)',
      'restart the device and check its key',
    ]);
    expect(steps.map((s) => s.args.join(' ')).join('\n')).not.toContain('sealpost.ctr:');
    // The expression is code the interpreter runs: it must pass the bundle checker.
    expect(checkSource(counterPagesExpression(), 'counter-pages.js')).toEqual([]);
    const judge = (line: string) => steps[2]!.judge({ deviceLines: [`SPFLASH5 ${line}`], lines: [`SPFLASH5 ${line}`] } as unknown as EspruinoRun);
    expect(judge('ok 4080')).toEqual({ ok: true });
    expect(judge('used sealpost')).toMatchObject({ ok: false, why: expect.stringMatching(/already hold a sealpost counter log/) });
    expect(judge('used other')).toMatchObject({ ok: false, advice: expect.stringMatching(/erase those pages/) });
    await expect(writeStorageHex(t, '/w/o.hex', async () => { throw new Error('the CLI must not run'); })).rejects.toThrow(/counter log in two raw flash pages.*flash it with --port/);
  });
});

describe('sealpost flash: the kernel file of native-kernel boards', () => {
  const flashPixl = (d: { runner: EspruinoRunner }, extra: string[] = []) =>
    captured(() => runFlash(['--port', 'tcp://127.0.0.1:2323', '--device', dev(pixl, 'PX-0001'), '--firmware', FIRMWARE, ...extra], d.runner));

  it('writes sealpost.krn after the counter log and checks its length and CRC-32 as read back on the device', async () => {
    const t = loadFlashTarget({ devicePath: dev(pixl, 'PX-0001'), firmware: FIRMWARE });
    expect(Buffer.from(t.kernel!.bytes).equals(readFileSync(KERNEL_BIN))).toBe(true);
    const steps = planPortFlash(t, { port: 'tcp://127.0.0.1:2323', workDir: '/w' }, '/w/sealpost.ctr');
    expect(steps.map((s) => s.title)).toEqual(STORAGE_LOG_KERNEL_STEPS);
    expect(steps[3]!.args.slice(5, 7)).toEqual(['--storage', `sealpost.krn:${t.kernel!.path}`]);
    expect(steps[3]!.args[8]).toBe('(function(){var s=require("Storage").read("sealpost.krn");print("SPFLASH6 "+(s===undefined?"-1 0":s.length+" "+E.CRC32(s)))})()');
    expect(checkSource(steps[3]!.args[8]!, 'krn-check.js')).toEqual([]);
    const d = fakeDevice('PIXLJS');
    const r = await flashPixl(d);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('step 4/7 write the kernel sealpost.krn: ok');
    expect(d.storage.get('sealpost.krn')!.equals(readFileSync(KERNEL_BIN))).toBe(true);
    // Puck.js seals with the kernel too; Bangle.js 2 seals with its CCM builtin: no kernel file.
    expect(Buffer.from(loadFlashTarget({ devicePath: dev(puck, 'PK-0001'), firmware: FIRMWARE }).kernel!.bytes).equals(readFileSync(KERNEL_BIN))).toBe(true);
    expect(loadFlashTarget({ devicePath: dev(bangle, 'BG-0001'), firmware: FIRMWARE }).kernel).toBeUndefined();
  });

  it('stops before the firmware when the kernel reads back wrong (Pixl.js, Puck.js)', async () => {
    for (const [board, device, damage] of [['PIXLJS', dev(pixl, 'PX-0001'), 512], ['PUCKJS', dev(puck, 'PK-0001'), 7]] as const) {
      const d = fakeDevice(board);
      d.kernelDamage = damage;
      const r = await captured(() => runFlash(['--port', 'tcp://127.0.0.1:2323', '--device', device, '--firmware', FIRMWARE], d.runner));
      expect(r.code, board).toBe(1);
      expect(r.stderr).toMatch(/step 4\/7 \(write the kernel sealpost\.krn\) failed: sealpost\.krn reads back as 1280 bytes with CRC -?\d+, expected 1280 bytes with CRC 2300083468 — retry the same command/);
      expect(d.storage.has('.bootcde')).toBe(false);
    }
  });

  it('refuses a kernel file that is missing or is not the image the firmware was built for, before writing anything', async () => {
    const work = tempDir('krn');
    const other = join(work, 'other.bin');
    const k = readFileSync(KERNEL_BIN);
    k[100] ^= 1;
    writeFileSync(other, k);
    const never: EspruinoRunner = () => {
      throw new Error('must not run the CLI');
    };
    const wrong = await captured(() => runFlash(['--port', 'tcp://127.0.0.1:2323', '--device', dev(pixl, 'PX-0001'), '--firmware', FIRMWARE, '--kernel', other], never));
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/kernel .*other\.bin is not the image this firmware was built for \(1280 bytes, SHA-256 [0-9a-f]{16}\.\.\., expected 1280 bytes, 130369c592a4c63e\.\.\.\): use the aes-ccm\.bin of the same build/);
    const missing = await captured(() => runFlash(['--port', 'tcp://127.0.0.1:2323', '--device', dev(pixl, 'PX-0001'), '--firmware', FIRMWARE, '--kernel', join(work, 'none.bin')], never));
    expect(missing.stderr).toMatch(/kernel .*none\.bin not found: build it into dist\/ with `npm run build`/);
  });
});

describe('sealpost flash: the renewal kernels of boards that renew on the device', () => {
  it('writes sealpost.c25 and sealpost.hkd in one run after sealpost.krn and checks both lengths and CRC-32s as read back on the device', async () => {
    const t = loadFlashTarget({ devicePath: dev(pixl, 'PX-0001'), firmware: FIRMWARE });
    expect(t.renewalKernels!.map((k) => k.name)).toEqual(['sealpost.c25', 'sealpost.hkd']);
    expect(Buffer.from(t.renewalKernels![0]!.bytes).equals(readFileSync(CURVE_BIN))).toBe(true);
    expect(Buffer.from(t.renewalKernels![1]!.bytes).equals(readFileSync(HKDF_BIN))).toBe(true);
    const steps = planPortFlash(t, { port: 'tcp://127.0.0.1:2323', workDir: '/w' }, '/w/sealpost.ctr');
    expect(steps[4]!.title).toBe(RENEWAL_STEP);
    const check = steps[4]!.args[steps[4]!.args.indexOf('-e') + 1]!;
    expect(check).toBe('(function(){var S=require("Storage"),o=[];["sealpost.c25","sealpost.hkd"].forEach(function(f){var s=S.read(f);o.push(s===undefined?"-1 0":s.length+" "+E.CRC32(s))});print("SPFLASH7 "+o.join(" "))})()');
    expect(checkSource(check, 'renewal-kernels-check.js')).toEqual([]);
    const d = fakeDevice('PIXLJS');
    const r = await captured(() => runFlash(['--port', 'tcp://127.0.0.1:2323', '--device', dev(pixl, 'PX-0001'), '--firmware', FIRMWARE], d.runner));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`step 5/7 ${RENEWAL_STEP}: ok`);
    expect(d.storage.get('sealpost.c25')!.equals(readFileSync(CURVE_BIN))).toBe(true);
    expect(d.storage.get('sealpost.hkd')!.equals(readFileSync(HKDF_BIN))).toBe(true);
    // Every nRF52 profile renews with the kernels, Bangle.js 2 (CCM builtin, no sealpost.krn) too; the
    // x86-64 Linux build executes no Thumb code: no kernel files there.
    const bangle1 = loadFlashTarget({ devicePath: dev(bangle, 'BG-0001'), firmware: FIRMWARE });
    expect(bangle1.kernel).toBeUndefined();
    expect(bangle1.renewalKernels!.map((k) => k.name)).toEqual(['sealpost.c25', 'sealpost.hkd']);
    expect(planPortFlash(bangle1, { port: '/dev/ttyACM0', workDir: '/w' }, '/w/sealpost.ctr').map((s) => s.title)).toContain(RENEWAL_STEP);
    expect(boardProfile('espruino-linux').renewalCrypto).toBeUndefined();
  });

  it('stops before the firmware when a renewal kernel reads back wrong, naming the file and both CRCs', async () => {
    for (const [name, at] of [['sealpost.c25', 4000], ['sealpost.hkd', 3]] as const) {
      const d = fakeDevice('PUCKJS');
      d.renewalDamage = { name, at };
      const r = await captured(() => runFlash(['--port', 'tcp://127.0.0.1:2323', '--device', dev(puck, 'PK-0001'), '--firmware', FIRMWARE], d.runner));
      expect(r.code, name).toBe(1);
      const bin = readFileSync(name === 'sealpost.c25' ? CURVE_BIN : HKDF_BIN);
      expect(r.stderr).toContain(`step 5/7 (${RENEWAL_STEP}) failed: ${name} reads back as ${bin.length} bytes with CRC `);
      expect(r.stderr).toContain(`, expected ${bin.length} bytes with CRC ${crc32(bin)} — retry the same command`);
      expect(d.storage.has('.bootcde')).toBe(false);
    }
  });

  it('refuses renewal kernels that are missing from the build or are not its images, before writing anything', async () => {
    const distDir = tempDir('renewal-dist');
    copyFileSync(KERNEL_BIN, join(distDir, 'aes-ccm.bin'));
    copyFileSync(CURVE_BIN, join(distDir, 'curve25519.bin'));
    expect(() => loadFlashTarget({ devicePath: dev(puck, 'PK-0001'), firmware: FIRMWARE, distDir })).toThrow(
      /kernel .*renewal-dist.*\/hkdf-sha256\.bin not found: build it into dist\/ with `npm run build` \(it copies kernel\/hkdf-sha256\/hkdf-sha256\.bin\)$/,
    );
    const h = readFileSync(HKDF_BIN);
    h[10] ^= 1;
    writeFileSync(join(distDir, 'hkdf-sha256.bin'), h);
    expect(() => loadFlashTarget({ devicePath: dev(puck, 'PK-0001'), firmware: FIRMWARE, distDir })).toThrow(
      /kernel .*hkdf-sha256\.bin is not the image this firmware was built for \(2191 bytes, SHA-256 [0-9a-f]{16}\.\.\., expected 2191 bytes, c3b0376281ae907f\.\.\.\): use the hkdf-sha256\.bin of the same build/,
    );
    copyFileSync(HKDF_BIN, join(distDir, 'hkdf-sha256.bin'));
    expect(loadFlashTarget({ devicePath: dev(puck, 'PK-0001'), firmware: FIRMWARE, distDir }).renewalKernels).toHaveLength(2);
  });
});

describe('sealpost flash: against a fake device', () => {
  const flash = (d: { runner: EspruinoRunner }, serial = 'PK-0001') =>
    captured(() => runFlash(['--port', 'tcp://127.0.0.1:2323', '--device', dev(puck, serial), '--firmware', FIRMWARE], d.runner));

  it('writes device file, counter log, kernel and firmware to a Puck.js, then confirms the key', async () => {
    const d = fakeDevice('PUCKJS');
    const r = await flash(d);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('step 4/7 write the kernel sealpost.krn: ok');
    expect(r.stdout).toMatch(/step 7\/7 restart the device and check its key: ok \(serial PK-0001, kcv [0-9a-f]{6}, firmware 0\.1\.0\)/);
    expect(d.storage.get('sealpost.dev')!.equals(readFileSync(dev(puck, 'PK-0001')))).toBe(true);
    expect(d.storage.get('sealpost.krn')!.equals(readFileSync(KERNEL_BIN))).toBe(true);
    expect(d.storage.get('.bootcde')!.equals(readFileSync(FIRMWARE))).toBe(true);
    expect(d.storage.get('sealpost.ctr')!.length).toBe(8192);
    expect(d.storage.get('sealpost.c25')!.equals(readFileSync(CURVE_BIN))).toBe(true);
    expect(d.storage.get('sealpost.hkd')!.equals(readFileSync(HKDF_BIN))).toBe(true);
    expect(d.commands).toHaveLength(7);
  });

  it('refuses a device whose counter log has been used, before writing anything', async () => {
    const d = fakeDevice('PUCKJS');
    expect((await flash(d)).code).toBe(0);
    d.storage.delete('sealpost.dev');
    const again = await flash(d, 'PK-0002');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/step 1\/7 \(connect and check the device\) failed: sealpost\.ctr on the device already holds counter records.* — do not re-flash it: set it aside/);
    expect(d.storage.has('sealpost.dev')).toBe(false);
  });

  it('reports a key check value mismatch at step 5, and a wrong board at step 1', async () => {
    const d = fakeDevice('PUCKJS');
    d.kcvOverride = '000000';
    const r = await flash(d);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/step 7\/7 \(restart the device and check its key\) failed: the device reports key check value 000000 for PK-0001, expected [0-9a-f]{6}: .* — do not ship it/);
    const pixlDevice = fakeDevice('PIXLJS');
    const wrong = await flash(pixlDevice, 'PK-0003');
    expect(wrong.stderr).toMatch(/step 1\/7 .* failed: the device on tcp:\/\/127\.0\.0\.1:2323 is a PIXLJS, but batch PK-0001-PK-0003 is for Puck\.js \(PUCKJS\)/);
    expect(pixlDevice.commands).toHaveLength(1);
  });

  it('shows what the device said when a write is not confirmed, with anything base64-like cut out', async () => {
    const d = fakeDevice('PUCKJS');
    const file = readFileSync(dev(puck, 'PK-0001')).toString('base64');
    const failing: EspruinoRunner = async (args, o) => {
      if (args.includes('--storage')) {
        const lines = [`Uncaught SyntaxError: Got ')' expected EOF`, ` at line 1 col 40`, `require("Storage").write("sealpost.dev",atob("${file}"),0,44)`];
        return { code: 0, stdout: '', stderr: '', deviceLines: lines, timedOut: false, stopped: false };
      }
      return d.runner(args, o);
    };
    const r = await captured(() => runFlash(['--port', 'tcp://127.0.0.1:2323', '--device', dev(puck, 'PK-0001'), '--firmware', FIRMWARE], failing));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/step 2\/7 \(write sealpost\.dev\) failed: the device did not confirm; it said: Uncaught SyntaxError.*atob\("\[\.\.\.\]"\).* — retry the same command; the device is not provisioned yet/);
    expect(r.stderr).not.toContain(file.slice(8, 40));
    expect(redactDeviceText(`x ${file} y`)).toBe('x [...] y');
  });
});

describe('sealpost flash: a bad port, through the real espruino CLI', () => {
  const expectStep1 = async (port: string) => {
    const started = Date.now();
    const r = await captured(() => runFlash(['--port', port, '--device', dev(puck, 'PK-0003'), '--firmware', FIRMWARE]));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`step 1/7 (connect and check the device) failed: cannot reach the device on ${port}`);
    expect(r.stderr).toContain('nothing was written to the device');
    expect(Date.now() - started).toBeLessThan(20_000);
    return r.stderr;
  };

  it('a serial device that does not exist', async () => {
    expect(await expectStep1('/dev/ttyNONEXISTENT0')).toMatch(/Port "\/dev\/ttyNONEXISTENT0" not found/);
  });

  it('a TCP port nobody listens on', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise((resolve) => server.close(resolve));
    expect(await expectStep1(`tcp://127.0.0.1:${port}`)).toMatch(/ECONNREFUSED/);
  });
});

describe('sealpost flash --ohex: Storage as Intel HEX for SWD, by the real espruino CLI', () => {
  const work = tempDir('ohex');

  const hexFor = async (batchDir: string, serial: string, board: string) => {
    const outHex = join(work, `${serial}.hex`);
    const r = await captured(() => runFlash(['--ohex', outHex, '--device', dev(batchDir, serial), '--board', board, '--firmware', FIRMWARE]));
    return { ...r, outHex };
  };

  const storageOf = (path: string, t: FlashTarget) => {
    const image = parseIntelHex(readFileSync(path, 'latin1'));
    const area = t.espruino.storage!;
    expect([image.start, image.end]).toEqual([area.address, area.address + area.size]);
    return parseStorage(image.read(area.address, area.size));
  };

  it('puckjs: sealpost.dev, sealpost.ctr, the kernels sealpost.krn, sealpost.c25, sealpost.hkd and .bootcde, byte for byte, mode 0600', async () => {
    const r = await hexFor(puck, 'PK-0001', 'puckjs');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Storage area 0x6c000..0x76000: sealpost.dev 42 B, sealpost.ctr 8192 B, sealpost.krn 1280 B, sealpost.c25 6512 B, sealpost.hkd 2191 B, .bootcde');
    expect(statSync(r.outHex).mode & 0o777).toBe(0o600);
    const t = loadFlashTarget({ devicePath: dev(puck, 'PK-0001'), firmware: FIRMWARE });
    const files = storageOf(r.outHex, t);
    expect(files.map((f) => [f.name, f.flags, f.offset])).toEqual([
      ['sealpost.dev', 0, 32],
      ['sealpost.ctr', 0, 32 + 44 + 32], // 42 bytes padded to 44
      ['sealpost.krn', 0, 32 + 44 + 32 + 8192 + 32],
      ['sealpost.c25', 0, 32 + 44 + 32 + 8192 + 32 + 1280 + 32],
      ['sealpost.hkd', 0, 32 + 44 + 32 + 8192 + 32 + 1280 + 32 + 6512 + 32],
      ['.bootcde', 0, 32 + 44 + 32 + 8192 + 32 + 1280 + 32 + 6512 + 32 + 2192 + 32], // 2191 bytes padded to 2192
    ]);
    expect(Buffer.from(files[0]!.data).equals(readFileSync(dev(puck, 'PK-0001')))).toBe(true);
    expect(Buffer.from(files[1]!.data).equals(Buffer.from(counterLogImage(8192)))).toBe(true);
    expect(Buffer.from(files[2]!.data).equals(readFileSync(KERNEL_BIN))).toBe(true);
    expect(Buffer.from(files[3]!.data).equals(readFileSync(CURVE_BIN))).toBe(true);
    expect(Buffer.from(files[4]!.data).equals(readFileSync(HKDF_BIN))).toBe(true);
    expect(Buffer.from(files[5]!.data).equals(readFileSync(FIRMWARE))).toBe(true);
  });

  it('refuses the nRF52840 DK (its counter pages need a header on the device) and makes pixljs (9 pages)', async () => {
    const a = await hexFor(dk, 'DK-0002', 'nrf52840dk');
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/--ohex: the nRF52840 DK keeps its counter log in two raw flash pages/);
    const b = await hexFor(pixl, 'PX-0001', 'pixljs');
    expect(b.code).toBe(0);
    const tb = loadFlashTarget({ devicePath: dev(pixl, 'PX-0001'), firmware: FIRMWARE });
    expect(tb.espruino.storage).toEqual({ address: 0x6d000, size: 9 * 4096 });
    const files = storageOf(b.outHex, tb);
    expect(files.map((f) => f.name)).toEqual(['sealpost.dev', 'sealpost.ctr', 'sealpost.krn', 'sealpost.c25', 'sealpost.hkd', '.bootcde']);
    expect(Buffer.from(files[3]!.data).equals(readFileSync(CURVE_BIN))).toBe(true);
    expect(Buffer.from(files[4]!.data).equals(readFileSync(HKDF_BIN))).toBe(true);
    expect(Buffer.from(files[2]!.data).equals(readFileSync(KERNEL_BIN))).toBe(true);
    expect(b.stdout).toContain('sealpost.krn 1280 B');
  });

  it('refuses Bangle.js 2, whose Storage is in external SPI flash', async () => {
    const r = await hexFor(bangle, 'BG-0001', 'banglejs2');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--ohex: Bangle\.js 2 keeps Storage in its external SPI flash/);
  });

  it('the Intel HEX parser checks every record', () => {
    expect(() => parseIntelHex(':0400000001020304F1\n')).toThrow(/checksum mismatch/);
    expect(() => parseIntelHex(':0400000001020304F2\n')).toThrow(/no end-of-file record/);
    const image = parseIntelHex(':020000040006F4\n:0400000001020304F2\n:00000001FF\n');
    expect(Array.from(image.read(0x60000, 4))).toEqual([1, 2, 3, 4]);
    expect(() => image.read(0x60003, 2)).toThrow(/no data at 0x60004/);
  });
});
