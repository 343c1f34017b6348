// MDBT42Q module: nRF52832 with no AES builtin (SHA only); Storage 40 KB; 2950 variables.
import type { BoardProfile, DeviceSettings } from './types.js';

export const DEVICE: DeviceSettings = {
  id: 'mdbt42q',
  sensors: ['temperature', 'battery_voltage'],
  samplePeriodMs: 60000,
  anchorPeriodMs: 3600000,
  outboxFrames: 64,
  notifyIntervalMs: 50,
  counterBlock: 16384,
};

export const PROFILE: BoardProfile = {
  id: DEVICE.id,
  name: 'MDBT42Q',
  chip: 'nRF52832',
  frameSize: 20,
  crypto: 'native-kernel',
  renewalCrypto: 'native-kernel',
  counterStore: { kind: 'storage-log', bytes: 8192 },
  variableBudget: 2950,
  storageBytes: 40960,
  bundleBytes: 12288,
  radio: 'ble',
  device: DEVICE,
};
