// Firmware entry for espruino-linux: the Espruino HAL with this board's radio, crypto
// backend and sensors, then the device program (built to dist/espruino-linux.js).
import { DEVICE } from '../../boards/espruino-linux.js';
import { crc32, espruinoClock, storageLog, lockedConsole, readStorageFile } from '../../hal/espruino/base.js';
import { nativeCcmCrypto } from '../../hal/espruino/crypto-hal.js';
import { consoleRadio } from '../../hal/espruino/console-radio.js';
import { temperatureSensor } from '../../hal/espruino/sensors.js';
import { startDevice } from '../device.js';
import { cryptoAes, exposeGlobal, printLine } from '../../hal/espruino/globals.js';
import { createLogCounters } from '../counter-log.js';

const device = startDevice(
  {
    clock: espruinoClock(),
    radio: consoleRadio(),
    console: lockedConsole(false),
    crypto: nativeCcmCrypto(cryptoAes()),
    readFile: readStorageFile,
    crc32: crc32,
    counters: function (block: number) {
      return createLogCounters(storageLog(), block);
    },
    sensors: { temperature: temperatureSensor() },
  },
  DEVICE,
);

// The Linux target's console stays open: `sealpostStatus()` prints the
// device's counters for tests and for a developer at the prompt.
exposeGlobal('sealpostStatus', function () {
  printLine('STATUS ' + (device ? JSON.stringify(device.status()) : 'stopped'));
});
