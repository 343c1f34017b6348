// Bangle.js 2: nRF52840 with AES.ccmEncrypt; 8 MB external Storage, which Bangle.js never wipes at boot; 12000 variables.
import type { BoardProfile, DeviceSettings } from './types.js';

export const DEVICE: DeviceSettings = {
  id: 'banglejs2',
  sensors: ['temperature', 'battery', 'acceleration'],
  samplePeriodMs: 60000,
  anchorPeriodMs: 3600000,
  outboxFrames: 256,
  notifyIntervalMs: 50,
  counterBlock: 16384,
};

export const PROFILE: BoardProfile = {
  id: DEVICE.id,
  name: 'Bangle.js 2',
  chip: 'nRF52840',
  frameSize: 20,
  crypto: 'native-ccm',
  renewalCrypto: 'native-kernel',
  counterStore: { kind: 'storage-log', bytes: 65536 },
  variableBudget: 12000,
  storageBytes: 8388608,
  bundleBytes: 16384,
  radio: 'ble',
  device: DEVICE,
};
