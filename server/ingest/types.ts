// The contract of the ingest step behind POST /v1/uplink (docs/api.md): the
// request body as the schema admits it, the answer per device entry, the
// rejection reasons a relay sees, and what the caller provides.
import type { Keyring } from '../keys.js';
import type { Renewal } from '../renewal.js';
import type { ManyKeyAes } from './aes.js';
import type { ReadingEvent, RetimeEvent, UplinkEvent } from '../events.js';
import type { Storage } from '../storage/types.js';

export interface UplinkFrame {
  data: string;
  rx: number;
}

export interface UplinkBody {
  relay: { id: string; time: number };
  devices: { serial: string; frames: UplinkFrame[] }[];
}

export interface Rejection {
  index: number;
  reason: string;
}

export interface DeviceResult {
  serial: string;
  ack: string | null;
  /**
   * Key renewal: every write for the device's `ack` characteristic in order (base64, each at most 20
   * bytes: the ack, RENEW_ACK, the six parts of ANNOUNCE); absent when the ack is all there is.
   */
  downlink?: string[];
  accepted: number;
  duplicates: number;
  rejected: Rejection[];
}

export interface IngestResult {
  devices: DeviceResult[];
  readings: ReadingEvent[];
  retimed: RetimeEvent[];
  uplinks: UplinkEvent[];
  /** Frames whose counter was reused with different content: a device fault to report. */
  reused: { serial: string; counter: number }[];
  /** Frames that failed authentication, per serial (the failed-authentication throttle counts them). */
  failedAuth: Map<string, number>;
}

export const REASONS = {
  unknownSerial: 'unknown serial',
  revoked: 'device revoked',
  badBase64: 'data is not valid base64',
  counterZero: 'counter 0 is invalid',
  authentication: 'frame authentication failed',
  reused: 'counter reused with different content',
  frameSize: (expected: number, got: number) => `wrong frame size: expected ${expected} bytes, got ${got}`,
} as const;

export interface IngestContext {
  storage: Storage;
  keyring: Keyring;
  now: number;
  /** max_relay_delay in ms: how far before the server's receive time a relay's rx is believed (section 5.2). */
  maxRelayDelay: number;
  onReuse?: (serial: string, counter: number) => void;
  /** The AES under every device's CCM (server/ingest/aes.ts); default the server's choice, deviceAes(). */
  aes?: ManyKeyAes;
  /** Key renewal (server/renewal.ts); absent when the server has none configured. */
  renewal?: Renewal;
  /** A registered device whose keys cannot be had (reason says why; never key material). */
  onKeyProblem?: (serial: string, ingestKeyId: string, reason: string) => void;
}
