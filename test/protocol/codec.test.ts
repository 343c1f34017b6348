// The frame plaintext codec (protocol/wire/codec.ts): samples, anchors and gaps round-trip, bad input is refused.
import { describe, expect, it } from 'vitest';
import {
  ANCHOR_BOOT,
  channelId,
  channels,
  CHANNEL_UNITS,
  decodePlaintext,
  encodeAnchor,
  encodeGap,
  encodeSample,
  NO_READING,
  readingsPerRecord,
  sampleUptime,
  TYPE_SAMPLE,
  UPTIME24_MOD,
} from '../../protocol/wire/codec.js';
import { writeBE } from '../../protocol/wire/be.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('frame plaintext codec', () => {
  it('writes 2, 3 and 4-byte fields big-endian at their offset and touches no other byte (writeBE, the firmware bundles\' one writer)', () => {
    const b = new Uint8Array(6).fill(0xee);
    writeBE(b, 1, 0xfedcba98, 4);
    expect(hex(b)).toBe('eefedcba98ee');
    writeBE(b.fill(0xee), 1, 0xabcdef, 3);
    expect(hex(b)).toBe('eeabcdefeeee');
    // int16 readings: a negative value is written as its two's complement.
    writeBE(b.fill(0xee), 4, -2, 2);
    expect(hex(b)).toBe('eeeeeeeefffe');
  });

  it('encodes a one-reading sample record into the 8 bytes of a 20-byte frame, byte for byte', () => {
    const pt = new Uint8Array(8);
    const next = encodeSample(pt, 0x0102, 0x123456, [{ channel: 1, value: 21.37 }, { channel: 2, value: 88 }], 0);
    expect(hex(pt)).toBe('01' + '02' + '123456' + '01' + '0859');
    expect(next).toBe(1);
    expect(decodePlaintext(pt)).toEqual({
      type: 'sample',
      boot8: 2,
      uptime24: 0x123456,
      readings: [{ channel: 1, name: 'temperature', unit: '°C', value: 21.37 }],
    });
  });

  it('fills a larger plaintext and continues with the rest in the next record', () => {
    const pt = new Uint8Array(38);
    expect(readingsPerRecord(38)).toBe(11);
    const readings = Array.from({ length: 15 }, (_, i) => ({ channel: 1 + (i % 10), value: i / 10 }));
    const next = encodeSample(pt, 1, 100, readings, 0);
    expect(next).toBe(11);
    const decoded = decodePlaintext(pt);
    expect(decoded.type === 'sample' && decoded.readings.length).toBe(11);
    const pt2 = new Uint8Array(38);
    expect(encodeSample(pt2, 1, 100, readings, next)).toBe(15);
    const rest = decodePlaintext(pt2);
    expect(rest.type === 'sample' && rest.readings.map((r) => r.value)).toEqual([1.1, 1.2, 1.3, 1.4]);
  });

  it('round-trips every channel at its resolution, saturates out of range and marks missing readings', () => {
    // Ids, names and multipliers are wire format: a change here breaks every deployed device.
    expect(channels().map((c) => [c.id, c.name, c.mul])).toEqual([
      [1, 'temperature', 100],
      [2, 'battery', 100],
      [3, 'battery_voltage', 1000],
      [4, 'light', 10000],
      [5, 'magnetic_x', 10],
      [6, 'magnetic_y', 10],
      [7, 'magnetic_z', 10],
      [8, 'humidity', 100],
      [9, 'pressure', 10],
      [10, 'acceleration', 1000],
    ]);
    for (const spec of channels()) {
      const pt = new Uint8Array(8);
      encodeSample(pt, 0, 0, [{ channel: spec.id, value: 1.5 }], 0);
      const d = decodePlaintext(pt);
      expect(d.type === 'sample' && d.readings[0]).toMatchObject({ channel: spec.id, name: spec.name, unit: CHANNEL_UNITS[spec.id], value: 1.5 });
    }
    const pt = new Uint8Array(14);
    encodeSample(pt, 0, 0, [{ channel: 1, value: 1e9 }, { channel: 1, value: -1e9 }, { channel: 1, value: NaN }], 0);
    const d = decodePlaintext(pt);
    expect(d.type === 'sample' && d.readings.map((r) => r.value)).toEqual([327.67, -327.67, null]);
    expect(NO_READING).toBe(-32768);
  });

  it('skips readings on unknown channels when encoding, and names unknown channels when decoding', () => {
    const pt = new Uint8Array(11);
    expect(encodeSample(pt, 0, 0, [{ channel: 99, value: 1 }, { channel: 0, value: 1 }, { channel: -1, value: 1 }, { channel: 1.5, value: 1 }, { channel: 1, value: 2 }], 0)).toBe(5);
    const d = decodePlaintext(pt);
    expect(d.type === 'sample' && d.readings.map((r) => r.channel)).toEqual([1]);
    const raw = Uint8Array.from([TYPE_SAMPLE, 0, 0, 0, 0, 200, 0, 7]);
    const u = decodePlaintext(raw);
    expect(u.type === 'sample' && u.readings[0]).toEqual({ channel: 200, name: 'channel_200', unit: '', value: 7 });
  });

  it('maps every sensor key to its channel id and anything else to 0', () => {
    for (const c of channels()) expect(channelId(c.name)).toBe(c.id);
    expect(channels().map((c) => c.name).slice(0, 3)).toEqual(['temperature', 'battery', 'battery_voltage']);
    for (const bad of ['', ' ', 'temp', 'Temperature', 'battery ', 'temperature battery', 'magnetic', 'x']) expect(channelId(bad)).toBe(0);
  });

  it('encodes time anchors and gap reports', () => {
    const a = new Uint8Array(8);
    encodeAnchor(a, 513, 0xdeadbeef, ANCHOR_BOOT);
    expect(hex(a)).toBe('02' + '0201' + 'deadbeef' + '00');
    expect(decodePlaintext(a)).toEqual({ type: 'anchor', boot: 513, uptime: 0xdeadbeef, reason: 0 });
    const g = new Uint8Array(8);
    encodeGap(g, 70000, 300);
    expect(hex(g)).toBe('03' + '00011170' + '00012c');
    expect(decodePlaintext(g)).toEqual({ type: 'gap', first: 70000, count: 300 });
  });

  it('rejects malformed plaintexts with the reason, and reports unknown types as unknown', () => {
    expect(() => decodePlaintext(new Uint8Array(7))).toThrow('plaintext expected at least 8 bytes, got 7');
    expect(() => decodePlaintext(Uint8Array.from([3, 0, 0, 0, 0, 0, 0, 5]))).toThrow('gap report with first counter 0 and count 5 is malformed');
    expect(() => decodePlaintext(Uint8Array.from([3, 0, 0, 0, 9, 0, 0, 0]))).toThrow('gap report with first counter 9 and count 0 is malformed');
    expect(decodePlaintext(Uint8Array.from([0x7f, 1, 2, 3, 4, 5, 6, 7]))).toEqual({ type: 'unknown', code: 0x7f });
  });

  it('rebuilds a sample\'s full uptime from its 24 bits and the anchor before it', () => {
    expect(sampleUptime(100, 50)).toBe(100);
    expect(sampleUptime(5, UPTIME24_MOD - 10)).toBe(UPTIME24_MOD + 5);
    expect(sampleUptime(200, 3 * UPTIME24_MOD + 100)).toBe(3 * UPTIME24_MOD + 200);
    expect(sampleUptime(100, 3 * UPTIME24_MOD + 100)).toBe(3 * UPTIME24_MOD + 100);
  });
});
