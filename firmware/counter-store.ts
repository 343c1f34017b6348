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
import { createLogCounters } from './counter-log.js';
import { createPageCounters } from './counter-pages.js';

export { createLogCounters } from './counter-log.js';
export { createPageCounters } from './counter-pages.js';

/** Where the log lives: two raw flash pages, or the counter-log Storage file. */
export type CounterStoreMedium =
  | { kind: 'flash-pages'; flash: FlashHal; pages: number[] }
  | { kind: 'storage-log'; log: LogFileHal };

/** `block` is K, the counters reserved by one durable record (board profile's counterBlock). */
export type CounterStoreOptions = { block: number } & CounterStoreMedium;

/**
 * Opens the counter log on `opts` (a flash-pages or storage-log medium),
 * records this boot together with its first block, and returns the counter
 * source. Throws when the options or the medium are unusable; a full log or
 * an exhausted counter space is reported by `next()` instead, so the device
 * can still say why it does not seal. Board bundles call createLogCounters
 * or createPageCounters directly so they carry only their own medium.
 */
export function createCounterStore(opts: CounterStoreOptions): CounterSource {
  if (!opts || typeof opts !== 'object') throw new Error('counter store: options object expected');
  if (opts.kind === 'flash-pages') return createPageCounters(opts.flash, opts.pages, opts.block);
  if (opts.kind === 'storage-log') return createLogCounters(opts.log, opts.block);
  throw new Error('counter store: kind expected "flash-pages" or "storage-log", got ' + (opts as { kind: unknown }).kind);
}
