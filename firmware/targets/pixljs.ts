// Firmware entry for pixljs: the Espruino HAL with this board's radio, crypto
// backend and sensors, then the device program (built to dist/pixljs.js).
import { DEVICE } from '../../boards/pixljs.js';
import { crc32, espruinoClock, storageLog, lockedConsole, readStorageFile } from '../../hal/espruino/base.js';
import { plainCrypto } from '../../hal/espruino/crypto-hal.js';
import { bleRadio } from '../../hal/espruino/radio.js';
import { batterySensor, temperatureSensor } from '../../hal/espruino/sensors.js';
import { startDevice } from '../device.js';
import { createLogCounters } from '../counter-log.js';

startDevice(
  {
    clock: espruinoClock(),
    radio: bleRadio(),
    console: lockedConsole(true),
    crypto: plainCrypto(),
    readFile: readStorageFile,
    crc32: crc32,
    counters: function (block: number) {
      return createLogCounters(storageLog(), block);
    },
    sensors: { temperature: temperatureSensor(), battery: batterySensor() },
  },
  DEVICE,
);
