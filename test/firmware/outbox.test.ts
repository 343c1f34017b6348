// The outbox: frames kept oldest first until a valid ack frees them, the oldest dropped and a gap reported when full.
import { describe, expect, it } from 'vitest';
import { counterAt, createOutbox, gapCount } from '../../firmware/outbox.js';

function fill(box: ReturnType<typeof createOutbox>, from: number, to: number, gapFirst = 0) {
  for (let c = from; c <= to; c++) box.push(c, gapFirst);
}
const counters = (box: ReturnType<typeof createOutbox>) => Array.from({ length: box.count }, (_, i) => counterAt(box, i));

describe('outbox', () => {
  it('keeps frames oldest first and frees them up to an acknowledged counter', () => {
    const box = createOutbox(8, 20);
    fill(box, 1, 5);
    expect(counters(box)).toEqual([1, 2, 3, 4, 5]);
    expect(box.ack(3)).toBe(3);
    expect(counters(box)).toEqual([4, 5]);
    expect(box.ack(3)).toBe(0);
    expect(box.ack(2)).toBe(0);
    expect(box.ack(100)).toBe(2);
    expect(box.count).toBe(0);
  });

  it('writes each frame into its own ring slot, counter first', () => {
    const box = createOutbox(3, 20);
    const at = box.push(0x01020304, 0);
    expect(Array.from(box.ring.subarray(at, at + 4))).toEqual([1, 2, 3, 4]);
  });

  it('when full drops the oldest and remembers one contiguous lost range', () => {
    const box = createOutbox(4, 20);
    fill(box, 1, 4);
    expect(box.gapFirst).toBe(0);
    fill(box, 5, 7);
    expect(counters(box)).toEqual([4, 5, 6, 7]);
    expect([box.gapFirst, gapCount(box), box.dropped]).toEqual([1, 3, 3]);
  });

  it('a dropped gap report hands its range back to the pending gap', () => {
    const box = createOutbox(4, 20);
    fill(box, 1, 6); // drops 1, 2
    expect([box.gapFirst, gapCount(box)]).toEqual([1, 2]);
    box.gapFirst = 0;
    box.push(7, 1); // gap report for 1..2 sealed at counter 7; drops 3
    expect([box.gapFirst, gapCount(box)]).toEqual([3, 1]);
    fill(box, 8, 11); // drops 4, 5, 6 and then 7 (the report)
    expect(counters(box)).toEqual([8, 9, 10, 11]);
    expect([box.gapFirst, gapCount(box)]).toEqual([1, 7]);
  });

  it('an ack at or past the lost range clears it: the server has settled it', () => {
    const box = createOutbox(2, 20);
    fill(box, 1, 4);
    expect([box.gapFirst, gapCount(box)]).toEqual([1, 2]);
    box.ack(1);
    expect(box.gapFirst).toBe(1);
    box.ack(2);
    expect(box.gapFirst).toBe(0);
  });

  it('makeRoom drops the oldest only when full', () => {
    const box = createOutbox(3, 20);
    fill(box, 1, 2);
    box.makeRoom();
    expect(box.count).toBe(2);
    fill(box, 3, 3);
    box.makeRoom();
    expect(counters(box)).toEqual([2, 3]);
    expect([box.gapFirst, gapCount(box)]).toEqual([1, 1]);
  });

  it('refuses a capacity below 2', () => {
    expect(() => createOutbox(1, 20)).toThrow('outbox capacity expected at least 2 frames, got 1');
  });
});
