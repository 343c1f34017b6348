// MDBT42Q module: nRF52832 with no AES builtin (SHA only); Storage 40 KB; 2950 variables.
import type { BoardProfile } from './types.js';

export const PROFILE: BoardProfile = {
  id: 'mdbt42q',
  name: 'MDBT42Q',
  chip: 'nRF52832',
  frameSize: 20,
  crypto: 'plain-js',
  sensors: ['temperature', 'battery_voltage'],
  samplePeriodMs: 60000,
  anchorPeriodMs: 3600000,
  outboxFrames: 64,
  notifyIntervalMs: 50,
  counterBlock: 16384,
  counterStore: { kind: 'storage-log', bytes: 8192 },
  variableBudget: 2950,
  storageBytes: 40960,
  radio: 'ble',
};
