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
import { crc32 } from '../../protocol/wire/crc32.js';
import { decodeRecord, encodeRecord, scan } from '../../firmware/renewal.js';
import { COMMIT_PAYLOAD_LEN, RECORD_COMMIT, RECORD_PENDING, recordSlots } from '../../protocol/wire/counter-log.js';
import { tmpdir } from 'node:os';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';
import { rollup } from 'rollup';
import typescript from '@rollup/plugin-typescript';
import { checkSource } from '../../tools/espruino-check/checker.js';

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

describe('renewal records in the counter log (docs/protocol.md section 8)', () => {
  const crc = (d: Uint8Array) => crc32(d);
  const payload = new Uint8Array(92).map((_, i) => (i * 37 + 255) & 255);

  it('encode as words 00 a 00 b: never erased, never a block record, and decode back', () => {
    const rec = encodeRecord(RECORD_PENDING, payload, crc);
    expect(rec.length).toBe(4 * recordSlots(92));
    for (let i = 0; i < rec.length; i += 4) {
      expect(rec[i]).toBe(0);
      expect(rec[i + 2]).toBe(0);
      expect((rec[i]! ^ rec[i + 2]!) === 255).toBe(false);
    }
    expect(Array.from(decodeRecord(rec, crc)!)).toEqual(Array.from(payload));
    expect(recordSlots(COMMIT_PAYLOAD_LEN)).toBe(7);
  });

  it('a record cut short or with any word torn (bits left at 1) does not decode', () => {
    const rec = encodeRecord(RECORD_COMMIT, payload.subarray(0, 8), crc);
    for (let cut = 4; cut < rec.length; cut += 4) {
      const torn = rec.slice();
      torn.fill(255, cut);
      expect(decodeRecord(torn, crc)).toBeUndefined();
    }
    for (let byte = 0; byte < rec.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        if (rec[byte]! & (1 << bit)) continue;
        const torn = rec.slice();
        torn[byte]! |= 1 << bit;
        expect(decodeRecord(torn, crc)).toBeUndefined();
      }
    }
  });

  it('scan finds the committed epoch, its keys, a pending renewal above it, and skips torn records', () => {
    const p1 = payload.slice();
    p1.set([0, 0, 0, 1], 0);
    const p2 = payload.slice().reverse();
    p2.set([0, 0, 0, 2], 0);
    const c1 = new Uint8Array(8);
    c1.set([0, 0, 0, 1, 0, 0, 3, 1]);
    const boot = (b: number) => new Uint8Array([0, b, 255, 255 - b]);
    const torn = encodeRecord(RECORD_COMMIT, new Uint8Array([0, 0, 0, 2, 0, 0, 9, 1]), crc).slice(0, 12);
    const words: Uint8Array[] = [];
    for (const part of [boot(1), encodeRecord(RECORD_PENDING, p1, crc), boot(2), encodeRecord(RECORD_COMMIT, c1, crc), encodeRecord(RECORD_PENDING, p2, crc), torn, boot(3)]) {
      for (let i = 0; i < part.length; i += 4) words.push(part.subarray(i, i + 4));
    }
    const r = scan((s) => words[s]!, words.length, crc);
    expect(r.epoch).toBe(1);
    expect(r.commit).toBe(0x301);
    expect(Array.from(r.keys!)).toEqual(Array.from(p1));
    expect(Array.from(r.pending!)).toEqual(Array.from(p2));
    expect(r.carry!.length).toBe(4 * (49 + 7 + 49));
    // A COMMIT without its PENDING (or for another epoch) moves nothing.
    const lone = encodeRecord(RECORD_COMMIT, c1, crc);
    const w2: Uint8Array[] = [];
    for (let i = 0; i < lone.length; i += 4) w2.push(lone.subarray(i, i + 4));
    expect(scan((s) => w2[s]!, w2.length, crc).epoch).toBe(0);
  });

  it('firmware/renewal.ts passes the Espruino bundle checker, as compiled and as minified', async () => {
    const bundle = await rollup({
      input: fileURLToPath(new URL('../../firmware/renewal.ts', import.meta.url)),
      plugins: [
        typescript({
          tsconfig: fileURLToPath(new URL('../../tsconfig.firmware.json', import.meta.url)),
          compilerOptions: { noEmit: false, outDir: join(tmpdir(), 'sealpost-renewal-build'), declaration: false, removeComments: true },
          include: ['firmware/**/*.ts', 'hal/types.ts', 'hal/features.ts', 'protocol/wire/*.ts'],
        }),
      ],
    });
    const { output } = await bundle.generate({ format: 'iife', name: 'SEALPOST_RENEWAL', strict: false });
    await bundle.close();
    const es5 = output[0].code;
    expect(checkSource(es5, 'renewal.es5.js')).toEqual([]);
    const min = await minify(es5, { ecma: 5, toplevel: false, compress: { passes: 2, hoist_funs: true, hoist_vars: true }, mangle: true });
    expect(checkSource(min.code ?? '', 'renewal.min.js')).toEqual([]);
  }, 60_000);
});

describe('the renewal module on the real interpreter', () => {
  // Opt-in: ESPRUINO_BIN (the Linux build). The module as bench/renewal-module.ts builds it, loaded with
  // require() from Storage; stand-ins for crypto, counters and outbox record what it asks for.
  it.runIf(process.env.ESPRUINO_BIN)('runs a whole renewal: ANNOUNCE parts, PENDING, REKEY, RENEW_ACK, COMMIT ($ESPRUINO_BIN)', async () => {
    const { buildRenewalModule, storageWrite, MODULE_NAME } = await import('../../bench/renewal-module.js');
    const bin = process.env.ESPRUINO_BIN!;
    const dir = mkdtempSync(join(tmpdir(), 'sealpost-rnw-test-'));
    storageWrite(bin, dir, MODULE_NAME, await buildRenewalModule());
    const announce = new Uint8Array(108);
    announce.set([0x5a, 1, 1, 2, 3, 4, 0, 0, 0, 1], 0);
    const parts = Array.from({ length: 6 }, (_, i) => {
      const w = new Uint8Array(20);
      w[0] = 0xb0 | i;
      w.set(announce.subarray(i * 19, Math.min(108, i * 19 + 19)), 1);
      return `new Uint8Array([${Array.from(w).join(',')}])`;
    });
    const script = `
var R = require("${MODULE_NAME}"), n = 0, ctr = 100, i;
var ctx = { serial: "SP-1", frameSize: 20, fleetId: new Uint8Array([1, 2, 3, 4]), renewalKey: new Uint8Array(32), epoch: 0, chain: new Uint8Array(32),
  records: R.scan(function () { return new Uint8Array(4); }, 0, E.CRC32),
  crypto: { verify: function (k, m, s) { print("VERIFY " + m.length + " " + s.length); return true; },
    setupPskS: function (pk, info, psk, id, ikm) { print("INFO " + E.toString(info) + " " + info[info.length - 1] + " PSKID " + E.toString(id.subarray(0, 17)) + " " + id[id.length - 1] + " IKM " + ikm[3]); var o = new Uint8Array(88), j; for (j = 0; j < 88; j++) o[j] = j + 1; return o; },
    hwRand: function () { n++; return n * 7919; } },
  ccm: function (k, m) { print("CCM " + k[0] + " " + m); return { framer: function (s, l, r, d) { return function (c, msg, at) { r[at] = c >> 24; r[at + 1] = c >> 16; r[at + 2] = c >> 8; r[at + 3] = c; for (i = 4; i < 12; i++) r[at + i] = 0xaa; }; } }; },
  crc32: E.CRC32,
  counters: { room: function (w) { print("ROOM " + w); return 4097; }, append: function (r, f) { print("APPEND " + r.length + " " + !!f); }, keep: function (c) { print("KEEP " + (c ? c.length : 0)); } },
  ring: new Uint8Array(20), seal: function (pt) { print("SEAL " + pt[0].toString(16) + " " + pt[1] + " " + pt[2]); ctr++; return ctr; },
  held: function () { return false; }, use: function (s, c) { print("USE " + c + " " + typeof s.sealInto + " " + typeof s.ackValid); }, print: print };
var rn = R.start(ctx);
${parts.map((p) => `rn.write(${p});`).join('\n')}
print("OPEN " + rn.open());
print("ACK " + rn.write(new Uint8Array([0xc5, 0, 0, 0, 1, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xab])));
print("ACK " + rn.write(new Uint8Array([0xc5, 0, 0, 0, 1, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa])));
print("OPEN " + rn.open() + " EPOCH " + ctx.epoch + " CHAIN " + ctx.chain[0]);
rn = undefined; R = undefined; Modules.removeCached("${MODULE_NAME}");
print("DO" + "NE");
`;
    writeFileSync(join(dir, 'run.js'), script);
    const out = execFileSync(bin, ['run.js'], { cwd: dir, input: '', timeout: 60_000, killSignal: 'SIGKILL' }).toString('latin1');
    const lines = out.split('\n').map((l) => l.replace(/\r/g, '').replace(/^>/, '')).filter((l) => /^(VERIFY|INFO|ROOM|APPEND|KEEP|SEAL|CCM|USE|OPEN|ACK|DONE|sealpost|Uncaught|ERROR)/.test(l));
    expect(lines).toEqual([
      'VERIFY 64 64',
      'INFO sealpost/v1 renew SP-1\x00\x00\x00\x01 1 PSKID sealpost/v1 chain 0 IKM 239',
      'ROOM 49',
      'APPEND 196 false',
      'KEEP 196',
      'sealpost SP-1: renewal: epoch 1 pending',
      'APPEND 0 true',
      'SEAL 30 0 1',
      'SEAL 31 6 7',
      'SEAL 32 13 14',
      'SEAL 33 20 21',
      'SEAL 34 27 28',
      'OPEN true',
      'CCM 33 8',
      'ACK false',
      'CCM 33 8',
      'ROOM 7',
      'KEEP 224',
      'APPEND 28 true',
      'USE 4097 function function',
      'sealpost SP-1: renewal: epoch 1 committed from counter 4097',
      'ACK true',
      'OPEN false EPOCH 1 CHAIN 57',
      'DONE',
    ]);
  }, 120_000);
});
