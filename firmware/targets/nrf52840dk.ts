// Firmware entry for nrf52840dk (built to dist/nrf52840dk.js), generated from boards/nrf52840dk.ts by
// tools/board-entries.ts: do not edit; change the profile and run `npx tsx tools/board-entries.ts`.
// The Espruino HAL with the profile's crypto backend (native-kernel), counter store (flash-pages),
// radio (ble) and sensors, each driver given the builtins it uses, then the device program.
import { DEVICE } from '../../boards/nrf52840dk.js';
import { espruinoClock, espruinoCrc32, flashPages, lockedConsole, storageReader } from '../../hal/espruino/base.js';
import { kernelCrypto } from '../../hal/espruino/kernel.js';
import { boardGlobal, cancelTimeout, espruinoE, flashModule, type LoopbackGlobal, nrf, printLine, secondsNow, storageModule, timeout } from '../../hal/espruino/globals.js';
import { bleRadio } from '../../hal/espruino/radio.js';
import { batteryVoltageSensor, temperatureSensor } from '../../hal/espruino/sensors.js';
import { createPageCounters } from '../counter-pages.js';
import { startDevice } from '../device.js';

const E = espruinoE();
const NRF = nrf();
const Storage = storageModule();
const Flash = flashModule();

startDevice(
  {
    clock: espruinoClock(secondsNow(), timeout(), cancelTimeout()),
    radio: bleRadio(NRF),
    console: lockedConsole(printLine(), E, boardGlobal<LoopbackGlobal>('LoopbackA')),
    crypto: kernelCrypto(E, Storage, [1280, 2300083468, 608, 788, 848, 990, 188]),
    readFile: storageReader(Storage),
    crc32: espruinoCrc32(E),
    counters: function (block: number) {
      const m = flashPages(Flash);
      return createPageCounters(m.flash, m.pages, block, true);
    },
    sensors: { temperature: temperatureSensor(E), battery_voltage: batteryVoltageSensor(NRF) },
  },
  DEVICE,
);
