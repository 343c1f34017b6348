// Espruino's Linux build: no BLE, so frames go to the console as hex lines; Flash and Storage emulated in ./espruino.flash; every crypto builtin.
import type { BoardProfile } from './types.js';

export const PROFILE: BoardProfile = {
  id: 'espruino-linux',
  name: 'Espruino for Linux',
  chip: 'x86-64',
  frameSize: 20,
  crypto: 'native-ccm',
  sensors: ['temperature'],
  samplePeriodMs: 1000,
  anchorPeriodMs: 60000,
  outboxFrames: 64,
  notifyIntervalMs: 10,
  counterBlock: 16,
  counterStore: { kind: 'flash-pages' },
  variableBudget: 4096,
  storageBytes: 262144,
  radio: 'console',
};
