// Firmware entry for espruino-linux: the Espruino HAL with this board's radio, crypto
// backend and sensors, then the device program (built to dist/espruino-linux.js).
import { PROFILE } from '../../boards/espruino-linux.js';
import { crc32, espruinoClock, storageLog, lockedConsole, readStorageFile } from '../../hal/espruino/base.js';
import { nativeCcmCrypto } from '../../hal/espruino/crypto-hal.js';
import { consoleRadio } from '../../hal/espruino/console-radio.js';
import { temperatureSensor } from '../../hal/espruino/sensors.js';
import { startDevice } from '../device.js';
import { createLogCounters } from '../counter-log.js';

startDevice(
  {
    clock: espruinoClock(),
    radio: consoleRadio(),
    console: lockedConsole(false),
    crypto: nativeCcmCrypto(),
    readFile: readStorageFile,
    crc32: crc32,
    counters: function (block: number) {
      return createLogCounters(storageLog(), block);
    },
    sensors: { temperature: temperatureSensor() },
  },
  PROFILE,
);
