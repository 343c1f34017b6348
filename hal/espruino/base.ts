// The parts of the Espruino HAL every board shares: clock, console, Storage
// files, CRC and the counter medium. Board entries (firmware/targets/) add
// their radio, crypto backend and sensors.
import { COUNTER_LOG_NAME } from '../../protocol/wire/names.js';
import type { ClockHal, ConsoleHal, FlashHal, LogFileHal } from '../types.js';
import { boardGlobal, cancelTimeout, espruinoE, flashModule, printLine, secondsNow, storageModule, timeout } from './globals.js';

export function espruinoClock(): ClockHal {
  const start = secondsNow();
  return {
    uptimeMs: function (): number {
      return (secondsNow() - start) * 1000;
    },
    setTimeout: timeout,
    clearTimeout: cancelTimeout,
  };
}

/**
 * Closes the console for good on this power-up: a random password nobody
 * knows, the console locked, and the REPL moved to a loopback port so
 * neither USB, serial nor BLE reach it. (BLE UART is already off: the radio
 * sets its services with uart: false.)
 */
export function lockedConsole(lockable: boolean): ConsoleHal {
  return {
    print: printLine,
    lock: function (): void {
      if (!lockable) return;
      const E = espruinoE();
      let pw = '';
      for (let i = 0; i < 4; i++) pw += (E.hwRand() >>> 0).toString(36);
      E.setPassword(pw);
      E.lockConsole();
      const loop = boardGlobal('LoopbackA') as { setConsole(force: boolean): void } | undefined;
      if (loop) loop.setConsole(true);
    },
  };
}

export function readStorageFile(name: string): Uint8Array | undefined {
  const b = storageModule().readArrayBuffer(name);
  return b ? new Uint8Array(b) : undefined;
}

export function crc32(data: Uint8Array): number {
  return espruinoE().CRC32(data) >>> 0;
}

function rawFlash(pageSize: number): FlashHal {
  const F = flashModule();
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
export function flashPages(): { flash: FlashHal; pages: number[] } {
  const F = flashModule();
  const free = F.getFree();
  if (!free || free.length === 0) throw new Error('no free flash pages on this build: use a storage-log board profile');
  const area = free[0]!;
  const page = F.getPage(area.addr + area.length - 1);
  if (!page || area.length < 2 * page.length) throw new Error('the free flash area is smaller than two pages');
  const b = page.addr;
  return { flash: rawFlash(page.length), pages: [b - page.length, b] };
}

/** The pre-sized counter-log file the factory created in Storage. */
export function storageLog(): LogFileHal {
  const S = storageModule();
  const buf = S.readArrayBuffer(COUNTER_LOG_NAME);
  if (!buf) throw new Error('counter log ' + COUNTER_LOG_NAME + ' is missing: provision this device with sealpost flash');
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
