// The counter-log Storage file for Node: a LogFileHal that behaves as
// require("Storage").write(name, data, offset) does on a pre-sized file
// (Espruino 2v29 jsfWriteFile, measured on the Linux build 2026-11-28):
// - every target byte must still be erased (0xFF), checked before anything is
//   written; otherwise the write throws "File already written with different
//   data" and writes nothing (measured: this holds even when the new byte
//   equals the old one);
// - writing past the end throws "Too much data for file size";
// - a write at offset 0 to a file that is not all erased makes Espruino
//   delete the file and create a new one (jsfWriteFile), which would lose the
//   log: the model refuses it.
// A power cut can strike after any byte: the write in progress keeps the bytes
// before the cut, throws PowerLoss, and every later call throws PowerLoss until
// powerOn(). The bytes survive, so a store opened after powerOn() is a reboot.
import type { LogFileHal } from '../types.js';
import { writeU32BE } from '../../protocol/wire/be.js';
import { COUNTER_LOG_HEADER_LEN, COUNTER_LOG_MAGIC } from '../../protocol/wire/counter-log.js';
import { PowerCuts } from './power.js';

export interface SimLogFileOptions {
  /** A fresh file as the factory creates it: magic, then 0xFF up to `size` bytes. */
  size?: number;
  /** Or these exact contents (copied). */
  image?: Uint8Array;
}

/**
 * The counter-log file as the factory creates it (magic, then erased bytes;
 * protocol/wire/counter-log.ts), at any size that holds the magic: unlike
 * counterLogImage, the model also takes sizes the factory refuses, so tests
 * can show the firmware refusing them.
 */
export function factoryLogImage(size: number): Uint8Array {
  if (!Number.isInteger(size) || size < COUNTER_LOG_HEADER_LEN) throw new Error(`log file: size expected an integer >= 4, got ${size}`);
  const image = new Uint8Array(size).fill(0xff);
  writeU32BE(image, 0, COUNTER_LOG_MAGIC);
  return image;
}

export class SimLogFile extends PowerCuts implements LogFileHal {
  readonly size: number;
  /** The file's bytes. Tests may read or damage them directly. */
  readonly bytes: Uint8Array;
  /** Bytes written since creation. */
  written = 0;
  /** Power cuts so far: inside a write call after some of its bytes, or before its first byte. */
  cuts = { midWrite: 0, beforeWrite: 0 };

  constructor(opts: SimLogFileOptions = {}) {
    super('log file');
    if (opts.image) this.bytes = opts.image.slice();
    else this.bytes = factoryLogImage(opts.size ?? 8192);
    this.size = this.bytes.length;
  }

  read(offset: number, length: number): Uint8Array {
    this.alive();
    this.range(offset, length, 'read');
    return this.bytes.slice(offset, offset + length);
  }

  write(data: Uint8Array, offset: number): void {
    this.alive();
    if (!(data instanceof Uint8Array)) throw new Error('log file: write expected a Uint8Array');
    if (offset === 0) throw new Error('log file: a write at offset 0 would make Espruino recreate the whole file; the counter log never writes there');
    if (offset + data.length > this.size) throw new Error('Too much data for file size');
    this.range(offset, data.length, 'write');
    for (let i = 0; i < data.length; i++) {
      if (this.bytes[offset + i] !== 0xff) {
        throw new Error(`File already written with different data (byte ${offset + i} is 0x${this.bytes[offset + i]!.toString(16)})`);
      }
    }
    for (let i = 0; i < data.length; i++) {
      if (this.cutDue()) {
        if (i > 0) this.cuts.midWrite++;
        else this.cuts.beforeWrite++;
        this.fail(`after ${i} of ${data.length} bytes written at offset ${offset}`);
      }
      this.bytes[offset + i] = data[i]!;
      this.written++;
      this.spend();
    }
  }

  private range(offset: number, length: number, what: string): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`log file: ${what} of ${length} bytes at offset ${offset} is outside the ${this.size}-byte file`);
    }
  }
}
