// nRF52840 DK: no crypto builtins in the stock build; free flash pages between firmware and Storage; 12500 variables.
import type { BoardProfile, DeviceSettings } from './types.js';

export const DEVICE: DeviceSettings = {
  id: 'nrf52840dk',
  sensors: ['temperature', 'battery_voltage'],
  samplePeriodMs: 60000,
  anchorPeriodMs: 3600000,
  outboxFrames: 256,
  notifyIntervalMs: 50,
  counterBlock: 1024,
};

export const PROFILE: BoardProfile = {
  id: DEVICE.id,
  name: 'nRF52840 DK',
  chip: 'nRF52840',
  frameSize: 20,
  crypto: 'native-kernel',
  renewalCrypto: 'native-kernel',
  counterStore: { kind: 'flash-pages' },
  variableBudget: 12500,
  storageBytes: 40960,
  bundleBytes: 16384,
  radio: 'ble',
  device: DEVICE,
};
