// The info characteristic a device answers with (docs/protocol.md section 7),
// read and checked before the relay takes frames from it.
import { MAX_FRAME_SIZE, MIN_FRAME_SIZE, PROTOCOL_VERSION } from '../protocol/wire/constants.js';
import { isSerial } from '../protocol/serial.js';
import { RelayError } from './contracts.js';

/** docs/protocol.md section 7, "info". */
export interface DeviceInfo {
  serial: string;
  v: number;
  f: number;
  b: string;
  fw: string;
}

/** Parses the info characteristic; throws a RelayError naming the bad field. */
export function parseDeviceInfo(value: string | Uint8Array): DeviceInfo {
  const text = typeof value === 'string' ? value : new TextDecoder().decode(value);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new RelayError(`device info is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new RelayError('device info is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (!isSerial(d.serial)) throw new RelayError(`device info serial is not a serial: ${JSON.stringify(d.serial)}`);
  if (d.v !== PROTOCOL_VERSION) throw new RelayError(`device ${d.serial} speaks protocol ${JSON.stringify(d.v)}; this relay speaks ${PROTOCOL_VERSION}`);
  if (typeof d.f !== 'number' || !Number.isInteger(d.f) || d.f < MIN_FRAME_SIZE || d.f > MAX_FRAME_SIZE) {
    throw new RelayError(`device ${d.serial} info f (frame size) must be ${MIN_FRAME_SIZE}..${MAX_FRAME_SIZE}, got ${JSON.stringify(d.f)}`);
  }
  return { serial: d.serial, v: d.v, f: d.f, b: typeof d.b === 'string' ? d.b.slice(0, 32) : '', fw: typeof d.fw === 'string' ? d.fw.slice(0, 32) : '' };
}
