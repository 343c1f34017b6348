// Espruino Storage images and Intel HEX, for `sealpost flash --ohex` (which
// re-reads what the espruino CLI wrote before handing it to the operator)
// and for the tests.
//
// Storage layout (Espruino 2v29 src/jsflash.h, JsfFileHeader; the espruino
// CLI 0.1.67 writes the same in bin/espruino-cli.js setStorageBufferFile):
// files follow each other from the start of the area, each a 32-byte header
//     size   uint32 little-endian: low 24 bits the length, top 8 bits flags
//     name   28 bytes, zero-padded
// then the data, padded to the next multiple of JSF_ALIGNMENT (4 on nRF52).
// The first header whose size word is erased (FF FF FF FF) ends the list.
// A header whose name starts with a zero word is a replaced (trashed) file.

export const STORAGE_HEADER = 32;
export const STORAGE_ALIGN = 4;
const NAME_LEN = 28;

export interface StorageFile {
  name: string;
  flags: number;
  /** Offset of the file's data from the start of the Storage area. */
  offset: number;
  data: Uint8Array;
}

/** Bytes a file takes in Storage: header plus data rounded up to the alignment. */
export function storageFootprint(dataLength: number): number {
  return STORAGE_HEADER + Math.ceil(dataLength / STORAGE_ALIGN) * STORAGE_ALIGN;
}

/** The live files of a Storage area image (erased bytes are 0xFF). */
export function parseStorage(area: Uint8Array): StorageFile[] {
  const files: StorageFile[] = [];
  let at = 0;
  while (at + STORAGE_HEADER <= area.length) {
    const word = (area[at]! | (area[at + 1]! << 8) | (area[at + 2]! << 16) | (area[at + 3]! << 24)) >>> 0;
    if (word === 0xffffffff) break;
    const size = word & 0x00ffffff;
    const flags = word >>> 24;
    if (size === 0 || at + STORAGE_HEADER + size > area.length) throw new Error(`Storage header at offset ${at} is invalid (size ${size})`);
    const nameBytes = area.subarray(at + 4, at + 4 + NAME_LEN);
    const end = nameBytes.indexOf(0);
    const name = String.fromCharCode(...nameBytes.subarray(0, end < 0 ? NAME_LEN : end));
    if (nameBytes[0] !== 0) files.push({ name, flags, offset: at + STORAGE_HEADER, data: area.slice(at + STORAGE_HEADER, at + STORAGE_HEADER + size) });
    at += storageFootprint(size);
  }
  return files;
}

/**
 * The bytes of an Intel HEX file (record types 00 data, 01 end of file,
 * 02 extended segment address, 04 extended linear address) as a sparse map
 * of address ranges. Every record's checksum is checked.
 */
export interface HexImage {
  /** Byte at an absolute address, or undefined where the file has none. */
  byteAt(address: number): number | undefined;
  /** Bytes from `address` for `length`; throws where the file has no data. */
  read(address: number, length: number): Uint8Array;
  /** Lowest and one past the highest address with data. */
  start: number;
  end: number;
}

export function parseIntelHex(text: string): HexImage {
  const bytes = new Map<number, number>();
  let base = 0;
  let ended = false;
  let start = Infinity;
  let end = -Infinity;
  const lines = text.split(/\r?\n/);
  lines.forEach((line, n) => {
    if (line === '') return;
    const where = `line ${n + 1}`;
    if (ended) throw new Error(`${where}: data after the end-of-file record`);
    if (!/^:([0-9A-Fa-f]{2})+$/.test(line)) throw new Error(`${where}: not an Intel HEX record`);
    const rec = Buffer.from(line.slice(1), 'hex');
    const count = rec[0]!;
    if (rec.length !== count + 5) throw new Error(`${where}: length byte says ${count} data bytes, record has ${rec.length - 5}`);
    let sum = 0;
    for (const b of rec) sum = (sum + b) & 0xff;
    if (sum !== 0) throw new Error(`${where}: checksum mismatch`);
    const offset = (rec[1]! << 8) | rec[2]!;
    const type = rec[3]!;
    const data = rec.subarray(4, 4 + count);
    switch (type) {
      case 0x00:
        for (let i = 0; i < count; i++) {
          const a = base + offset + i;
          if (bytes.has(a)) throw new Error(`${where}: address 0x${a.toString(16)} written twice`);
          bytes.set(a, data[i]!);
          start = Math.min(start, a);
          end = Math.max(end, a + 1);
        }
        break;
      case 0x01:
        ended = true;
        break;
      case 0x02:
        base = ((data[0]! << 8) | data[1]!) * 16;
        break;
      case 0x04:
        base = ((data[0]! << 8) | data[1]!) * 0x10000;
        break;
      default:
        // 03 and 05 (start addresses) carry no data.
        break;
    }
  });
  if (!ended) throw new Error('no end-of-file record: the file is truncated');
  return {
    byteAt: (a) => bytes.get(a),
    read(address, length) {
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) {
        const b = bytes.get(address + i);
        if (b === undefined) throw new Error(`no data at 0x${(address + i).toString(16)}`);
        out[i] = b;
      }
      return out;
    },
    start: start === Infinity ? 0 : start,
    end: end === -Infinity ? 0 : end,
  };
}
