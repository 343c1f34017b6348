// Frame plaintexts (docs/protocol.md, section 5.1). Shared by the firmware,
// which encodes, and the server, which decodes, so this file keeps to the ES5
// subset the Espruino interpreter accepts and allocates only what it returns.
//
// Every plaintext is exactly F - 12 bytes; byte 0 is the type:
//   0x01 sample record  boot (1, boot number mod 256) || uptime (3, seconds
//                       mod 2^24), then entries of channel (1, nonzero) ||
//                       value (2, int16); a zero channel byte or the end of
//                       the plaintext ends the list
//   0x02 time anchor    boot (2) || uptime (4, seconds) || reason (1)
//   0x03 gap report     first lost counter (4) || count (3)
// Unused bytes are zero.

import { readU32BE, writeBE } from './be.js';

export const TYPE_SAMPLE = 0x01;
export const TYPE_ANCHOR = 0x02;
export const TYPE_GAP = 0x03;

export const ANCHOR_BOOT = 0;
export const ANCHOR_CONNECT = 1;
export const ANCHOR_PERIODIC = 2;

/** int16 value meaning "the sensor gave no reading". */
export const NO_READING = -32768;
export const SAMPLE_HEADER = 5;
export const ENTRY_SIZE = 3;
export const UPTIME24_MOD = 16777216;

/**
 * Channels: id, name and the multiplier from the SI unit to the stored int16
 * (value = round(reading * mul)). Ids are part of the wire format.
 */
export interface ChannelSpec {
  id: number;
  name: string;
  mul: number;
}

/**
 * Channel names in id order, one space apart: channel id is the id-th word.
 * They are the keys sensors return (hal/types.ts). The firmware reads them
 * only through channelId, so this string is folded into that function's code,
 * which an Espruino board keeps in flash; an array of ten strings would stay
 * in RAM for good (about 29 variables, docs/firmware.md "Third pass").
 */
const CHANNEL_LIST = 'temperature battery battery_voltage light magnetic_x magnetic_y magnetic_z humidity pressure acceleration';

/** Channel names by id: the name of channel id is CHANNEL_NAMES[id - 1] (host code). */
export const CHANNEL_NAMES: string[] = /*#__PURE__*/ CHANNEL_LIST.split(' ');

/** Channel id of a sensor key, 0 when it names no channel. */
export function channelId(name: string): number {
  const list = ' ' + CHANNEL_LIST + ' ';
  const at = list.indexOf(' ' + name + ' ');
  return at < 0 || name.indexOf(' ') >= 0 ? 0 : list.substr(0, at + 1).split(' ').length - 1;
}

/**
 * Multiplier by channel id (index 0 is no channel). A Uint16Array, not an
 * array: on the interpreter it is one block of bytes instead of a variable
 * per element.
 */
export const CHANNEL_MUL = new Uint16Array([0, 100, 100, 1000, 10000, 10, 10, 10, 100, 10, 1000]);

/** SI unit of each channel id; only decoders need it, so the firmware bundle leaves it out. */
export const CHANNEL_UNITS: { [id: number]: string } = {
  1: '°C',
  2: '%',
  3: 'V',
  4: 'ratio',
  5: 'µT',
  6: 'µT',
  7: 'µT',
  8: '%RH',
  9: 'hPa',
  10: 'g',
};

/** The channel with this id, or undefined for an id the codec does not define. */
export function channelSpec(id: number): ChannelSpec | undefined {
  const name = CHANNEL_NAMES[id - 1];
  return name ? { id: id, name: name, mul: CHANNEL_MUL[id]! } : undefined;
}

/** Every channel, in id order (host tools and tests). */
export function channels(): ChannelSpec[] {
  const out: ChannelSpec[] = [];
  for (let id = 1; id <= CHANNEL_NAMES.length; id++) out.push(channelSpec(id)!);
  return out;
}

/** One reading in the channel's SI unit; NaN or undefined means no reading. */
export interface Reading {
  channel: number;
  value: number;
}

/** How many readings one sample record holds in a plaintext of `size` bytes. */
export function readingsPerRecord(size: number): number {
  return Math.floor((size - SAMPLE_HEADER) / ENTRY_SIZE);
}

/**
 * Writes one sample record into `out` (the whole plaintext, zeroed first) with
 * readings[from ..]; returns the index of the first reading that did not fit.
 * Readings on unknown channels are skipped. Each value is stored as an int16
 * of value x the channel's multiplier: rounded, saturated at +-32767,
 * NO_READING for NaN or a non-number. Written out here, not a helper: on the
 * interpreter every function of a bundle costs about 6 variables for good
 * (docs/firmware.md, "Fifth pass").
 */
export function encodeSample(out: Uint8Array, boot: number, uptime: number, readings: Reading[], from: number): number {
  out.fill(0);
  out[0] = TYPE_SAMPLE;
  out[1] = boot & 255;
  writeBE(out, 2, uptime % UPTIME24_MOD, 3);
  let at = SAMPLE_HEADER;
  let i = from;
  for (; i < readings.length && at + ENTRY_SIZE <= out.length; i++) {
    const r = readings[i]!;
    const mul = CHANNEL_MUL[r.channel];
    if (!mul) continue;
    out[at] = r.channel;
    const v = r.value;
    let q = NO_READING;
    if (typeof v === 'number' && v === v) {
      q = Math.round(v * mul);
      if (q > 32767) q = 32767;
      else if (q < -32767) q = -32767;
    }
    writeBE(out, at + 1, q, 2);
    at += ENTRY_SIZE;
  }
  return i;
}

export function encodeAnchor(out: Uint8Array, boot: number, uptime: number, reason: number): void {
  out.fill(0);
  out[0] = TYPE_ANCHOR;
  writeBE(out, 1, boot, 2);
  writeBE(out, 3, uptime, 4);
  out[7] = reason;
}

export function encodeGap(out: Uint8Array, first: number, count: number): void {
  out.fill(0);
  out[0] = TYPE_GAP;
  writeBE(out, 1, first, 4);
  writeBE(out, 5, count > 16777215 ? 16777215 : count, 3);
}

/** The smallest plaintext every type fits in: an anchor, a gap report and a one-reading sample need 8 bytes (F = 20). */
export const MIN_CODEC_PLAINTEXT = 8;

export interface DecodedReading {
  channel: number;
  name: string;
  unit: string;
  /** In the channel's unit; null when the device sent NO_READING. */
  value: number | null;
}

export type Decoded =
  | { type: 'sample'; boot8: number; uptime24: number; readings: DecodedReading[] }
  | { type: 'anchor'; boot: number; uptime: number; reason: number }
  | { type: 'gap'; first: number; count: number }
  | { type: 'unknown'; code: number };

function get16s(b: Uint8Array, at: number): number {
  const v = (b[at]! << 8) | b[at + 1]!;
  return v & 0x8000 ? v - 0x10000 : v;
}

/** Decodes an opened plaintext. Malformed records throw with the reason. */
export function decodePlaintext(pt: Uint8Array): Decoded {
  if (pt.length < MIN_CODEC_PLAINTEXT) throw new Error('plaintext expected at least ' + MIN_CODEC_PLAINTEXT + ' bytes, got ' + pt.length);
  const type = pt[0]!;
  if (type === TYPE_SAMPLE) {
    const readings: DecodedReading[] = [];
    for (let at = SAMPLE_HEADER; at + ENTRY_SIZE <= pt.length && pt[at] !== 0; at += ENTRY_SIZE) {
      const id = pt[at]!;
      const raw = get16s(pt, at + 1);
      const spec = channelSpec(id);
      readings.push({
        channel: id,
        name: spec ? spec.name : 'channel_' + id,
        unit: CHANNEL_UNITS[id] || '',
        value: raw === NO_READING ? null : spec ? raw / spec.mul : raw,
      });
    }
    return { type: 'sample', boot8: pt[1]!, uptime24: (pt[2]! << 16) | (pt[3]! << 8) | pt[4]!, readings: readings };
  }
  if (type === TYPE_ANCHOR) {
    return { type: 'anchor', boot: (pt[1]! << 8) | pt[2]!, uptime: readU32BE(pt, 3), reason: pt[7]! };
  }
  if (type === TYPE_GAP) {
    const count = (pt[5]! << 16) | (pt[6]! << 8) | pt[7]!;
    const first = readU32BE(pt, 1);
    if (first === 0 || count === 0) throw new Error('gap report with first counter ' + first + ' and count ' + count + ' is malformed');
    return { type: 'gap', first: first, count: count };
  }
  return { type: 'unknown', code: type };
}

/**
 * Full uptime of a sample from its 24-bit uptime and the full uptime of the
 * anchor it follows: the first value >= the anchor's uptime with those low
 * 24 bits. Anchors come at least every 2^24 s (194 days), so this is unique.
 */
export function sampleUptime(uptime24: number, anchorUptime: number): number {
  const base = anchorUptime - (anchorUptime % UPTIME24_MOD);
  const t = base + uptime24;
  return t >= anchorUptime ? t : t + UPTIME24_MOD;
}
