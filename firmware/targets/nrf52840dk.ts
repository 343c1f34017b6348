// Firmware entry for nrf52840dk: the Espruino HAL with this board's radio, crypto
// backend and sensors, then the device program (built to dist/nrf52840dk.js).
import { DEVICE } from '../../boards/nrf52840dk.js';
import { crc32, espruinoClock, flashPages, lockedConsole, readStorageFile } from '../../hal/espruino/base.js';
import { plainCrypto } from '../../hal/espruino/crypto-hal.js';
import { bleRadio } from '../../hal/espruino/radio.js';
import { batteryVoltageSensor, temperatureSensor } from '../../hal/espruino/sensors.js';
import { startDevice } from '../device.js';
import { createPageCounters } from '../counter-pages.js';

startDevice(
  {
    clock: espruinoClock(),
    radio: bleRadio(),
    console: lockedConsole(true),
    crypto: plainCrypto(),
    readFile: readStorageFile,
    crc32: crc32,
    counters: function (block: number) {
      const m = flashPages();
      return createPageCounters(m.flash, m.pages, block, true);
    },
    sensors: { temperature: temperatureSensor(), battery_voltage: batteryVoltageSensor() },
  },
  DEVICE,
);
