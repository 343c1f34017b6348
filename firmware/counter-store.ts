// Frame counters that are never reused under a key, across reboots and power
// loss (design brief, "Counters that survive power loss"; RFC 8613 appendix
// B.1.1): counters are reserved in blocks of K, each block is recorded durably
// before its first counter is used, and a boot starts at the first block that
// is not recorded. Formats, the recovery algorithm and why every power cut is
// safe: docs/firmware.md, "Counter store".
//
// Runs on the Espruino interpreter: ES5 only, every var and function declared
// before it is used (Espruino 2v29 hoists neither, docs/espruino-notes.md), no
// comments inside function bodies, buffers allocated once. `next()` inside a
// block is a comparison and an increment; flash is touched only at boot and
// once per K counters.
//
// Both media hold the same thing: a record area of 4-byte slots, filled in
// order, one slot per reserved block. A used slot (not FF FF FF FF) counts as a
// reserved block even when it is torn; a valid slot also says which boot wrote
// it. The storage log is one such area after a 4-byte magic; the flash pages
// put one area on each page after a 32-byte header that carries the state
// across page swaps.
import type { CounterSource, FlashHal, LogFileHal } from '../hal/types.js';

/** Where the log lives: two raw flash pages, or the counter-log Storage file. */
export type CounterStoreMedium =
  | { kind: 'flash-pages'; flash: FlashHal; pages: number[] }
  | { kind: 'storage-log'; log: LogFileHal };

/** `block` is K, the counters reserved by one durable record (board profile's counterBlock). */
export type CounterStoreOptions = { block: number } & CounterStoreMedium;

/** First bytes of the counter-log file, written by the factory: "SPc" 1. */
export const COUNTER_LOG_MAGIC = [0x53, 0x50, 0x63, 0x01];
/** Bytes before the first record slot of the counter-log file. */
export const COUNTER_LOG_HEADER_LEN = 4;
/** Largest counter-log file: 65535 slots, so a 16-bit boot field never wraps. */
export const COUNTER_LOG_MAX_BYTES = 262144;
/** Bytes of a flash page header; record slots follow it. */
export const PAGE_HEADER_LEN = 32;
/** "SPcP": first word of a flash page header, big-endian. */
export const PAGE_MAGIC = 0x53506350;
/** Bytes per record slot, one flash word. */
export const SLOT_LEN = 4;

const MAX_COUNTER = 0xffffffff;
const MAX_PAGE_SIZE = 262144;

function isUint32(x: number): boolean {
  return typeof x === 'number' && isFinite(x) && Math.floor(x) === x && x >= 0 && x <= MAX_COUNTER;
}

function getWord(b: Uint8Array, at: number): number {
  return b[at]! * 16777216 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

function putWord(b: Uint8Array, at: number, v: number): void {
  const hi = Math.floor(v / 65536);
  const lo = v % 65536;
  b[at] = hi >> 8;
  b[at + 1] = hi & 255;
  b[at + 2] = lo >> 8;
  b[at + 3] = lo & 255;
}

/** The 4 bytes at `at` are the bitwise complement of the 4 bytes at `at - 4`. */
function complements(b: Uint8Array, at: number): boolean {
  return (b[at - 4]! ^ b[at]!) === 255 && (b[at - 3]! ^ b[at + 1]!) === 255 && (b[at - 2]! ^ b[at + 2]!) === 255 && (b[at - 1]! ^ b[at + 3]!) === 255;
}

/** A complete, untorn flash page header: magic, three value/complement pairs, complemented magic, epoch from 1. */
function headerValid(h: Uint8Array): boolean {
  return (
    getWord(h, 0) === PAGE_MAGIC &&
    getWord(h, 28) === MAX_COUNTER - PAGE_MAGIC &&
    complements(h, 8) &&
    complements(h, 16) &&
    complements(h, 24) &&
    getWord(h, 4) >= 1
  );
}

/** A record slot as read from the medium: used unless all four bytes are still erased. */
function slotUsed(b: Uint8Array): boolean {
  return (b[0]! & b[1]! & b[2]! & b[3]!) !== 255;
}

/** A complete record: 16-bit boot, then its complement. */
function slotValid(b: Uint8Array): boolean {
  return (b[0]! ^ b[2]!) === 255 && (b[1]! ^ b[3]!) === 255;
}

/**
 * Opens the counter log on `opts` (a flash-pages or storage-log medium),
 * records this boot together with its first block, and returns the counter
 * source. Throws when the options or the medium are unusable; a full log or
 * an exhausted counter space is reported by `next()` instead, so the device
 * can still say why it does not seal.
 */
export function createCounterStore(opts: CounterStoreOptions): CounterSource {
  if (!opts || typeof opts !== 'object') throw new Error('counter store: options object expected');
  const K = opts.block;
  if (!isUint32(K) || K < 1) throw new Error('counter store: block expected an integer 1..4294967295, got ' + K);
  let flash: FlashHal | undefined;
  let log: LogFileHal | undefined;
  let pages: number[] = [];
  if (opts.kind === 'flash-pages') {
    flash = opts.flash;
    pages = opts.pages;
  } else if (opts.kind === 'storage-log') {
    log = opts.log;
  } else {
    throw new Error('counter store: kind expected "flash-pages" or "storage-log", got ' + (opts as { kind: unknown }).kind);
  }
  const word = new Uint8Array(SLOT_LEN);
  const hdr = new Uint8Array(PAGE_HEADER_LEN);
  const hdrBody = hdr.subarray(0, PAGE_HEADER_LEN - 4);
  const hdrCommit = hdr.subarray(PAGE_HEADER_LEN - 4);
  let open = !!log;
  let inUse = 1;
  let epoch = 0;
  let baseN = 0;
  let baseBoot = 0;
  let area = 0;
  let cap = 0;
  let slot = 0;
  let boot = 0;
  let cur = 1;
  let lim = 0;

  function readSlot(s: number): Uint8Array {
    return log ? log.read(area + s * SLOT_LEN, SLOT_LEN) : flash!.read(area + s * SLOT_LEN, SLOT_LEN);
  }

  function usedSlots(): number {
    let lo = 0;
    let hi = cap;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (slotUsed(readSlot(mid))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function lastBoot(): number {
    for (let s = slot - 1; s >= 0; s--) {
      const b = readSlot(s);
      if (slotValid(b)) return baseBoot + ((b[0]! * 256 + b[1]! - (baseBoot % 65536) + 65536) % 65536);
    }
    return baseBoot;
  }

  function setBlock(n: number): void {
    cur = (n - 1) * K + 1;
    lim = n * K;
    if (lim > MAX_COUNTER) lim = MAX_COUNTER;
  }

  function swap(n: number): void {
    const to = 1 - inUse;
    const addr = pages[to]!;
    flash!.erasePage(addr);
    putWord(hdr, 0, PAGE_MAGIC);
    putWord(hdr, 4, epoch + 1);
    putWord(hdr, 8, MAX_COUNTER - epoch - 1);
    putWord(hdr, 12, n);
    putWord(hdr, 16, MAX_COUNTER - n);
    putWord(hdr, 20, boot);
    putWord(hdr, 24, MAX_COUNTER - boot);
    putWord(hdr, 28, MAX_COUNTER - PAGE_MAGIC);
    flash!.write(hdrBody, addr);
    flash!.write(hdrCommit, addr + PAGE_HEADER_LEN - 4);
    open = true;
    inUse = to;
    epoch = epoch + 1;
    baseN = n;
    baseBoot = boot;
    area = addr + PAGE_HEADER_LEN;
    slot = 0;
  }

  function logFull(): Error {
    return new Error(
      'counter log is full: all ' + cap + ' blocks of ' + K + ' counters are used; this device must stop sealing, a counter is never reused',
    );
  }

  function exhausted(): Error {
    return new Error('counter space exhausted: every counter up to 4294967295 is used; this device must stop sealing, a counter is never reused');
  }

  function reserve(): void {
    if (lim >= MAX_COUNTER) throw exhausted();
    if (open && slot < cap) {
      const s = slot;
      const b16 = boot % 65536;
      slot = s + 1;
      word[0] = b16 >> 8;
      word[1] = b16 & 255;
      word[2] = word[0]! ^ 255;
      word[3] = word[1]! ^ 255;
      if (log) log.write(word, area + s * SLOT_LEN);
      else flash!.write(word, area + s * SLOT_LEN);
      setBlock(baseN + slot);
    } else if (log) {
      throw logFull();
    } else {
      swap(baseN + slot + 1);
      setBlock(baseN);
    }
  }

  if (log) {
    if (!(log.size >= COUNTER_LOG_HEADER_LEN + SLOT_LEN && log.size <= COUNTER_LOG_MAX_BYTES)) {
      throw new Error('counter log expected 8..' + COUNTER_LOG_MAX_BYTES + ' bytes, got ' + log.size);
    }
    const m = log.read(0, COUNTER_LOG_HEADER_LEN);
    if (m[0] !== COUNTER_LOG_MAGIC[0] || m[1] !== COUNTER_LOG_MAGIC[1] || m[2] !== COUNTER_LOG_MAGIC[2] || m[3] !== COUNTER_LOG_MAGIC[3]) {
      throw new Error('counter log has no magic 53 50 63 01: the factory creates it pre-sized and erased; it is never recreated on the device');
    }
    area = COUNTER_LOG_HEADER_LEN;
    cap = Math.floor((log.size - COUNTER_LOG_HEADER_LEN) / SLOT_LEN);
  } else {
    const ps = flash!.pageSize;
    if (!(isUint32(ps) && ps % SLOT_LEN === 0 && ps >= PAGE_HEADER_LEN + SLOT_LEN && ps <= MAX_PAGE_SIZE)) {
      throw new Error('counter store: flash pageSize expected a multiple of 4 in 36..' + MAX_PAGE_SIZE + ', got ' + ps);
    }
    if (!pages || pages.length !== 2) throw new Error('counter store: pages expected two page base addresses, got ' + pages);
    if (!(isUint32(pages[0]!) && isUint32(pages[1]!) && pages[0]! % ps === 0 && pages[1]! % ps === 0 && pages[0] !== pages[1])) {
      throw new Error('counter store: pages expected two different addresses aligned to ' + ps + ', got ' + pages[0] + ', ' + pages[1]);
    }
    cap = (ps - PAGE_HEADER_LEN) / SLOT_LEN;
    for (let i = 0; i < 2; i++) {
      const h = flash!.read(pages[i]!, PAGE_HEADER_LEN);
      if (headerValid(h) && getWord(h, 4) > epoch) {
        open = true;
        inUse = i;
        epoch = getWord(h, 4);
        baseN = getWord(h, 12);
        baseBoot = getWord(h, 20);
      }
    }
    area = pages[inUse]! + PAGE_HEADER_LEN;
  }
  if (open) {
    slot = usedSlots();
    boot = lastBoot();
  }
  boot = boot + 1;
  setBlock(baseN + slot);
  cur = lim + 1;
  if (lim < MAX_COUNTER && (!log || slot < cap)) reserve();

  return {
    boot: boot,
    next: function (): number {
      if (cur > lim) reserve();
      return cur++;
    },
  };
}
