// Big-endian integer fields in byte arrays, ES5 only: the one copy the codec,
// the host protocol modules (through protocol/index.ts) and the firmware share,
// so a bundle carries each helper once.

export function writeU16BE(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >> 8) & 255;
  out[at + 1] = v & 255;
}

export function writeU24BE(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 16) & 255;
  out[at + 1] = (v >>> 8) & 255;
  out[at + 2] = v & 255;
}

export function writeU32BE(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 24) & 255;
  out[at + 1] = (v >>> 16) & 255;
  out[at + 2] = (v >>> 8) & 255;
  out[at + 3] = v & 255;
}

/** The unsigned 32-bit value at b[at .. at + 4). */
export function readU32BE(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
