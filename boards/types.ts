// A board or product profile is typed data (style.md rule 3): code asks the
// profile, never the board's name. Compiled into the firmware, so ES5 only.
import type { CryptoBackend } from '../hal/types.js';

export type BoardId = 'puckjs' | 'mdbt42q' | 'pixljs' | 'banglejs2' | 'nrf52840dk' | 'espruino-linux' | 'sim';

/** Sensors by what they measure; each maps to codec channels (protocol/wire/codec.ts). */
export type SensorId = 'temperature' | 'battery' | 'battery_voltage' | 'light' | 'magnetometer' | 'acceleration' | 'humidity' | 'pressure';

export type CounterStoreProfile =
  /** Two raw flash pages from Flash.getFree(), written a word at a time. */
  | { kind: 'flash-pages' }
  /** A counter-log file the factory creates pre-sized and erased in Storage. */
  | { kind: 'storage-log'; bytes: number };

/**
 * What the device program reads at run time. A board file exports it as
 * DEVICE and its firmware entry imports only that, so a bundle carries these
 * few fields and none of the descriptive rest of the profile.
 */
export interface DeviceSettings {
  id: BoardId;
  sensors: SensorId[];
  samplePeriodMs: number;
  /** A periodic time anchor at least this often (besides boot and connect). */
  anchorPeriodMs: number;
  /** Frames kept until acknowledged; when full the oldest is dropped and a gap reported. */
  outboxFrames: number;
  /** Gap between notifications: Espruino drops them silently when the radio queue is full. */
  notifyIntervalMs: number;
  /** Counters reserved per durable record (RFC 8613 B.1.1 "K"). */
  counterBlock: number;
}

export interface BoardProfile {
  id: BoardId;
  name: string;
  chip: 'nRF52832' | 'nRF52840' | 'x86-64' | 'node';
  /** Bytes per frame (docs/protocol.md: 20..244; 20 needs no MTU negotiation). */
  frameSize: number;
  crypto: CryptoBackend;
  /**
   * How the device does a key renewal's public-key work (X25519, Ed25519, the RFC 9180 key schedule):
   * 'native-kernel', the curve25519 and hkdf-sha256 kernels through E.nativeCall
   * (hal/espruino/renewal-crypto.ts), which the factory writes as the Storage files sealpost.c25 and
   * sealpost.hkd. Absent where the host does it (the simulation: hal/plain) or nothing can: the x86-64
   * Linux build executes no Thumb code.
   */
  renewalCrypto?: 'native-kernel';
  counterStore: CounterStoreProfile;
  /** JsVar blocks on the stock firmware (espruino.md, "Memory"). */
  variableBudget: number;
  /** Storage area size in bytes. */
  storageBytes: number;
  /** How frames leave the device: BLE notifications, hex lines on the console, or the Node simulation. */
  radio: 'ble' | 'console' | 'sim';
  /**
   * Most bytes the board's minified firmware bundle may take; `npm run build`
   * fails above it (docs/firmware.md, "Bundle size"). Absent for the Node
   * simulation, which has no bundle.
   */
  bundleBytes?: number;
  /** Sensors, periods, outbox and counter block: the part the firmware carries. */
  device: DeviceSettings;
}
