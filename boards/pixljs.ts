// Pixl.js: nRF52832 with SHA1 only; Storage 36 KB; 2950 variables.
import type { BoardProfile, DeviceSettings } from './types.js';

export const DEVICE: DeviceSettings = {
  id: 'pixljs',
  sensors: ['temperature', 'battery'],
  samplePeriodMs: 60000,
  anchorPeriodMs: 3600000,
  outboxFrames: 64,
  notifyIntervalMs: 50,
  counterBlock: 16384,
};

export const PROFILE: BoardProfile = {
  id: DEVICE.id,
  name: 'Pixl.js',
  chip: 'nRF52832',
  frameSize: 20,
  crypto: 'native-kernel',
  renewalCrypto: 'native-kernel',
  counterStore: { kind: 'storage-log', bytes: 8192 },
  variableBudget: 2950,
  storageBytes: 36864,
  bundleBytes: 12288,
  radio: 'ble',
  device: DEVICE,
};
