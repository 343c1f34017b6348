// Hex, ES5 only (no Buffer), so the firmware, the Espruino self-test and the
// host share one encoder. Decoding comes in two kinds on purpose: fromHex in
// protocol/bytes.ts checks its input and names the field for host input;
// fromHexUnchecked here does not, for the interpreter's own trusted input.

/** Lowercase hex of the first `length` bytes (all of them by default). */
export function toHex(b: Uint8Array, length?: number): string {
  const n = length === undefined ? b.length : length;
  let s = '';
  for (let i = 0; i < n; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

/** Bytes of an even-length hex string, unchecked: for committed test vectors and the Linux target's console. */
export function fromHexUnchecked(h: string): Uint8Array {
  const out = new Uint8Array(h.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}
