// Big-endian integer fields in byte arrays, ES5 only: shared by the codec,
// which the server uses too, and the firmware, whose bundle then carries one
// copy of each instead of one per module.

export function put16(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >> 8) & 255;
  out[at + 1] = v & 255;
}

export function put24(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 16) & 255;
  out[at + 1] = (v >>> 8) & 255;
  out[at + 2] = v & 255;
}

export function put32(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 24) & 255;
  out[at + 1] = (v >>> 16) & 255;
  out[at + 2] = (v >>> 8) & 255;
  out[at + 3] = v & 255;
}

/** The unsigned 32-bit value at b[at .. at + 4). */
export function get32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
