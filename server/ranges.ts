// Inclusive counter ranges: the arithmetic behind the settled watermark and
// the visible gaps (docs/protocol.md section 6). Pure functions, no storage.
import type { Range } from './storage/types.js';

/** Islands of consecutive values in an ascending list. */
export function rangesOf(sorted: readonly number[]): Range[] {
  const out: Range[] = [];
  for (const c of sorted) {
    const last = out[out.length - 1];
    if (last && c === last.last + 1) last.last = c;
    else if (!last || c > last.last) out.push({ first: c, last: c });
  }
  return out;
}

/** Sorts and merges overlapping or touching ranges. */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a.first - b.first);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.first <= last.last + 1) last.last = Math.max(last.last, r.last);
    else out.push({ first: r.first, last: r.last });
  }
  return out;
}

/** The parts of [lo, hi] not covered by `taken` (any order, may overlap). */
export function subtractRanges(lo: number, hi: number, taken: readonly Range[]): Range[] {
  const out: Range[] = [];
  let next = lo;
  for (const t of mergeRanges(taken)) {
    if (t.last < next) continue;
    if (t.first > hi) break;
    if (t.first > next) out.push({ first: next, last: Math.min(hi, t.first - 1) });
    next = t.last + 1;
    if (next > hi) return out;
  }
  if (next <= hi) out.push({ first: next, last: hi });
  return out;
}
