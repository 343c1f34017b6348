// Serial ranges for `sealpost provision --serials FIRST-LAST` (docs/factory.md,
// "Serial ranges"). A serial in a range is a fixed prefix followed by a
// zero-padded decimal number of fixed width: SP-000001 is prefix "SP-",
// width 6, number 1. FIRST and LAST must have the same prefix and width, so
// the text is two serials of equal length joined by the middle "-", which is
// what makes "SP-000001-SP-001000" unambiguous although serials contain "-".
import { checkSerial } from '../protocol/index.js';

/** Devices per batch: the manifest of a full batch stays near 10 MB. */
export const MAX_BATCH_DEVICES = 100_000;
/** Widest number kept exact in a double (10^15 < 2^53). */
const MAX_WIDTH = 15;

export interface SerialRange {
  /** Everything before the trailing digits, e.g. "SP-". */
  prefix: string;
  /** Number of digits, e.g. 6. */
  width: number;
  first: number;
  last: number;
  count: number;
}

export class SerialRangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SerialRangeError';
  }
}

const EXAMPLE = 'e.g. SP-000001-SP-001000 (a prefix and a zero-padded number, the same width on both sides)';

function split(serial: string, side: string): { prefix: string; digits: string } {
  try {
    checkSerial(serial);
  } catch (e) {
    throw new SerialRangeError(`--serials ${side} serial ${(e as Error).message.replace(/^serial /, '')}`);
  }
  const m = /^(.*?)([0-9]+)$/.exec(serial);
  // The lazy prefix takes the shortest text, so the digits are the whole
  // trailing run of digits: "A10001" is prefix "A", number 10001.
  if (!m) throw new SerialRangeError(`--serials ${side} serial "${serial}" does not end in a number; ${EXAMPLE}`);
  return { prefix: m[1]!, digits: m[2]! };
}

export function parseSerialRange(text: string): SerialRange {
  if (typeof text !== 'string' || text.length === 0) throw new SerialRangeError(`--serials expects FIRST-LAST, ${EXAMPLE}`);
  const mid = (text.length - 1) / 2;
  if (!Number.isInteger(mid) || text[mid] !== '-') {
    throw new SerialRangeError(`--serials "${text.slice(0, 80)}" is not FIRST-LAST with FIRST and LAST of equal length; ${EXAMPLE}`);
  }
  const a = split(text.slice(0, mid), 'first');
  const b = split(text.slice(mid + 1), 'last');
  if (a.prefix !== b.prefix || a.digits.length !== b.digits.length) {
    throw new SerialRangeError(`--serials first and last must share prefix and number width: "${a.prefix}"+${a.digits.length} digits vs "${b.prefix}"+${b.digits.length} digits; ${EXAMPLE}`);
  }
  if (a.digits.length > MAX_WIDTH) throw new SerialRangeError(`--serials numbers may have at most ${MAX_WIDTH} digits, got ${a.digits.length}`);
  const first = Number(a.digits);
  const last = Number(b.digits);
  if (first > last) throw new SerialRangeError(`--serials first ${text.slice(0, mid)} comes after last ${text.slice(mid + 1)}`);
  const count = last - first + 1;
  if (count > MAX_BATCH_DEVICES) {
    throw new SerialRangeError(`--serials covers ${count} devices; a batch holds at most ${MAX_BATCH_DEVICES}: split it into several batches`);
  }
  return { prefix: a.prefix, width: a.digits.length, first, last, count };
}

export function serialAt(range: SerialRange, index: number): string {
  return range.prefix + String(range.first + index).padStart(range.width, '0');
}

export function formatRange(range: SerialRange): string {
  return `${serialAt(range, 0)}-${serialAt(range, range.count - 1)}`;
}

/** The index of `serial` in `range`, or undefined when it is not in it. */
export function indexInRange(range: SerialRange, serial: string): number | undefined {
  if (serial.length !== range.prefix.length + range.width || !serial.startsWith(range.prefix)) return undefined;
  const digits = serial.slice(range.prefix.length);
  if (!/^[0-9]+$/.test(digits)) return undefined;
  const n = Number(digits);
  return n >= range.first && n <= range.last ? n - range.first : undefined;
}

/**
 * Whether two ranges share a serial, even when they split prefix and number
 * differently: "SP-0" + 5 digits and "SP-" + 6 digits name the same strings.
 */
export function rangesOverlap(a: SerialRange, b: SerialRange): boolean {
  if (a.prefix.length + a.width !== b.prefix.length + b.width) return false;
  const [short, long] = a.prefix.length <= b.prefix.length ? [a, b] : [b, a];
  if (!long.prefix.startsWith(short.prefix)) return false;
  const extra = long.prefix.slice(short.prefix.length);
  if (!/^[0-9]*$/.test(extra)) return false;
  const base = extra === '' ? 0 : Number(extra) * 10 ** long.width;
  return base + long.first <= short.last && short.first <= base + long.last;
}
