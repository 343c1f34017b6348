// Big-endian integer fields in byte arrays, ES5 only: the one copy the codec,
// the host protocol modules (through protocol/index.ts) and the firmware share,
// so a bundle carries each helper once.

/**
 * The low `bytes` (2, 3 or 4) bytes of v into out[at ..], big-endian. One function for the three
 * widths the codec writes: on the interpreter each function kept in a bundle costs about 6
 * variables for good (docs/firmware.md, "Fifth pass"); the two tests cost less than a call.
 */
export function writeBE(out: Uint8Array, at: number, v: number, bytes: number): void {
  if (bytes > 3) out[at++] = (v >>> 24) & 255;
  if (bytes > 2) out[at++] = (v >>> 16) & 255;
  out[at] = (v >>> 8) & 255;
  out[at + 1] = v & 255;
}

export function writeU16BE(out: Uint8Array, at: number, v: number): void {
  writeBE(out, at, v, 2);
}

export function writeU24BE(out: Uint8Array, at: number, v: number): void {
  writeBE(out, at, v, 3);
}

export function writeU32BE(out: Uint8Array, at: number, v: number): void {
  writeBE(out, at, v, 4);
}

/** The unsigned 32-bit value at b[at .. at + 4). */
export function readU32BE(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
