// The medium-independent half of the counter store (docs/firmware.md,
// "Counter store"): a record area of 4-byte slots filled in order, one slot
// per reserved block, each holding the boot number mod 2^16 and its
// complement. firmware/counter-log.ts and firmware/counter-pages.ts give it a
// medium; a board bundle carries only the one its profile names. The
// format's constants and encoders live in protocol/wire/counter-log.ts.
//
// ES5 only, every var and function declared before it is used (Espruino 2v29
// hoists neither), no comments inside function bodies.
import type { CounterSource, SlotScan } from '../hal/types.js';
import { MAX_COUNTER } from '../protocol/wire/constants.js';
import { readU32BE } from '../protocol/wire/be.js';
import { PAGE_MAGIC, SLOT_LEN } from '../protocol/wire/counter-log.js';
import { RENEWAL } from '../hal/features.js';

/** Largest flash page the store accepts. */
export const MAX_PAGE_SIZE = 262144;

export function isUint32(x: number): boolean {
  return typeof x === 'number' && isFinite(x) && Math.floor(x) === x && x >= 0 && x <= MAX_COUNTER;
}

/** The 4 bytes at `at` are the bitwise complement of the 4 bytes at `at - 4`. */
function complements(b: Uint8Array, at: number): boolean {
  return (b[at - 4]! ^ b[at]!) === 255 && (b[at - 3]! ^ b[at + 1]!) === 255 && (b[at - 2]! ^ b[at + 2]!) === 255 && (b[at - 1]! ^ b[at + 3]!) === 255;
}

/** A complete, untorn flash page header: magic, three value/complement pairs, complemented magic, epoch from 1. */
export function headerValid(h: Uint8Array): boolean {
  return (
    readU32BE(h, 0) === PAGE_MAGIC &&
    readU32BE(h, 28) === MAX_COUNTER - PAGE_MAGIC &&
    complements(h, 8) &&
    complements(h, 16) &&
    complements(h, 24) &&
    readU32BE(h, 4) >= 1
  );
}

/** What a medium gives the core. */
export interface SlotArea {
  /** Slots in the current area. */
  cap: number;
  /** False for a blank medium (no valid page yet): nothing to scan. */
  open: boolean;
  /** Blocks reserved before the current area's first slot. */
  baseN: number;
  /** Boot number recorded with the current area. */
  baseBoot: number;
  write(slot: number, word: Uint8Array): void;
  /**
   * Flash pages only (the storage log cannot start over): starts a new area
   * whose header already records block `n` (so it is reserved) and `boot`;
   * afterwards open is true, baseN is n, baseBoot is boot and the slots are
   * empty except the first `carried` ones, which hold `carry` (renewal
   * records carried over, written before the header's commit word).
   */
  renew?(n: number, boot: number): void;
  /** Flash pages: renewal records every new page starts with (set through CounterSource.keep). */
  carry?: Uint8Array;
  /** Flash pages: slots the carried records took on the page renew started. */
  carried?: number;
}

export function checkBlock(K: number): number {
  if (!isUint32(K) || K < 1) throw new Error('counter block expected 1..4294967295, got ' + K);
  return K;
}

/**
 * Records this boot with its first block and returns the counter source.
 * `read` reads a slot of the current area; only the scan at boot reads, so
 * it is dropped after it, not kept alive with next() (about 5 variables on
 * the interpreter, docs/firmware.md "Fourth pass"); renew starts an empty area.
 * Slot tests are written out at their one use each: a slot is used unless
 * all four bytes are still erased (usedSlots), and a complete record is a
 * 16-bit boot and its complement (lastBoot). As top-level helpers they stayed
 * globals for good, about 6 variables each on the interpreter.
 */
export function openCounters(area: SlotArea, K: number, read: (slot: number) => Uint8Array, scan?: SlotScan): CounterSource {
  const word = new Uint8Array(SLOT_LEN);
  let slot = 0;
  let boot = 0;
  let cur = 1;
  let lim = 0;

  function usedSlots(): number {
    let lo = 0;
    let hi = area.cap;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const b = read(mid);
      if ((b[0]! & b[1]! & b[2]! & b[3]!) !== 255) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function lastBoot(): number {
    for (let s = slot - 1; s >= 0; s--) {
      const b = read(s);
      if ((b[0]! ^ b[2]!) === 255 && (b[1]! ^ b[3]!) === 255) return area.baseBoot + ((b[0]! * 256 + b[1]! - (area.baseBoot % 65536) + 65536) % 65536);
    }
    return area.baseBoot;
  }

  // Block n's counters are (n - 1) * K + 1 .. n * K, capped at MAX_COUNTER:
  // written out here and below rather than a helper kept for good with next()
  // (about 6 variables on the interpreter, docs/firmware.md "Fourth pass").
  function reserve(): void {
    if (lim >= MAX_COUNTER) throw new Error('counter space exhausted');
    let n: number;
    if (area.open && slot < area.cap) {
      const s = slot;
      const b16 = boot % 65536;
      slot = s + 1;
      word[0] = b16 >> 8;
      word[1] = b16 & 255;
      word[2] = word[0]! ^ 255;
      word[3] = word[1]! ^ 255;
      area.write(s, word);
      n = area.baseN + slot;
    } else if (area.renew) {
      area.renew(area.baseN + slot + 1, boot);
      slot = (RENEWAL && area.carried) || 0;
      n = area.baseN;
    } else {
      throw new Error('counter log full: ' + area.cap + ' blocks of ' + K + ' counters used');
    }
    cur = (n - 1) * K + 1;
    lim = n * K;
    if (lim > MAX_COUNTER) lim = MAX_COUNTER;
  }

  if (area.open) {
    slot = usedSlots();
    boot = lastBoot();
    if (RENEWAL && scan) area.carry = scan(read, slot);
  }
  read = undefined as unknown as (slot: number) => Uint8Array;
  boot = boot + 1;
  // The last block recorded is used up: the first counter of this boot comes from the next one.
  lim = (area.baseN + slot) * K;
  if (lim > MAX_COUNTER) lim = MAX_COUNTER;
  cur = lim + 1;
  if (lim < MAX_COUNTER && (area.renew || slot < area.cap)) reserve();

  const src: CounterSource = {
    boot: boot,
    next: function (): number {
      if (cur > lim) reserve();
      return cur++;
    },
  };
  if (RENEWAL) {
    src.room = function (words: number): number {
      if (!(area.open && slot + words < area.cap)) {
        if (!area.renew) throw new Error('counter log full: no room for a ' + words + '-slot renewal record');
        if (lim >= MAX_COUNTER) throw new Error('counter space exhausted');
        area.renew(area.baseN + slot + 1, boot);
        slot = area.carried || 0;
        cur = (area.baseN - 1) * K + 1;
        lim = area.baseN * K;
        if (lim > MAX_COUNTER) lim = MAX_COUNTER;
      }
      return (area.baseN + slot + words) * K + 1;
    };
    src.append = function (rec: Uint8Array, fresh?: boolean): void {
      for (let i = 0; i < rec.length; i += 4) area.write(slot + i / 4, rec.subarray(i, i + 4));
      slot = slot + rec.length / 4;
      if (fresh) reserve();
    };
    src.keep = function (rec: Uint8Array | undefined): void {
      area.carry = rec;
    };
  }
  return src;
}
