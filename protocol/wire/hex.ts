// Hex for code that runs on the Espruino interpreter too (no Buffer, ES5).
// Host code uses toHex/fromHex in protocol/bytes.ts, which check their input.

/** Lowercase hex of the first `length` bytes (all of them by default). */
export function hexOf(b: Uint8Array, length?: number): string {
  const n = length === undefined ? b.length : length;
  let s = '';
  for (let i = 0; i < n; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

/** Bytes of an even-length hex string (no checks: for trusted test input and the Linux target's console). */
export function bytesOfHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}
