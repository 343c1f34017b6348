// The counter store on two raw flash pages (docs/firmware.md, "Counter
// store"): each page is a 32-byte header (magic, epoch, blocks reserved before
// the page, boot, each with its complement, then a commit word written last)
// followed by record slots. The page in use is the valid one with the higher
// epoch; only the other page is ever erased. The factory writes the first
// header (initialPageHeader in protocol/wire/counter-log.ts); a device whose
// pages hold no valid header refuses to seal (`requireHeader`).
import type { CounterSource, SlotScan, FlashHal } from '../hal/types.js';
import { readU32BE } from '../protocol/wire/be.js';
import { PAGE_HEADER_LEN, SLOT_LEN, writePageHeader } from '../protocol/wire/counter-log.js';
import { RENEWAL } from '../hal/features.js';
import { checkBlock, headerValid, isUint32, MAX_PAGE_SIZE, openCounters, type SlotArea } from './counter-core.js';

export function createPageCounters(flash: FlashHal, pages: number[], block: number, requireHeader?: boolean, scan?: SlotScan): CounterSource {
  const K = checkBlock(block);
  const ps = flash.pageSize;
  if (!(isUint32(ps) && ps % SLOT_LEN === 0 && ps >= PAGE_HEADER_LEN + SLOT_LEN && ps <= MAX_PAGE_SIZE)) {
    throw new Error('counter store: flash pageSize expected a multiple of 4 in 36..' + MAX_PAGE_SIZE + ', got ' + ps);
  }
  if (!pages || pages.length !== 2) throw new Error('counter store: pages expected two page base addresses, got ' + pages);
  if (!(isUint32(pages[0]!) && isUint32(pages[1]!) && pages[0]! % ps === 0 && pages[1]! % ps === 0 && pages[0] !== pages[1])) {
    throw new Error('counter store: pages expected two different addresses aligned to ' + ps + ', got ' + pages[0] + ', ' + pages[1]);
  }
  const hdr = new Uint8Array(PAGE_HEADER_LEN);
  const hdrBody = hdr.subarray(0, PAGE_HEADER_LEN - 4);
  const hdrCommit = hdr.subarray(PAGE_HEADER_LEN - 4);
  let inUse = 1;
  let epoch = 0;
  let base = pages[1]! + PAGE_HEADER_LEN;
  const area: SlotArea = {
    cap: (ps - PAGE_HEADER_LEN) / SLOT_LEN,
    open: false,
    baseN: 0,
    baseBoot: 0,
    write: function (slot: number, word: Uint8Array): void {
      flash.write(word, base + slot * SLOT_LEN);
    },
    renew: function (n: number, boot: number): void {
      const to = 1 - inUse;
      const addr = pages[to]!;
      flash.erasePage(addr);
      writePageHeader(hdr, epoch + 1, n, boot);
      flash.write(hdrBody, addr);
      if (RENEWAL) {
        area.carried = 0;
        if (area.carry) {
          flash.write(area.carry, addr + PAGE_HEADER_LEN);
          area.carried = area.carry.length / SLOT_LEN;
        }
      }
      flash.write(hdrCommit, addr + PAGE_HEADER_LEN - 4);
      inUse = to;
      epoch = epoch + 1;
      base = addr + PAGE_HEADER_LEN;
      area.open = true;
      area.baseN = n;
      area.baseBoot = boot;
    },
  };
  for (let i = 0; i < 2; i++) {
    const h = flash.read(pages[i]!, PAGE_HEADER_LEN);
    if (headerValid(h) && readU32BE(h, 4) > epoch) {
      area.open = true;
      inUse = i;
      epoch = readU32BE(h, 4);
      area.baseN = readU32BE(h, 12);
      area.baseBoot = readU32BE(h, 20);
    }
  }
  if (requireHeader && !area.open) {
    throw new Error('counter pages hold no counter log: the factory writes it when it provisions the device; refusing to start counters at 1 again');
  }
  base = pages[inUse]! + PAGE_HEADER_LEN;
  return openCounters(
    area,
    K,
    function (slot: number): Uint8Array {
      return flash.read(base + slot * SLOT_LEN, SLOT_LEN);
    },
    scan,
  );
}
