// The shared Espruino HAL parts (hal/espruino/base.ts) on hand-made builtins:
// clock, console lock, Storage reader, CRC, the free flash pages and the
// counter-log file, each given what the board entry would read from globals.
import { describe, expect, it } from 'vitest';
import { espruinoClock, espruinoCrc32, flashPages, lockedConsole, openConsole, storageLog, storageReader } from '../../../hal/espruino/base.js';
import type { EGlobal, EspruinoFlashModule, EspruinoStorageModule } from '../../../hal/espruino/globals.js';
import { COUNTER_LOG_NAME } from '../../../protocol/wire/names.js';
import { counterLogImage } from '../../../protocol/wire/counter-log.js';
import { crc32 } from '../../../protocol/wire/crc32.js';

function fakeStorage(files: Record<string, Uint8Array>, writable = true) {
  const writes: { name: string; data: Uint8Array; offset?: number }[] = [];
  const S: EspruinoStorageModule = {
    readArrayBuffer: (name) => files[name]?.buffer as ArrayBuffer | undefined,
    read: (name) => (files[name] ? Buffer.from(files[name]).toString('latin1') : undefined),
    write: (name, data, offset) => {
      writes.push({ name, data: Uint8Array.from(data as Uint8Array), offset });
      if (!writable) return false;
      files[name]!.set(data as Uint8Array, offset);
      return true;
    },
  };
  return { S, writes };
}

describe('espruinoClock', () => {
  it('counts uptime in ms from the first getTime() and passes timers through', () => {
    let now = 100.5;
    const set = (fn: (arg: number) => void, ms: number, arg: number) => ({ fn, ms, arg });
    const cleared: unknown[] = [];
    const clock = espruinoClock(() => now, set, (h) => cleared.push(h));
    now = 102;
    expect(clock.uptimeMs()).toBe(1500);
    const fn = () => {};
    const handle = clock.setTimeout(fn, 50, 3);
    expect(handle).toEqual({ fn, ms: 50, arg: 3 });
    clock.clearTimeout(handle);
    expect(cleared).toEqual([handle]);
  });
});

describe('consoles', () => {
  it('lockedConsole prints through print, and lock sets a random password, locks and moves the REPL to the loopback', () => {
    const lines: string[] = [];
    const calls: string[] = [];
    let word = 0;
    const E = {
      hwRand: () => (word += 0x9e3779b9) | 0,
      setPassword: (pw: string) => calls.push(`password ${pw.length > 8 ? 'long' : 'short'}`),
      lockConsole: () => calls.push('lock'),
    } as unknown as EGlobal;
    const loopback = { setConsole: (force: boolean) => calls.push(`loopback ${force}`) };
    const console = lockedConsole((l) => lines.push(l), E, loopback);
    console.print('sealpost SP-1 kcv 000000');
    expect(lines).toEqual(['sealpost SP-1 kcv 000000']);
    expect(calls).toEqual([]);
    console.lock();
    expect(calls).toEqual(['password long', 'lock', 'loopback true']);
    // Called once: the console drops lock() (and with it what it holds) once it has run; print stays.
    expect(console.lock).toBeUndefined();
    console.print('after the lock');
    expect(lines).toEqual(['sealpost SP-1 kcv 000000', 'after the lock']);
  });

  it('lockedConsole locks without a loopback on builds that lack LoopbackA', () => {
    const calls: string[] = [];
    const E = { hwRand: () => 12345, setPassword: () => calls.push('password'), lockConsole: () => calls.push('lock') } as unknown as EGlobal;
    lockedConsole(() => {}, E, undefined).lock();
    expect(calls).toEqual(['password', 'lock']);
  });

  it('openConsole prints and never locks', () => {
    const lines: string[] = [];
    const console = openConsole((l) => lines.push(l));
    console.lock();
    console.print('still open');
    expect(lines).toEqual(['still open']);
  });
});

describe('Storage files and CRC', () => {
  it('storageReader returns a file as bytes, undefined when it does not exist', () => {
    const { S } = fakeStorage({ 'sealpost.dev': new Uint8Array([1, 2, 3]) });
    const read = storageReader(S);
    expect(read('sealpost.dev')).toEqual(new Uint8Array([1, 2, 3]));
    expect(read('missing')).toBeUndefined();
  });

  it('espruinoCrc32 turns E.CRC32 (a signed int on the interpreter) into an unsigned number', () => {
    const data = new Uint8Array([0x53, 0x50, 0x64, 0x01]);
    const E = { CRC32: (d: Uint8Array) => crc32(d) | 0 } as unknown as EGlobal;
    expect(espruinoCrc32(E)(data)).toBe(crc32(data));
  });
});

describe('flashPages', () => {
  it('takes the last two pages of the first free area', () => {
    const reads: [number, number][] = [];
    const F: EspruinoFlashModule = {
      getFree: () => [{ addr: 0xf0000, length: 4 * 4096 }, { addr: 0x80000, length: 8192 }],
      getPage: (addr) => ({ addr: addr - (addr % 4096), length: 4096 }),
      read: (length, addr) => {
        reads.push([length, addr]);
        return new Uint8Array(length);
      },
      write: () => {},
      erasePage: () => {},
    };
    const m = flashPages(F);
    expect(m.pages).toEqual([0xf2000, 0xf3000]);
    expect(m.flash.pageSize).toBe(4096);
    m.flash.read(0xf2000, 32);
    expect(reads).toEqual([[32, 0xf2000]]);
  });

  it('refuses a build without free flash or with less than two pages of it', () => {
    const base = { read: () => new Uint8Array(0), write: () => {}, erasePage: () => {} };
    expect(() => flashPages({ ...base, getFree: () => [], getPage: () => undefined })).toThrow(/no free flash pages on this build: use a storage-log board profile/);
    expect(() => flashPages({ ...base, getFree: () => [{ addr: 0x1000, length: 4096 }], getPage: () => ({ addr: 0x1000, length: 4096 }) })).toThrow(/smaller than two pages/);
  });
});

describe('storageLog', () => {
  it('reads the factory file and writes records at their offset into it', () => {
    const files = { [COUNTER_LOG_NAME]: counterLogImage(16) };
    const { S, writes } = fakeStorage(files);
    const log = storageLog(S);
    expect(log.size).toBe(16);
    expect(log.read(0, 4)).toEqual(new Uint8Array([0x53, 0x50, 0x63, 0x01]));
    log.write(new Uint8Array([0, 1, 0xff, 0xfe]), 4);
    expect(writes).toEqual([{ name: COUNTER_LOG_NAME, data: new Uint8Array([0, 1, 0xff, 0xfe]), offset: 4 }]);
    expect(log.read(4, 4)).toEqual(new Uint8Array([0, 1, 0xff, 0xfe]));
  });

  it('throws when the file is missing or a write fails', () => {
    expect(() => storageLog(fakeStorage({}).S)).toThrow('counter log sealpost.ctr is missing: provision this device with sealpost flash');
    const log = storageLog(fakeStorage({ [COUNTER_LOG_NAME]: counterLogImage(16) }, false).S);
    expect(() => log.write(new Uint8Array(4), 4)).toThrow('counter log write failed');
  });
});
