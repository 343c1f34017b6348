// Entry of the sim target (style.md rule 2: the implementation is chosen at
// the entry, never inside the firmware). What a board's globals are to the
// Espruino entries, a SimBoard is here: the simulated board's parts, which
// sim/device.ts (SimDevice) builds from the hal/sim models and keeps across
// power cycles. This entry makes the sim Hal from them the way the board
// profile says (crypto backend, counter store) and starts the firmware.
// Runs under Node only, so it is not part of the firmware build.
import type { BoardProfile } from '../../boards/types.js';
import { nativeAesCrypto, nativeCcmCrypto, plainCrypto } from '../../hal/espruino/crypto-hal.js';
import type { EGlobal, EspruinoStorageModule } from '../../hal/espruino/globals.js';
import { kernelCrypto, imageNumbers } from '../../hal/espruino/kernel.js';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import type { NorFlash } from '../../hal/sim/nor-flash.js';
import type { ClockHal, ConsoleHal, CryptoBackend, CryptoHal, EspruinoAes, Hal, LogFileHal, RadioHal, RenewalCryptoHal, Sensor } from '../../hal/types.js';
import { plainRenewalCrypto } from '../../hal/plain/renewal-crypto.js';
import * as renewalModule from '../renewal.js';
import { crc32 } from '../../protocol/wire/crc32.js';
import { createLogCounters } from '../counter-log.js';
import { createPageCounters } from '../counter-pages.js';
import { startDevice, type Device } from '../device.js';

/** The simulated board, as the sim entry finds it at power-up. */
export interface SimBoard {
  /** Virtual time, scoped to this power-up (hal/sim/clock.ts). */
  clock: ClockHal;
  /** The BLE peripheral with Espruino's silent drops (hal/sim/radio.ts). */
  radio: RadioHal;
  console: ConsoleHal;
  /** Storage: the files the factory wrote, by name. */
  readFile(name: string): Uint8Array | undefined;
  /** Espruino's AES builtin as the simulated build has it (sim/espruino/aes.ts). */
  aes: EspruinoAes;
  /** NOR flash whose first two pages hold the counter log on flash-pages profiles (hal/sim/nor-flash.ts). */
  flash: NorFlash;
  /** The counter-log file on storage-log profiles (hal/sim/log-file.ts). */
  log: LogFileHal | undefined;
  /** The sensor models, by SensorId (hal/sim/sensors.ts). */
  sensors: { [id: string]: Sensor };
  /**
   * What the native-kernel backend reads of the interpreter (E.getAddressOf, E.nativeCall, ...,
   * Storage.read): sim/espruino/kernel.ts's stand-in over this board's Storage files.
   */
  kernel?: { E: EGlobal; Storage: EspruinoStorageModule };
  /**
   * Key renewal, absent on a board that cannot renew: the hardware random source the renewal
   * crypto (hal/plain/renewal-crypto.ts on @noble) draws from, and probes on module loads and on
   * the crypto (SimDevice counts them).
   */
  renewal?: { hwRand(): number; loaded?(): void; tap?(crypto: RenewalCryptoHal): RenewalCryptoHal };
  /** A probe on the crypto engine the entry picked (SimDevice records what was sealed). */
  tapCrypto?(crypto: CryptoHal): CryptoHal;
}

/** The CryptoHal of each backend, as the board entries make it, on the simulated AES builtin (and kernel stand-in). */
export function simCrypto(backend: CryptoBackend, aes: EspruinoAes, kernel?: SimBoard['kernel']): CryptoHal {
  if (backend === 'native-ccm') return nativeCcmCrypto(aes);
  if (backend === 'native-aes') return nativeAesCrypto(aes);
  if (backend === 'native-kernel') {
    if (!kernel) throw new Error("crypto backend native-kernel needs the SimBoard's kernel stand-in (sim/espruino/kernel.ts)");
    return kernelCrypto(kernel.E, kernel.Storage, imageNumbers(IMAGE));
  }
  return plainCrypto();
}

/** The Hal of `board` for `profile`: its crypto backend and counter store, everything else as the board has it. */
export function simHal(board: SimBoard, profile: BoardProfile): Hal {
  const crypto = simCrypto(profile.crypto, board.aes, board.kernel);
  const flash = board.flash;
  const log = board.log;
  return {
    clock: board.clock,
    radio: board.radio,
    console: board.console,
    crypto: board.tapCrypto ? board.tapCrypto(crypto) : crypto,
    readFile: board.readFile,
    crc32,
    counters:
      profile.counterStore.kind === 'storage-log'
        ? (block, scan) => {
            if (!log) throw new Error('counter log file missing: a storage-log profile needs the SimBoard\'s log');
            return createLogCounters(log, block, scan);
          }
        : (block, scan) => createPageCounters(flash, [flash.pageAddr(0), flash.pageAddr(1)], block, true, scan),
    sensors: board.sensors,
    renewal: board.renewal
      ? {
          crypto: () => {
            const c = plainRenewalCrypto({ hwRand: board.renewal!.hwRand });
            return board.renewal!.tap ? board.renewal!.tap(c) : c;
          },
          load: () => {
            if (board.renewal!.loaded) board.renewal!.loaded();
            return renewalModule;
          },
        }
      : undefined,
  };
}

/** Powers up the firmware on `board` as `profile` says; undefined when it does not start (see its console). */
export function startSimDevice(board: SimBoard, profile: BoardProfile): Device | undefined {
  return startDevice(simHal(board, profile), profile.device);
}
