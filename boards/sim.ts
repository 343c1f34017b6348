// The Node simulation: sim HAL (sensor models, NOR flash model, radio link); Espruino's AES stand-in.
import type { BoardProfile, DeviceSettings } from './types.js';

export const DEVICE: DeviceSettings = {
  id: 'sim',
  sensors: ['temperature', 'battery', 'humidity', 'pressure', 'light'],
  samplePeriodMs: 1000,
  anchorPeriodMs: 60000,
  outboxFrames: 64,
  notifyIntervalMs: 5,
  counterBlock: 16,
};

export const PROFILE: BoardProfile = {
  id: DEVICE.id,
  name: 'Node simulation',
  chip: 'node',
  frameSize: 20,
  crypto: 'native-ccm',
  counterStore: { kind: 'flash-pages' },
  variableBudget: 12000,
  storageBytes: 262144,
  radio: 'sim',
  device: DEVICE,
};
