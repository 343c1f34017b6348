// The counter log's format (protocol/wire/counter-log.ts), which the factory
// writes and the firmware's counter store reads: the file image, the page
// header layout of docs/firmware.md, and agreement with the store's own
// header check.
import { describe, expect, it } from 'vitest';
import {
  COUNTER_LOG_HEADER_LEN,
  COUNTER_LOG_MAGIC,
  COUNTER_LOG_MAX_BYTES,
  counterLogImage,
  initialPageHeader,
  PAGE_HEADER_LEN,
  writePageHeader,
} from '../../protocol/wire/counter-log.js';
import { headerValid } from '../../firmware/counter-core.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('counter-log format', () => {
  it('a fresh file is the magic 53 50 63 01, then erased bytes', () => {
    const image = counterLogImage(12);
    expect(hex(image)).toBe('53506301' + 'ff'.repeat(8));
    expect(COUNTER_LOG_MAGIC).toBe(0x53506301);
    expect(COUNTER_LOG_HEADER_LEN).toBe(4);
    expect(counterLogImage(COUNTER_LOG_MAX_BYTES)).toHaveLength(262144);
  });

  it('refuses file sizes the store cannot use', () => {
    for (const bad of [7, COUNTER_LOG_MAX_BYTES + 1, 8.5, Number.NaN, '64' as unknown as number]) {
      expect(() => counterLogImage(bad), String(bad)).toThrow(/counter log size must be 8\.\.262144 bytes, got/);
    }
  });

  it('the factory page header is epoch 1, no block, boot 0, each word with its complement and the commit word', () => {
    const h = initialPageHeader();
    expect(h).toHaveLength(PAGE_HEADER_LEN);
    expect(hex(h)).toBe(['53506350', '00000001', 'fffffffe', '00000000', 'ffffffff', '00000000', 'ffffffff', 'acaf9caf'].join(''));
    expect(headerValid(h)).toBe(true);
  });

  it('writePageHeader writes headers the store accepts, and a torn one it refuses', () => {
    const h = new Uint8Array(PAGE_HEADER_LEN);
    writePageHeader(h, 7, 123456, 0xfffffffe);
    expect(hex(h.subarray(4, 28))).toBe(['00000007', 'fffffff8', '0001e240', 'fffe1dbf', 'fffffffe', '00000001'].join(''));
    expect(headerValid(h)).toBe(true);
    h[27] = 0;
    expect(headerValid(h)).toBe(false);
  });
});
