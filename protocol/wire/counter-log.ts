// The counter log's format (docs/firmware.md, "Counter store"): what the
// factory writes before the first boot and the firmware's counter store
// (firmware/counter-*.ts) reads and extends. Constants and pure encoders
// only, ES5: the store's logic stays in firmware/.
//
// Storage log (sealpost.ctr): magic 53 50 63 01, then 4-byte record slots.
// Flash pages: a 32-byte header (magic, epoch, blocks reserved, boot, each
// value followed by its complement, then the complemented magic as commit
// word), then 4-byte record slots. Every word big-endian.
import { MAX_COUNTER } from './constants.js';
import { writeU32BE } from './be.js';

/** First word of the counter-log file, big-endian, written by the factory: "SPc" 1. */
export const COUNTER_LOG_MAGIC = 0x53506301;
/** Bytes before the first record slot of the counter-log file. */
export const COUNTER_LOG_HEADER_LEN = 4;
/** Smallest counter-log file: the magic and one slot. */
export const COUNTER_LOG_MIN_BYTES = 8;
/** Largest counter-log file: 65535 slots, so a 16-bit boot field never wraps. */
export const COUNTER_LOG_MAX_BYTES = 262144;
/** Bytes of a flash page header; record slots follow it. */
export const PAGE_HEADER_LEN = 32;
/** "SPcP": first word of a flash page header, big-endian. */
export const PAGE_MAGIC = 0x53506350;
/** Bytes per record slot, one flash word. */
export const SLOT_LEN = 4;

/**
 * The counter-log file as the factory creates it for storage-log boards:
 * the magic, then erased bytes (0xFF) up to `bytes`.
 */
export function counterLogImage(bytes: number): Uint8Array {
  if (!(typeof bytes === 'number' && Math.floor(bytes) === bytes && bytes >= COUNTER_LOG_MIN_BYTES && bytes <= COUNTER_LOG_MAX_BYTES)) {
    throw new Error('counter log size must be ' + COUNTER_LOG_MIN_BYTES + '..' + COUNTER_LOG_MAX_BYTES + ' bytes, got ' + bytes);
  }
  const out = new Uint8Array(bytes);
  out.fill(255);
  writeU32BE(out, 0, COUNTER_LOG_MAGIC);
  return out;
}

/** Writes a complete flash page header (commit word included) into h[0 .. 32). */
export function writePageHeader(h: Uint8Array, epoch: number, blocks: number, boot: number): void {
  writeU32BE(h, 0, PAGE_MAGIC);
  writeU32BE(h, 4, epoch);
  writeU32BE(h, 8, MAX_COUNTER - epoch);
  writeU32BE(h, 12, blocks);
  writeU32BE(h, 16, MAX_COUNTER - blocks);
  writeU32BE(h, 20, boot);
  writeU32BE(h, 24, MAX_COUNTER - boot);
  writeU32BE(h, 28, MAX_COUNTER - PAGE_MAGIC);
}

/**
 * The header the factory writes into the first page when it provisions a
 * flash-pages board: epoch 1, no block reserved, boot 0. A device whose
 * pages hold no valid header refuses to seal, so pages wiped after
 * provisioning can never restart the counters at 1.
 */
export function initialPageHeader(): Uint8Array {
  const h = new Uint8Array(PAGE_HEADER_LEN);
  writePageHeader(h, 1, 0, 0);
  return h;
}

// Key renewal records (docs/protocol.md section 8, "Renewal records";
// docs/decisions.md, "Key renewal, item 3"): in the same slot area as the
// block records, each a run of whole slots. Every word of a renewal record
// is 00 a 00 b (two payload bytes a, b): never erased (FF FF FF FF) and never
// a block record (whose bytes 0 and 2 are complements), so the boot scan's
// "used slot" and "last boot" rules read it as a used, non-boot slot, that is
// a reserved block, as they read a torn slot. Layout: head 00 type 00 n, then
// n payload words, then two check words holding CRC-32 (big-endian) of the
// head and payload words as written.
/** Renewal record type PENDING {e, enc_e, seal key, nonce salt, chain}: 'P'. */
export const RECORD_PENDING = 0x50;
/** Renewal record type COMMIT {e, c_e}: 'C'. */
export const RECORD_COMMIT = 0x43;
/** PENDING payload bytes: epoch(4) enc(32) seal_key(16) nonce_salt(8) chain(32). */
export const PENDING_PAYLOAD_LEN = 92;
/** COMMIT payload bytes: epoch(4) c_e(4). */
export const COMMIT_PAYLOAD_LEN = 8;
/** Slots of a record with `payload` bytes (even): head, payload / 2 words, two check words. */
export function recordSlots(payload: number): number {
  return 1 + payload / 2 + 2;
}
