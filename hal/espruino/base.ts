// The parts of the Espruino HAL every board shares: clock, console, Storage
// files, CRC and the counter media. Each receives the builtins it uses (the
// board entries in firmware/targets/ read them through ./globals.ts), so the
// drivers run against fakes under Node (test/hal/espruino/base.test.ts).
import { COUNTER_LOG_NAME, PROVISION_HINT } from '../../protocol/wire/names.js';
import type { ClockHal, ConsoleHal, FlashHal, LogFileHal } from '../types.js';
import type { EGlobal, EspruinoFlashModule, EspruinoStorageModule, LoopbackGlobal } from './globals.js';

/** Uptime from getTime() (seconds since power-up on a board) and the interpreter's timers. */
export function espruinoClock(getTime: () => number, setTimeout: (fn: (arg: number) => void, ms: number, arg: number) => unknown, clearTimeout: (handle: unknown) => void): ClockHal {
  const start = getTime();
  return {
    uptimeMs: function (): number {
      return (getTime() - start) * 1000;
    },
    setTimeout: setTimeout,
    clearTimeout: clearTimeout,
  };
}

/**
 * Closes the console for good on this power-up: a random password nobody
 * knows, the console locked, and the REPL moved to a loopback port (when the
 * build has LoopbackA) so neither USB, serial nor BLE reach it. (BLE UART is
 * already off: the radio sets its services with uart: false.)
 */
export function lockedConsole(print: (line: string) => void, E: EGlobal, loopback: LoopbackGlobal | undefined): ConsoleHal {
  const cons: ConsoleHal = {
    print: print,
    lock: function (): void {
      // Called once: the object drops it, and with it the last reference to
      // this scope (E, the loopback), which the interpreter then frees (about
      // 10 variables, docs/firmware.md "Fifth pass").
      delete (cons as Partial<ConsoleHal>).lock;
      let pw = '';
      for (let i = 0; i < 4; i++) pw += (E.hwRand() >>> 0).toString(36);
      E.setPassword(pw);
      E.lockConsole();
      if (loopback) loopback.setConsole(true);
    },
  };
  return cons;
}

/** A console that stays open (the Linux target, whose console is its radio). */
export function openConsole(print: (line: string) => void): ConsoleHal {
  return {
    print: print,
    lock: function (): void {},
  };
}

/** Reads Storage files the factory wrote; undefined when one does not exist. */
export function storageReader(S: EspruinoStorageModule): (name: string) => Uint8Array | undefined {
  return function (name: string): Uint8Array | undefined {
    const b = S.readArrayBuffer(name);
    return b ? new Uint8Array(b) : undefined;
  };
}

/** CRC-32 by the E.CRC32 builtin, as an unsigned number. */
export function espruinoCrc32(E: EGlobal): (data: Uint8Array) => number {
  return function (data: Uint8Array): number {
    return E.CRC32(data) >>> 0;
  };
}

function rawFlash(F: EspruinoFlashModule, pageSize: number): FlashHal {
  return {
    pageSize: pageSize,
    read: function (addr: number, length: number): Uint8Array {
      return F.read(length, addr);
    },
    write: function (data: Uint8Array, addr: number): void {
      F.write(data, addr);
    },
    erasePage: function (addr: number): void {
      F.erasePage(addr);
    },
  };
}

/** The last two pages of the first free flash area (require("Flash").getFree()). */
export function flashPages(F: EspruinoFlashModule): { flash: FlashHal; pages: number[] } {
  const free = F.getFree();
  if (!free || free.length === 0) throw new Error('no free flash pages on this build: use a storage-log board profile');
  const area = free[0]!;
  const page = F.getPage(area.addr + area.length - 1);
  if (!page || area.length < 2 * page.length) throw new Error('the free flash area is smaller than two pages');
  const b = page.addr;
  return { flash: rawFlash(F, page.length), pages: [b - page.length, b] };
}

/** The pre-sized counter-log file the factory created in Storage. */
export function storageLog(S: EspruinoStorageModule): LogFileHal {
  const buf = S.readArrayBuffer(COUNTER_LOG_NAME);
  if (!buf) throw new Error('counter log ' + COUNTER_LOG_NAME + ' is missing: ' + PROVISION_HINT);
  const view = new Uint8Array(buf);
  return {
    size: view.length,
    read: function (offset: number, length: number): Uint8Array {
      return view.subarray(offset, offset + length);
    },
    write: function (data: Uint8Array, offset: number): void {
      if (!S.write(COUNTER_LOG_NAME, data, offset)) throw new Error('counter log write failed');
    },
  };
}
