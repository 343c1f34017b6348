// The counter store on the counter-log Storage file (docs/firmware.md,
// "Counter store"): the magic 53 50 63 01 written by the factory, then record
// slots filled into still-erased bytes. The file is never recreated, so when
// it is full the device stops sealing rather than reuse a counter.
import type { CounterSource, SlotScan, LogFileHal } from '../hal/types.js';
import { readU32BE } from '../protocol/wire/be.js';
import { COUNTER_LOG_HEADER_LEN, COUNTER_LOG_MAGIC, COUNTER_LOG_MAX_BYTES, COUNTER_LOG_MIN_BYTES, SLOT_LEN } from '../protocol/wire/counter-log.js';
import { checkBlock, openCounters } from './counter-core.js';

export function createLogCounters(log: LogFileHal, block: number, scan?: SlotScan): CounterSource {
  const K = checkBlock(block);
  if (!(log.size >= COUNTER_LOG_MIN_BYTES && log.size <= COUNTER_LOG_MAX_BYTES)) {
    throw new Error('counter log expected ' + COUNTER_LOG_MIN_BYTES + '..' + COUNTER_LOG_MAX_BYTES + ' bytes, got ' + log.size);
  }
  if (readU32BE(log.read(0, COUNTER_LOG_HEADER_LEN), 0) !== COUNTER_LOG_MAGIC) {
    throw new Error('counter log has no magic 53 50 63 01: provision this device again');
  }
  // Not inlined (firmware/device.ts, createOutbox: why). Assigned, not
  // returned directly: terser prints the annotation of `return /*@__NOINLINE__*/
  // f()` before the `return`, where the build's second pass no longer sees it
  // (rollup.config.mjs).
  const counters = /*@__NOINLINE__*/ openCounters(
    {
      cap: Math.floor((log.size - COUNTER_LOG_HEADER_LEN) / SLOT_LEN),
      open: true,
      baseN: 0,
      baseBoot: 0,
      write: function (slot: number, word: Uint8Array): void {
        log.write(word, COUNTER_LOG_HEADER_LEN + slot * SLOT_LEN);
      },
    },
    K,
    function (slot: number): Uint8Array {
      return log.read(COUNTER_LOG_HEADER_LEN + slot * SLOT_LEN, SLOT_LEN);
    },
    scan,
  );
  return counters;
}
