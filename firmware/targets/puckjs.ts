// Firmware entry for puckjs: the Espruino HAL with this board's radio, crypto
// backend and sensors, then the device program (built to dist/puckjs.js).
import { DEVICE } from '../../boards/puckjs.js';
import { crc32, espruinoClock, storageLog, lockedConsole, readStorageFile } from '../../hal/espruino/base.js';
import { nativeAesCrypto } from '../../hal/espruino/crypto-hal.js';
import { bleRadio } from '../../hal/espruino/radio.js';
import { batterySensor, puckLightSensor, puckMagnetometer, temperatureSensor } from '../../hal/espruino/sensors.js';
import { startDevice } from '../device.js';
import { cryptoAes } from '../../hal/espruino/globals.js';
import { createLogCounters } from '../counter-log.js';

startDevice(
  {
    clock: espruinoClock(),
    radio: bleRadio(),
    console: lockedConsole(true),
    crypto: nativeAesCrypto(cryptoAes()),
    readFile: readStorageFile,
    crc32: crc32,
    counters: function (block: number) {
      return createLogCounters(storageLog(), block);
    },
    sensors: { temperature: temperatureSensor(), battery: batterySensor(), light: puckLightSensor(), magnetometer: puckMagnetometer() },
  },
  DEVICE,
);
