// The counter store (firmware/counter-store.ts) on the NOR flash and
// counter-log models (hal/sim): counters never repeat across reboots and power
// cuts, at most one block is skipped per power loss, the boot number rises by
// one per recorded boot, and full or exhausted logs stop the device instead of
// reusing a counter. Randomised parts use seeded PRNGs; a failure names its
// seed. COUNTER_STORE_SEED=<n> runs them with other seeds.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import { minify } from 'terser';
import { rollup } from 'rollup';
import typescript from '@rollup/plugin-typescript';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BOARDS } from '../../boards/index.js';
import { createCounterStore, type CounterStoreOptions } from '../../firmware/counter-store.js';
import { COUNTER_LOG_HEADER_LEN, PAGE_HEADER_LEN, PAGE_MAGIC, SLOT_LEN } from '../../protocol/wire/counter-log.js';
import type { CounterSource } from '../../hal/types.js';
import { factoryLogImage, SimLogFile } from '../../hal/sim/log-file.js';
import { isPowerLoss, NorFlash, PowerLoss } from '../../hal/sim/nor-flash.js';
import { seededRandom } from '../../hal/sim/random.js';
import { checkSource } from '../../tools/espruino-check/checker.js';

const MAX = 0xffffffff;
const BASE_SEED = Number(process.env.COUNTER_STORE_SEED ?? 20261128);
const FULL = /counter log full/;
const EXHAUSTED = /counter space exhausted/;

/** A device's counter medium plus its power switch. */
interface Rig {
  K: number;
  open(): CounterSource;
  cutAfter(ops: number): void;
  powerOn(): void;
  /** Word writes and erases (flash) or bytes written (log) so far. */
  ops(): number;
  /** `ops()` when the latest page erase began (flash), else -1. */
  lastEraseAt(): number;
  /** Copies the medium; calling the result puts the copy back. */
  snapshot(): () => void;
}

type Factory = typeof createCounterStore;

function flashRig(K: number, pageSize: number, seed: number, tornWords = false, create: Factory = createCounterStore): Rig & { flash: NorFlash } {
  const flash = new NorFlash({ pageSize, pageCount: 2, base: 0x10000, random: seededRandom(seed ^ 0x5eed), tornWords });
  return {
    K,
    flash,
    open: () => create({ block: K, kind: 'flash-pages', flash, pages: [flash.pageAddr(0), flash.pageAddr(1)] }),
    cutAfter: (n) => flash.cutAfter(n),
    powerOn: () => flash.powerOn(),
    ops: () => flash.ops,
    lastEraseAt: () => flash.lastEraseAt,
    snapshot: () => {
      const copy = flash.bytes.slice();
      return () => flash.bytes.set(copy);
    },
  };
}

function logRig(K: number, size: number, image?: Uint8Array, create: Factory = createCounterStore): Rig & { log: SimLogFile } {
  const log = image ? new SimLogFile({ image }) : new SimLogFile({ size });
  return {
    K,
    log,
    open: () => create({ block: K, kind: 'storage-log', log }),
    cutAfter: (n) => log.cutAfter(n),
    powerOn: () => log.powerOn(),
    ops: () => log.written,
    lastEraseAt: () => -1,
    snapshot: () => {
      const copy = log.bytes.slice();
      return () => log.bytes.set(copy);
    },
  };
}

/**
 * Everything one device ever did: every counter it returned, power-offs, the
 * boot numbers it recorded. Checks each event as it happens.
 */
class History {
  last = 0;
  /** Power-offs (cut or clean) since the last counter was issued. */
  offs = 0;
  issued = 0;
  sessions = 0;
  cuts = 0;
  bootRecorded = 0;
  /**
   * Constructions cut since the last one that returned. A cut construction
   * may still have recorded its boot: when the cut struck after the last byte
   * of its record that differs from 0xFF (boot 512's record ends in FF), or
   * with torn words when the torn word came out whole.
   */
  bootSlack = 0;
  full = false;

  constructor(
    readonly K: number,
    readonly context: string,
  ) {}

  fail(message: string): never {
    throw new Error(`${message} [${this.context}, session ${this.sessions}, last counter ${this.last}]`);
  }

  counter(c: number, firstOfBoot: boolean): void {
    if (!(Number.isInteger(c) && c >= 1 && c <= MAX)) this.fail(`counter ${c} outside 1..2^32-1`);
    if (c <= this.last) this.fail(`counter ${c} issued again or out of order`);
    if (firstOfBoot) {
      if (c - this.last - 1 > this.K * this.offs) this.fail(`counter ${c} skips ${c - this.last - 1} after ${this.offs} power-offs (K = ${this.K})`);
    } else if (c !== this.last + 1) {
      this.fail(`counter ${c} leaves a gap inside one boot`);
    }
    this.last = c;
    this.offs = 0;
    this.issued++;
  }

  booted(boot: number): void {
    const lo = this.bootRecorded + 1;
    const hi = lo + this.bootSlack;
    if (!(boot >= lo && boot <= hi)) this.fail(`boot ${boot}, expected ${lo === hi ? lo : `${lo}..${hi}`}`);
    this.bootRecorded = boot;
    this.bootSlack = 0;
  }

  /** A boot whose construction could not record it (log full). */
  unrecorded(boot: number): void {
    this.bootRecorded = boot - 1;
  }
}

/**
 * Draws where the next session loses power: runs the session on the medium
 * without a cut, counts its operations, and puts the medium back. The budget is
 * uniform over 0..that count (the count itself means no cut), except that a
 * session with a page erase has it cut inside the erase 40% of the time, so
 * erases are hit as often as word writes.
 */
function drawBudget(rig: Rig, calls: number, rnd: () => number): number {
  const restore = rig.snapshot();
  const before = rig.ops();
  const eraseBefore = rig.lastEraseAt();
  rig.powerOn();
  try {
    const store = rig.open();
    for (let i = 0; i < calls; i++) store.next();
  } catch (e) {
    if (!(e instanceof Error && FULL.test(e.message))) throw e;
  }
  restore();
  const ops = rig.ops() - before;
  const erase = rig.lastEraseAt();
  if (erase !== eraseBefore && erase >= before && rnd() < 0.4) return erase - before;
  return Math.floor(rnd() * (ops + 1));
}

/**
 * One power-up: open the store (a power cut may strike anywhere once `budget`
 * operations have completed), draw `calls` counters, power off.
 */
function session(rig: Rig, h: History, budget: number | undefined, calls: number): void {
  h.sessions++;
  rig.powerOn();
  if (budget !== undefined) rig.cutAfter(budget);
  let store: CounterSource;
  try {
    store = rig.open();
  } catch (e) {
    if (!isPowerLoss(e)) throw e;
    h.cuts++;
    h.offs++;
    h.bootSlack++;
    return;
  }
  h.booted(store.boot);
  for (let i = 0; i < calls; i++) {
    let c: number;
    try {
      c = store.next();
    } catch (e) {
      if (isPowerLoss(e)) {
        h.cuts++;
      } else if (e instanceof Error && FULL.test(e.message)) {
        if (i === 0) h.unrecorded(store.boot);
        h.full = true;
      } else {
        throw e;
      }
      h.offs++;
      return;
    }
    h.counter(c, i === 0);
  }
  if (h.full) h.fail('a full log issued a counter');
  h.offs++;
}

describe('counter store: normal use across reboots', () => {
  const configs: { name: string; rig: () => Rig }[] = [
    { name: 'flash-pages, 64-byte pages, K=4', rig: () => flashRig(4, 64, 1) },
    { name: 'flash-pages, 1 KB pages (Linux build), K=16', rig: () => flashRig(16, 1024, 2) },
    { name: 'storage-log, 8 KB, K=4', rig: () => logRig(4, 8192) },
  ];
  for (const cfg of configs) {
    it(`${cfg.name}: counters rise across 300 boots, the boot number by one, less than a block skipped per reboot`, () => {
      const seed = BASE_SEED + 11;
      const rnd = seededRandom(seed);
      const rig = cfg.rig();
      const h = new History(rig.K, `${cfg.name}, seed ${seed}`);
      for (let b = 1; b <= 300; b++) {
        const store = rig.open();
        expect(store.boot, h.context).toBe(b);
        const n = 1 + Math.floor(rnd() * 3 * rig.K);
        for (let i = 0; i < n; i++) {
          const c = store.next();
          if (i === 0 && c - h.last - 1 > rig.K - 1) h.fail(`reboot skipped ${c - h.last - 1} counters, K = ${rig.K}`);
          h.counter(c, i === 0);
        }
        h.offs++;
      }
      expect(h.issued).toBeGreaterThan(300);
    });
  }

  it('every board profile: its K and medium work for 40 boots from a fresh medium', () => {
    for (const board of BOARDS) {
      const K = board.device.counterBlock;
      const rig =
        board.counterStore.kind === 'storage-log'
          ? logRig(K, board.counterStore.bytes)
          : flashRig(K, board.chip === 'x86-64' || board.chip === 'node' ? 1024 : 4096, 3);
      const h = new History(K, board.id);
      for (let b = 1; b <= 40; b++) {
        const store = rig.open();
        expect(store.boot, board.id).toBe(b);
        for (let i = 0; i < 5; i++) h.counter(store.next(), i === 0);
        h.offs++;
      }
      expect(h.last, board.id).toBe(39 * K + 5);
    }
  });
});

describe('counter store: power cuts', () => {
  // Small pages and small K force a page swap every few boots, so cuts land
  // inside erases, between header words and between records. The budgets are
  // drawn so that nearly every session is cut.
  it('flash-pages: >= 10000 random cuts after any word or inside any erase, each followed by a reboot', () => {
    const configs = [
      { pageSize: 64, K: 4, sessions: 5000, tornWords: false },
      { pageSize: 64, K: 1, sessions: 3000, tornWords: false },
      { pageSize: 128, K: 16, sessions: 3000, tornWords: false },
      { pageSize: 64, K: 4, sessions: 3000, tornWords: true },
    ];
    let cuts = 0;
    let erases = 0;
    let writes = 0;
    let swaps = 0;
    for (let k = 0; k < configs.length; k++) {
      const cfg = configs[k]!;
      const seed = BASE_SEED + 100 + k;
      const rnd = seededRandom(seed);
      const rig = flashRig(cfg.K, cfg.pageSize, seed, cfg.tornWords);
      const h = new History(cfg.K, `flash-pages ${JSON.stringify(cfg)}, seed ${seed}`);
      let epoch = 0;
      for (let s = 0; s < cfg.sessions; s++) {
        const calls = 1 + Math.floor(rnd() * 3 * cfg.K);
        session(rig, h, drawBudget(rig, calls, rnd), calls);
        const e = Math.max(epochOf(rig.flash, 0), epochOf(rig.flash, 1));
        if (e < epoch) h.fail(`page epoch went back from ${epoch} to ${e}`);
        epoch = e;
      }
      expect(h.cuts, h.context).toBeGreaterThan(cfg.sessions * 0.6);
      expect(h.issued, h.context).toBeGreaterThan(cfg.sessions / 4);
      cuts += h.cuts;
      erases += rig.flash.cuts.erase;
      writes += rig.flash.cuts.write;
      swaps += epoch;
    }
    console.info(`counter store, flash-pages: ${cuts} power cuts (${erases} inside a page erase, ${writes} at a word write), ${swaps} page swaps completed`);
    expect(cuts).toBeGreaterThanOrEqual(10000);
    expect(erases).toBeGreaterThanOrEqual(2000);
    expect(writes).toBeGreaterThanOrEqual(5000);
  });

  it('storage-log: >= 10000 random cuts after any byte, most inside a record, until each log is full', () => {
    let cuts = 0;
    let mid = 0;
    let fulls = 0;
    for (let k = 0; cuts < 10000; k++) {
      const seed = BASE_SEED + 200 + k;
      const rnd = seededRandom(seed);
      const K = k % 2 === 0 ? 4 : 1;
      const rig = logRig(K, COUNTER_LOG_HEADER_LEN + SLOT_LEN * 300);
      const h = new History(K, `storage-log K=${K} 300 slots, seed ${seed}`);
      let afterFull = 0;
      while (afterFull < 10) {
        const calls = 1 + Math.floor(rnd() * 3 * K);
        session(rig, h, drawBudget(rig, calls, rnd), calls);
        if (h.full) afterFull++;
        if (h.sessions > 5000) h.fail('the log never filled');
      }
      fulls++;
      cuts += h.cuts;
      mid += rig.log.cuts.midWrite;
    }
    console.info(`counter store, storage-log: ${cuts} power cuts (${mid} inside a record) over ${fulls} logs filled to the end`);
    expect(mid).toBeGreaterThanOrEqual(5000);
  });
});

describe('counter store: full log and exhausted counter space', () => {
  it('a full log: next() throws "counter log full", again after every reboot, and never repeats', () => {
    const rig = logRig(4, COUNTER_LOG_HEADER_LEN + SLOT_LEN * 5);
    const store = rig.open();
    const got: number[] = [];
    for (let i = 0; i < 20; i++) got.push(store.next());
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(() => store.next()).toThrow('counter log full: 5 blocks of 4 counters used');
    expect(() => store.next()).toThrow(FULL);
    for (let b = 0; b < 3; b++) {
      const again = rig.open();
      expect(again.boot).toBe(2);
      expect(() => again.next()).toThrow(FULL);
    }
  });

  it('a log filled one boot at a time stops at its last slot', () => {
    const rig = logRig(4, COUNTER_LOG_HEADER_LEN + SLOT_LEN * 6);
    const firsts: number[] = [];
    for (let b = 1; b <= 6; b++) {
      const s = rig.open();
      expect(s.boot).toBe(b);
      firsts.push(s.next());
    }
    expect(firsts).toEqual([1, 5, 9, 13, 17, 21]);
    const last = rig.open();
    expect(last.boot).toBe(7);
    expect(() => last.next()).toThrow(FULL);
  });

  const media: { name: string; rig: (K: number) => Rig }[] = [
    { name: 'flash-pages', rig: (K) => flashRig(K, 64, 5) },
    { name: 'storage-log', rig: (K) => logRig(K, 64) },
  ];
  for (const m of media) {
    it(`${m.name}: K = 2^32-1 gives one block of every counter, then "exhausted" after a reboot`, () => {
      const rig = m.rig(MAX);
      const s = rig.open();
      expect([s.next(), s.next(), s.next()]).toEqual([1, 2, 3]);
      const t = rig.open();
      expect(t.boot).toBe(2);
      expect(() => t.next()).toThrow(EXHAUSTED);
      expect(() => t.next()).toThrow(EXHAUSTED);
    });

    it(`${m.name}: the last block is cut short at 2^32-1, counter 2^32-1 is issued once and nothing after it`, () => {
      const rig = m.rig(MAX - 1);
      expect(rig.open().next()).toBe(1);
      const s = rig.open();
      expect(s.next()).toBe(MAX);
      expect(() => s.next()).toThrow(EXHAUSTED);
      const t = rig.open();
      expect(() => t.next()).toThrow(EXHAUSTED);
    });
  }

  it('flash-pages: a page reserved up to 2^32-16 issues the last 15 counters, then throws on every boot', () => {
    const rig = flashRig(16, 64, 6);
    writeHeader(rig.flash, 0, { epoch: 3, n: Math.floor(MAX / 16), boot: 7 });
    const s = rig.open();
    expect(s.boot).toBe(8);
    const got: number[] = [];
    for (let i = 0; i < 15; i++) got.push(s.next());
    expect(got[0]).toBe(MAX - 14);
    expect(got[14]).toBe(MAX);
    expect(() => s.next()).toThrow(EXHAUSTED);
    expect(rig.open().boot).toBe(9);
    const t = rig.open();
    expect(t.boot).toBe(9);
    expect(() => t.next()).toThrow(EXHAUSTED);
  });
});

/** Writes a flash page header in the documented format (docs/firmware.md), optionally without its commit word. */
function writeHeader(flash: NorFlash, page: number, h: { epoch: number; n: number; boot: number }, commit = true): void {
  const b = new Uint8Array(PAGE_HEADER_LEN);
  const v = new DataView(b.buffer);
  v.setUint32(0, PAGE_MAGIC);
  v.setUint32(4, h.epoch);
  v.setUint32(8, MAX - h.epoch);
  v.setUint32(12, h.n);
  v.setUint32(16, MAX - h.n);
  v.setUint32(20, h.boot);
  v.setUint32(24, MAX - h.boot);
  v.setUint32(28, MAX - PAGE_MAGIC);
  flash.erasePage(flash.pageAddr(page));
  flash.write(commit ? b : b.subarray(0, PAGE_HEADER_LEN - 4), flash.pageAddr(page));
}

/** Epoch of a page's header if it is valid, else 0. */
function epochOf(flash: NorFlash, page: number): number {
  const b = flash.bytes.subarray(page * flash.pageSize, page * flash.pageSize + PAGE_HEADER_LEN);
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const ok =
    v.getUint32(0) === PAGE_MAGIC &&
    v.getUint32(28) === MAX - PAGE_MAGIC &&
    v.getUint32(4) === MAX - v.getUint32(8) &&
    v.getUint32(12) === MAX - v.getUint32(16) &&
    v.getUint32(20) === MAX - v.getUint32(24);
  return ok ? v.getUint32(4) : 0;
}

describe('counter store: garbage, partial erases and torn records', () => {
  it('flash-pages: two pages of random garbage are a fresh device (counter 1, boot 1)', () => {
    const seed = BASE_SEED + 300;
    const rnd = seededRandom(seed);
    for (let t = 0; t < 50; t++) {
      const rig = flashRig(4, 64, seed);
      for (let i = 0; i < rig.flash.bytes.length; i++) rig.flash.bytes[i] = Math.floor(rnd() * 256);
      const s = rig.open();
      expect(s.boot, `seed ${seed}`).toBe(1);
      expect(s.next(), `seed ${seed}`).toBe(1);
      const h = new History(4, `seed ${seed}`);
      h.counter(1, true);
      h.bootRecorded = 1;
      for (let b = 0; b < 20; b++) {
        h.offs++;
        const r = rig.open();
        h.booted(r.boot);
        for (let i = 0; i < 6; i++) h.counter(r.next(), i === 0);
      }
    }
  });

  it('flash-pages: any damage to the page not in use (garbage, bits set to 1, old pages) is ignored', () => {
    const seed = BASE_SEED + 301;
    const rnd = seededRandom(seed);
    const rig = flashRig(4, 64, seed);
    const h = new History(4, `seed ${seed}`);
    const old: Uint8Array[] = [];
    for (let round = 0; round < 400; round++) {
      h.sessions++;
      const s = rig.open();
      h.booted(s.boot);
      const calls = 1 + Math.floor(rnd() * 12);
      for (let i = 0; i < calls; i++) h.counter(s.next(), i === 0);
      h.offs++;
      const e0 = epochOf(rig.flash, 0);
      const e1 = epochOf(rig.flash, 1);
      const spare = e0 > e1 ? 1 : 0;
      const at = spare * rig.flash.pageSize;
      const page = rig.flash.bytes.subarray(at, at + rig.flash.pageSize);
      old.push(page.slice());
      const how = round % 4;
      for (let i = 0; i < page.length; i++) {
        if (how === 0) page[i] = Math.floor(rnd() * 256);
        else if (how === 1) page[i]! |= rnd() < 0.2 ? Math.floor(rnd() * 256) : 0;
        else if (how === 2) page[i] = old[Math.floor(rnd() * old.length)]![i]! | (rnd() < 0.1 ? Math.floor(rnd() * 256) : 0);
      }
      if (how === 3) page.fill(0xff);
    }
  });

  it('flash-pages: a header without its commit word is ignored, however large its state', () => {
    const rig = flashRig(4, 64, 7);
    const s = rig.open();
    // Page 0 (64 bytes: header and 8 slots) holds blocks 1..9 once counter 33 is drawn.
    for (let i = 0; i < 33; i++) s.next();
    expect(epochOf(rig.flash, 0)).toBe(1);
    writeHeader(rig.flash, 1, { epoch: 99, n: 1_000_000, boot: 500 }, false);
    expect(epochOf(rig.flash, 1)).toBe(0);
    const t = rig.open();
    expect(t.boot).toBe(2);
    expect(t.next()).toBe(37);
    expect(epochOf(rig.flash, 1)).toBe(2);
  });

  it('storage-log: a record torn after 1, 2 or 3 bytes (or 0 bytes that were not 0xFF) is skipped safely', () => {
    for (let cutAt = 0; cutAt <= 4; cutAt++) {
      const rig = logRig(4, 64);
      const s = rig.open();
      expect(s.boot).toBe(1);
      for (let i = 0; i < 5; i++) s.next();
      rig.cutAfter(cutAt);
      try {
        for (let i = 0; i < 4; i++) s.next();
      } catch (e) {
        expect(e).toBeInstanceOf(PowerLoss);
      }
      rig.powerOn();
      const t = rig.open();
      expect(t.boot, `cut after ${cutAt} bytes`).toBe(2);
      const first = t.next();
      expect(first, `cut after ${cutAt} bytes`).toBe(cutAt === 0 ? 9 : 13);
    }
  });

  it('storage-log: garbage in the slot after the last record counts as a used block and never as a boot', () => {
    const image = factoryLogImage(64);
    image.set([0x00, 0x01, 0xff, 0xfe], COUNTER_LOG_HEADER_LEN);
    image.set([0x12, 0x34, 0x56, 0x78], COUNTER_LOG_HEADER_LEN + SLOT_LEN);
    const rig = logRig(4, 64, image);
    const s = rig.open();
    expect(s.boot).toBe(2);
    expect(s.next()).toBe(9);
  });
});

describe('counter store: arguments and media it refuses', () => {
  const flash = new NorFlash({ pageSize: 64, pageCount: 4 });
  const pages = [0, 64];
  const good = { block: 4, kind: 'flash-pages', flash, pages } as CounterStoreOptions;
  it('refuses a bad block size, kind or page list, naming the argument', () => {
    expect(() => createCounterStore(undefined as unknown as CounterStoreOptions)).toThrow(/options object expected/);
    for (const block of [0, -1, 1.5, 2 ** 32, NaN, Infinity, '16']) {
      expect(() => createCounterStore({ ...good, block: block as number })).toThrow(/counter block expected 1\.\.4294967295/);
    }
    expect(() => createCounterStore({ ...good, kind: 'eeprom' } as unknown as CounterStoreOptions)).toThrow(/kind expected/);
    for (const p of [[0], [0, 0], [0, 32], [0, 64, 128], [-64, 0]]) {
      expect(() => createCounterStore({ block: 4, kind: 'flash-pages', flash, pages: p })).toThrow(/pages expected/);
    }
    const odd = { pageSize: 30, read: flash.read.bind(flash), write: flash.write.bind(flash), erasePage: flash.erasePage.bind(flash) };
    expect(() => createCounterStore({ block: 4, kind: 'flash-pages', flash: odd, pages })).toThrow(/pageSize expected/);
  });

  it('refuses a counter-log file without the magic, too small or too large, and never writes to it', () => {
    const noMagic = new SimLogFile({ image: new Uint8Array(64).fill(0xff) });
    expect(() => createCounterStore({ block: 4, kind: 'storage-log', log: noMagic })).toThrow(/no magic 53 50 63 01/);
    expect(noMagic.written).toBe(0);
    expect(() => createCounterStore({ block: 4, kind: 'storage-log', log: new SimLogFile({ size: 7 }) })).toThrow(/counter log expected 8\.\.262144 bytes, got 7/);
    expect(() => createCounterStore({ block: 4, kind: 'storage-log', log: new SimLogFile({ size: 262148 }) })).toThrow(/got 262148/);
  });
});

describe('NOR flash model', () => {
  it('writes whole aligned words by AND, erases pages to 0xFF, refuses misaligned writes', () => {
    const f = new NorFlash({ pageSize: 64, pageCount: 2, base: 0x1000 });
    f.write(new Uint8Array([0x0f, 0xff, 0x00, 0xaa]), 0x1000);
    f.write(new Uint8Array([0xf0, 0x0f, 0xff, 0xff]), 0x1000);
    expect([...f.read(0x1000, 4)]).toEqual([0x00, 0x0f, 0x00, 0xaa]);
    expect(() => f.write(new Uint8Array(4), 0x1002)).toThrow(/not word-aligned/);
    expect(() => f.write(new Uint8Array(3), 0x1000)).toThrow(/whole number of 4-byte words/);
    expect(() => f.write(new Uint8Array(4), 0x1080)).toThrow(/outside/);
    expect(() => f.erasePage(0x1010)).toThrow(/not the start of a 64-byte page/);
    f.erasePage(0x1000);
    expect([...f.read(0x1000, 4)]).toEqual([0xff, 0xff, 0xff, 0xff]);
  });

  it('cuts power after the given number of operations and stays off until powerOn', () => {
    const f = new NorFlash({ pageSize: 64 });
    f.cutAfter(2);
    expect(() => f.write(new Uint8Array(16).fill(0), 0)).toThrow(PowerLoss);
    expect([...f.bytes.subarray(0, 16)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]);
    expect(f.off).toBe(true);
    expect(() => f.read(0, 4)).toThrow(PowerLoss);
    f.powerOn();
    expect(f.read(0, 4).length).toBe(4);
    expect(f.cuts).toEqual({ write: 1, erase: 0 });
  });

  it('leaves a page cut during erase partly erased: erased, untouched and bit-damaged words (seeded)', () => {
    const f = new NorFlash({ pageSize: 4096, random: seededRandom(42) });
    f.write(new Uint8Array(4096).fill(0x00), 0);
    const kinds = { erased: 0, untouched: 0, damaged: 0 };
    for (let t = 0; t < 20; t++) {
      f.powerOn();
      f.bytes.fill(0, 0, 4096);
      f.cutAfter(0);
      expect(() => f.erasePage(0)).toThrow(PowerLoss);
      for (let w = 0; w < 4096; w += 4) {
        const word = f.bytes.subarray(w, w + 4);
        if (word.every((b) => b === 0xff)) kinds.erased++;
        else if (word.every((b) => b === 0)) kinds.untouched++;
        else kinds.damaged++;
      }
    }
    expect(kinds.erased).toBeGreaterThan(1000);
    expect(kinds.untouched).toBeGreaterThan(1000);
    expect(kinds.damaged).toBeGreaterThan(1000);
  });
});

describe('counter-log file model', () => {
  it('writes only erased bytes, refuses offset 0 and rewrites, and cuts power after any byte', () => {
    const log = new SimLogFile({ size: 16 });
    expect([...log.read(0, 5)]).toEqual([0x53, 0x50, 0x63, 0x01, 0xff]);
    log.write(new Uint8Array([1, 2]), 4);
    expect(() => log.write(new Uint8Array([1]), 4)).toThrow(/already written/);
    expect(() => log.write(new Uint8Array([0xff, 3]), 5)).toThrow(/already written/);
    expect([...log.read(4, 4)]).toEqual([1, 2, 0xff, 0xff]);
    expect(() => log.write(new Uint8Array([1]), 0)).toThrow(/offset 0/);
    expect(() => log.write(new Uint8Array(4), 14)).toThrow(/Too much data/);
    log.cutAfter(1);
    expect(() => log.write(new Uint8Array([7, 8, 9]), 8)).toThrow(PowerLoss);
    expect(() => log.read(0, 1)).toThrow(PowerLoss);
    log.powerOn();
    expect([...log.read(8, 4)]).toEqual([7, 0xff, 0xff, 0xff]);
    expect(log.cuts).toEqual({ midWrite: 1, beforeWrite: 0 });
  });
});

describe('counter store: a HAL write that fails without a power cut', () => {
  it('is not retried in the same slot: the next call reserves the following block, nothing repeats', () => {
    const inner = new SimLogFile({ size: 64 });
    let failNext = false;
    const log = {
      size: inner.size,
      read: (o: number, n: number) => inner.read(o, n),
      write: (d: Uint8Array, o: number) => {
        if (failNext) {
          failNext = false;
          inner.write(d.subarray(0, 1), o);
          throw new Error('counter log write failed');
        }
        inner.write(d, o);
      },
    };
    const s = createCounterStore({ block: 4, kind: 'storage-log', log });
    expect([s.next(), s.next(), s.next(), s.next()]).toEqual([1, 2, 3, 4]);
    failNext = true;
    expect(() => s.next()).toThrow(/write failed/);
    expect(s.next()).toBe(9);
    const t = createCounterStore({ block: 4, kind: 'storage-log', log });
    expect(t.boot).toBe(2);
    expect(t.next()).toBe(13);
  });
});

/**
 * firmware/counter-store.ts and the modules it imports, compiled to ES5 and
 * bundled as the firmware build does, as a plain script that defines
 * `createCounterStore`.
 */
let es5Cache: string | undefined;
async function es5Script(): Promise<string> {
  if (es5Cache) return es5Cache;
  const bundle = await rollup({
    input: fileURLToPath(new URL('../../firmware/counter-store.ts', import.meta.url)),
    plugins: [
      typescript({
        tsconfig: fileURLToPath(new URL('../../tsconfig.firmware.json', import.meta.url)),
        compilerOptions: { noEmit: false, outDir: join(tmpdir(), 'sealpost-cs-build'), declaration: false, removeComments: true },
        include: ['firmware/**/*.ts', 'hal/types.ts', 'hal/features.ts', 'protocol/wire/*.ts'],
      }),
    ],
  });
  const { output } = await bundle.generate({ format: 'iife', name: 'SEALPOST_CS', strict: false });
  await bundle.close();
  es5Cache = `${output[0].code}
var createCounterStore = SEALPOST_CS.createCounterStore;`;
  return es5Cache;
}

/** Loads a script defining createCounterStore into a bare vm context (no Node globals) and returns the factory. */
function loadFactory(script: string): Factory {
  const context = vm.createContext({ Uint8Array, Error });
  vm.runInContext(`${script}\nthis.createCounterStore = createCounterStore;`, context);
  return (context as { createCounterStore: Factory }).createCounterStore;
}

describe('counter store: the ES5 build', () => {
  it('passes the Espruino bundle checker, as compiled and as minified by the firmware build', async () => {
    const es5 = await es5Script();
    expect(checkSource(es5, 'counter-store.es5.js')).toEqual([]);
    const min = await minify(es5, { ecma: 5, toplevel: false, compress: { passes: 2, hoist_funs: true, hoist_vars: true }, mangle: true });
    expect(checkSource(min.code ?? '', 'counter-store.min.js')).toEqual([]);
  });

  it('survives 2000 power cuts on both media when minified and run in a bare context', async () => {
    const min = await minify(await es5Script(), { ecma: 5, toplevel: false, compress: { passes: 2, hoist_funs: true, hoist_vars: true }, mangle: true });
    const create = loadFactory(min.code ?? '');
    const seed = BASE_SEED + 400;
    const rnd = seededRandom(seed);
    const flash = flashRig(4, 64, seed, false, create);
    const log = logRig(1, 0, factoryLogImage(COUNTER_LOG_HEADER_LEN + SLOT_LEN * 2000), create);
    for (const rig of [flash, log]) {
      const h = new History(rig.K, `minified ES5 build, ${rig === flash ? 'flash-pages' : 'storage-log'}, seed ${seed}`);
      while (h.cuts < 1000) {
        const calls = 1 + Math.floor(rnd() * 3 * rig.K);
        session(rig, h, drawBudget(rig, calls, rnd), calls);
      }
      expect(h.issued).toBeGreaterThan(200);
    }
  });

  // Opt-in: the real interpreter (ESPRUINO_BIN=/path/to/espruino, the Linux
  // build). Run twice in one directory, so the second run is a real restart
  // of the interpreter on the same emulated flash.
  it.runIf(process.env.ESPRUINO_BIN)('runs on the real Espruino interpreter across restarts ($ESPRUINO_BIN)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealpost-counter-store-'));
    const file = join(dir, 'harness.js');
    writeFileSync(file, `${await es5Script()}\n${INTERPRETER_HARNESS}`);
    const run = (): string[] =>
      execFileSync(process.env.ESPRUINO_BIN!, [file], { cwd: dir, input: '', encoding: 'utf8', timeout: 120_000 })
        .replace(/\r/g, '')
        .split('\n')
        .filter((l) => l.startsWith('CS '));
    const first = run();
    const second = run();
    expect(first.filter((l) => l.endsWith('FAIL'))).toEqual([]);
    expect(second.filter((l) => l.endsWith('FAIL'))).toEqual([]);
    expect(first).toContain('CS flash boot 1 first 1 last 700');
    expect(first).toContain('CS flash boot 6 first 3501 last 4200');
    expect(second).toContain('CS flash boot 7 first 4201 last 4900');
    expect(first).toContain('CS log boot 1 first 1 last 3');
    expect(second).toContain('CS log boot 9 first 33 last 35');
    expect(second.filter((l) => l.startsWith('CS log boot 10 first 0 counter log full'))).toHaveLength(3);
    expect(first).toContain('CS limit 4294967295 then counter space exhausted');
  });
});

/**
 * The interpreter side of the opt-in test: a FlashHal over require("Flash")
 * (the last two free pages; on the Linux build the free area is Storage's own
 * area, so a Storage file keeps its start-up check from wiping the pages) and a
 * LogFileHal over require("Storage") (9 slots: full during the second run),
 * each opened six times per run.
 */
const INTERPRETER_HARNESS = String.raw`
var S = require("Storage");
var F = require("Flash");
if (!S.read("keep")) S.write("keep", "x");
var area = F.getFree()[0];
var PS = F.getPage(area.addr).length;
var flashHal = { pageSize: PS, read: function (a, n) { return F.read(n, a); }, write: function (d, a) { F.write(d, a); }, erasePage: function (a) { F.erasePage(a); } };
var PAGES = [area.addr + area.length - 2 * PS, area.addr + area.length - PS];
function logHal(name) {
  var view = new Uint8Array(S.readArrayBuffer(name));
  return { size: view.length, read: function (o, n) { return view.subarray(o, o + n); }, write: function (d, o) { if (!S.write(name, d, o)) throw new Error("write failed"); } };
}
if (!S.read("c.ctr")) S.write("c.ctr", "SPc\x01", 0, 40);
var last = { flash: 0, log: 0 };
function run(kind, open, n) {
  for (var b = 0; b < 6; b++) {
    var s = open(), first = 0, ok = true, c = 0;
    try {
      for (var i = 0; i < n; i++) { c = s.next(); if (i === 0) first = c; if (c <= last[kind]) ok = false; last[kind] = c; }
      print("CS " + kind + " boot " + s.boot + " first " + first + " last " + c + (ok ? "" : " FAIL"));
    } catch (e) { print("CS " + kind + " boot " + s.boot + " first " + first + " " + e.message + (ok ? "" : " FAIL")); }
  }
}
run("flash", function () { return createCounterStore({ block: 4, kind: "flash-pages", flash: flashHal, pages: PAGES }); }, 700);
run("log", function () { return createCounterStore({ block: 4, kind: "storage-log", log: logHal("c.ctr") }); }, 3);
if (!S.read("lim.ctr")) {
  S.write("lim.ctr", "SPc\x01", 0, 16);
  createCounterStore({ block: 4294967294, kind: "storage-log", log: logHal("lim.ctr") }).next();
  var z = createCounterStore({ block: 4294967294, kind: "storage-log", log: logHal("lim.ctr") });
  var top = z.next();
  try { z.next(); print("CS limit FAIL"); } catch (e) { print("CS limit " + top + " then " + e.message.split(":")[0]); }
}
`;

describe('counter store: factory-initialised flash pages', () => {
  it('starts from the factory header like from blank pages, and refuses pages wiped after provisioning', async () => {
    const { createPageCounters } = await import('../../firmware/counter-pages.js');
    const { initialPageHeader } = await import('../../protocol/wire/counter-log.js');
    const flash = new NorFlash({ pageSize: 128, pageCount: 2 });
    flash.bytes.set(initialPageHeader(), 0);
    const pages = [flash.pageAddr(0), flash.pageAddr(1)];
    const first = createPageCounters(flash, pages, 4, true);
    expect(first.boot).toBe(1);
    expect([first.next(), first.next(), first.next(), first.next(), first.next()]).toEqual([1, 2, 3, 4, 5]);
    const second = createPageCounters(flash, pages, 4, true);
    expect(second.boot).toBe(2);
    expect(second.next()).toBe(9);
    flash.bytes.fill(0xff);
    expect(() => createPageCounters(flash, pages, 4, true)).toThrow(/counter pages hold no counter log: the factory writes it/);
  });
});
