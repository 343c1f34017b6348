// Espruino's Linux build: no BLE, so frames go to the console as hex lines; every crypto builtin.
// Flash.getFree() there reports Storage's own area (wiped when Storage is empty), so the counter
// log is a Storage file like on the nRF52832 boards.
import type { BoardProfile, DeviceSettings } from './types.js';

export const DEVICE: DeviceSettings = {
  id: 'espruino-linux',
  sensors: ['temperature'],
  samplePeriodMs: 1000,
  anchorPeriodMs: 60000,
  outboxFrames: 64,
  notifyIntervalMs: 10,
  counterBlock: 16,
};

export const PROFILE: BoardProfile = {
  id: DEVICE.id,
  name: 'Espruino for Linux',
  chip: 'x86-64',
  frameSize: 20,
  crypto: 'native-ccm',
  counterStore: { kind: 'storage-log', bytes: 8192 },
  variableBudget: 4096,
  storageBytes: 262144,
  bundleBytes: 16384,
  radio: 'console',
  device: DEVICE,
};
