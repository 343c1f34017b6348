// Firmware entry for banglejs2 (built to dist/banglejs2.js), generated from boards/banglejs2.ts by
// tools/board-entries.ts: do not edit; change the profile and run `npx tsx tools/board-entries.ts`.
// The Espruino HAL with the profile's crypto backend (native-ccm), counter store (storage-log),
// radio (ble) and sensors, each driver given the builtins it uses, then the device program.
import { DEVICE } from '../../boards/banglejs2.js';
import { espruinoClock, espruinoCrc32, lockedConsole, storageLog, storageReader } from '../../hal/espruino/base.js';
import { nativeCcmCrypto } from '../../hal/espruino/crypto-hal.js';
import { type BangleGlobal, boardGlobal, cancelTimeout, cryptoAes, espruinoE, type LoopbackGlobal, nrf, printLine, secondsNow, storageModule, timeout } from '../../hal/espruino/globals.js';
import { bleRadio } from '../../hal/espruino/radio.js';
import { bangleAcceleration, batterySensor, temperatureSensor } from '../../hal/espruino/sensors.js';
import { createLogCounters } from '../counter-log.js';
import { startDevice } from '../device.js';

const E = espruinoE();
const NRF = nrf();
const Storage = storageModule();
const Bangle = boardGlobal<BangleGlobal>('Bangle');

startDevice(
  {
    clock: espruinoClock(secondsNow(), timeout(), cancelTimeout()),
    radio: bleRadio(NRF),
    console: lockedConsole(printLine(), E, boardGlobal<LoopbackGlobal>('LoopbackA')),
    crypto: nativeCcmCrypto(cryptoAes()),
    readFile: storageReader(Storage),
    crc32: espruinoCrc32(E),
    counters: function (block: number) {
      return createLogCounters(storageLog(Storage), block);
    },
    sensors: { temperature: temperatureSensor(E), battery: batterySensor(E), acceleration: bangleAcceleration(Bangle) },
  },
  DEVICE,
);
