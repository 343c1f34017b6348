// The provisioning journal of a batch (docs/factory.md, "Files of a batch"):
// the write-ahead log of issued devices, one text line per device, appended
// a group at a time and fdatasynced once per group.
//
//     <serial> <enc: 64 hex> <kcv: 6 hex> <device file: hex> <crc: 8 hex>\n
//
// The row holds the whole device secret file, so a durable row is enough to
// restore its device file exactly; the journal is therefore as secret as the
// device files and is created 0600. `crc` is the CRC-32 of everything before
// it on the line, so a torn or damaged line is recognised; parsing stops at
// the first line that fails and the rest is discarded (those devices are
// issued again). A serial appears more than once only when it was issued
// again after an interruption: the last row wins.
import { crc32, decodeDeviceFile, equalBytes, isSerial, keyCheckValue } from '../protocol/index.js';

export interface JournalRow {
  serial: string;
  /** HPKE enc, 64 lowercase hex: the registry row. */
  enc: string;
  /** Key check value, 6 lowercase hex. */
  kcv: string;
  /** The device secret file, exactly as written to devices/<serial>.dev. */
  file: Uint8Array;
}

/** serial (checked with isSerial), enc, kcv, device file, crc. */
const ROW = /^(\S+) ([0-9a-f]{64}) ([0-9a-f]{6}) ((?:[0-9a-f]{2}){36,135}) ([0-9a-f]{8})$/;

function crcHex(text: string): string {
  return crc32(Buffer.from(text, 'latin1')).toString(16).padStart(8, '0');
}

export function encodeJournalRow(row: JournalRow): string {
  const body = `${row.serial} ${row.enc} ${row.kcv} ${Buffer.from(row.file.buffer, row.file.byteOffset, row.file.byteLength).toString('hex')}`;
  return `${body} ${crcHex(body)}\n`;
}

/** A row that parses must also be self-consistent: its file decodes, names its serial, and has its kcv. */
function consistent(row: JournalRow): boolean {
  try {
    const d = decodeDeviceFile(row.file);
    const ok = d.serial === row.serial && equalBytes(keyCheckValue(d.sealKey), Buffer.from(row.kcv, 'hex'));
    d.sealKey.fill(0);
    d.nonceSalt.fill(0);
    d.renewal?.chain.fill(0);
    return ok;
  } catch {
    return false;
  }
}

export interface ParsedJournal {
  /** Last row per serial. */
  rows: Map<string, JournalRow>;
  /** Bytes of the journal up to the end of the last good line. */
  goodBytes: number;
  /** Good lines read. */
  lines: number;
  /** True when something after goodBytes was discarded. */
  damagedTail: boolean;
}

export function parseJournal(data: Buffer): ParsedJournal {
  const rows = new Map<string, JournalRow>();
  let at = 0;
  let lines = 0;
  while (at < data.length) {
    const end = data.indexOf(0x0a, at);
    if (end < 0) break;
    const line = data.toString('latin1', at, end);
    const m = ROW.exec(line);
    if (!m || !isSerial(m[1]) || crcHex(line.slice(0, line.length - 9)) !== m[5]) break;
    const row: JournalRow = { serial: m[1]!, enc: m[2]!, kcv: m[3]!, file: new Uint8Array(Buffer.from(m[4]!, 'hex')) };
    if (!consistent(row)) break;
    rows.set(row.serial, row);
    at = end + 1;
    lines++;
  }
  return { rows, goodBytes: at, lines, damagedTail: at < data.length };
}
