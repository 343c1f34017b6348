// Byte helpers for host code: argument checks that name the argument
// (style.md rule 6), constant-time comparison, concatenation, checked hex
// decoding. The ES5 helpers the firmware shares live in protocol/wire/.
import { ArgumentError } from './errors.js';
import { MAX_COUNTER } from './wire/constants.js';

export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array || (ArrayBuffer.isView(value) && value.constructor.name === 'Uint8Array');
}

/** Checks that `value` is a Uint8Array, of exactly `length` bytes when given. */
export function expectBytes(name: string, value: unknown, length?: number): Uint8Array {
  if (!isBytes(value)) {
    throw new ArgumentError(name, `expected a Uint8Array, got ${describe(value)}`);
  }
  if (length !== undefined && value.length !== length) {
    throw new ArgumentError(name, `expected ${length} bytes, got ${value.length}`);
  }
  return value;
}

/** Checks an integer in [min, max]. */
export function expectInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ArgumentError(name, `expected an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw new ArgumentError(name, `expected ${min}..${max}, got ${value}`);
  }
  return value;
}

/** Frame counters start at 1 and never exceed 2^32-1 (design brief, "Frames"). */
export function expectCounter(name: string, value: unknown): number {
  return expectInteger(name, value, 1, MAX_COUNTER);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `a string of length ${value.length}`;
  return typeof value;
}

/** Compares in time that depends only on the lengths, never on the contents. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Bytes of a hex string from outside (files, HTTP, the command line): checked, `name` in the error. Encoding: toHex in protocol/wire/hex.ts. */
export function fromHex(name: string, hex: string): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new ArgumentError(name, 'expected an even-length hex string');
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
