// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the same as
// Espruino's E.CRC32 (src/jswrap_espruino.c) and zlib's crc32. ES5 subset.
export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    crc ^= data[i]!;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}
