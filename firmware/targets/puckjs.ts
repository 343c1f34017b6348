// Firmware entry for puckjs (built to dist/puckjs.js), generated from boards/puckjs.ts by
// tools/board-entries.ts: do not edit; change the profile and run `npx tsx tools/board-entries.ts`.
// The Espruino HAL with the profile's crypto backend (native-kernel), counter store (storage-log),
// radio (ble) and sensors, each driver given the builtins it uses, then the device program.
import { DEVICE } from '../../boards/puckjs.js';
import { espruinoClock, espruinoCrc32, lockedConsole, storageLog, storageReader } from '../../hal/espruino/base.js';
import { kernelCrypto } from '../../hal/espruino/kernel.js';
import { boardGlobal, cancelTimeout, espruinoE, type LoopbackGlobal, nrf, printLine, type PuckGlobal, secondsNow, storageModule, timeout } from '../../hal/espruino/globals.js';
import { bleRadio } from '../../hal/espruino/radio.js';
import { batterySensor, puckLightSensor, puckMagnetometer, temperatureSensor } from '../../hal/espruino/sensors.js';
import { createLogCounters } from '../counter-log.js';
import { startDevice } from '../device.js';

const E = espruinoE();
const NRF = nrf();
const Storage = storageModule();
const Puck = boardGlobal<PuckGlobal>('Puck');

startDevice(
  {
    clock: espruinoClock(secondsNow(), timeout(), cancelTimeout()),
    radio: bleRadio(NRF),
    console: lockedConsole(printLine(), E, boardGlobal<LoopbackGlobal>('LoopbackA')),
    crypto: kernelCrypto(E, Storage, [1280, 2300083468, 608, 788, 848, 990, 188]),
    readFile: storageReader(Storage),
    crc32: espruinoCrc32(E),
    counters: function (block: number) {
      return createLogCounters(storageLog(Storage), block);
    },
    sensors: { temperature: temperatureSensor(E), battery: batterySensor(E), light: puckLightSensor(Puck), magnetometer: puckMagnetometer(Puck) },
  },
  DEVICE,
);
