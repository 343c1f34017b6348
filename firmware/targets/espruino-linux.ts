// Firmware entry for espruino-linux (built to dist/espruino-linux.js), generated from boards/espruino-linux.ts by
// tools/board-entries.ts: do not edit; change the profile and run `npx tsx tools/board-entries.ts`.
// The Espruino HAL with the profile's crypto backend (native-ccm), counter store (storage-log),
// radio (console) and sensors, each driver given the builtins it uses, then the device program.
import { DEVICE } from '../../boards/espruino-linux.js';
import { espruinoClock, espruinoCrc32, openConsole, storageLog, storageReader } from '../../hal/espruino/base.js';
import { nativeCcmCrypto } from '../../hal/espruino/crypto-hal.js';
import { cancelTimeout, cryptoAes, espruinoE, exposeGlobal, printLine, secondsNow, storageModule, timeout } from '../../hal/espruino/globals.js';
import { consoleRadio } from '../../hal/espruino/console-radio.js';
import { temperatureSensor } from '../../hal/espruino/sensors.js';
import { createLogCounters } from '../counter-log.js';
import { startDevice } from '../device.js';

const E = espruinoE();
const Storage = storageModule();

const device = startDevice(
  {
    clock: espruinoClock(secondsNow(), timeout(), cancelTimeout()),
    radio: consoleRadio(printLine(), exposeGlobal),
    console: openConsole(printLine()),
    crypto: nativeCcmCrypto(cryptoAes()),
    readFile: storageReader(Storage),
    crc32: espruinoCrc32(E),
    counters: function (block: number) {
      return createLogCounters(storageLog(Storage), block);
    },
    sensors: { temperature: temperatureSensor(E) },
  },
  DEVICE,
);

// A console target's console stays open: `sealpostStatus()` prints the
// device's counters for tests and for a developer at the prompt.
exposeGlobal('sealpostStatus', function () {
  printLine()('STATUS ' + (device ? JSON.stringify(device.status()) : 'stopped'));
});
