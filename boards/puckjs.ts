// Puck.js v2: nRF52832, AES ECB/CBC builtins but no CCM (seals with the compiled kernel, measured faster); Storage 40 KB; 2630 variables.
import type { BoardProfile, DeviceSettings } from './types.js';

export const DEVICE: DeviceSettings = {
  id: 'puckjs',
  sensors: ['temperature', 'battery', 'light', 'magnetometer'],
  samplePeriodMs: 60000,
  anchorPeriodMs: 3600000,
  outboxFrames: 64,
  notifyIntervalMs: 50,
  counterBlock: 16384,
};

export const PROFILE: BoardProfile = {
  id: DEVICE.id,
  name: 'Puck.js',
  chip: 'nRF52832',
  frameSize: 20,
  crypto: 'native-kernel',
  renewalCrypto: 'native-kernel',
  counterStore: { kind: 'storage-log', bytes: 8192 },
  variableBudget: 2630,
  storageBytes: 40960,
  bundleBytes: 12288,
  radio: 'ble',
  device: DEVICE,
};
