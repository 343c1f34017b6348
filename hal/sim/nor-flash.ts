// A NOR flash model for Node (style.md rule 2: simulate below the code under
// test). It behaves as the nRF52's NVMC does through require("Flash"):
// - a write programs whole 4-byte words at word-aligned addresses and can only
//   clear bits (new = old AND data); erasePage sets a whole page to 0xFF;
// - power can be cut after any number of operations (word writes and page
//   erases). The cut operation throws PowerLoss and leaves what a real cut
//   would: a page erase stopped part way has some words erased, some
//   untouched and some with a random subset of bits set to 1 (erasing only
//   ever sets bits); with `tornWords` a word write stopped part way has a
//   random subset of its bits programmed. Until powerOn() every operation
//   throws PowerLoss again. The memory survives, so a new counter store opened
//   on the same model after powerOn() is a reboot.
import type { FlashHal } from '../types.js';
import { PowerCuts } from './power.js';
import { seededRandom } from './random.js';

export { isPowerLoss, PowerLoss } from './power.js';

export interface NorFlashOptions {
  /** Bytes per erase page, a multiple of 4 (default 4096, as on nRF52). */
  pageSize?: number;
  /** Pages in the model (default 2). */
  pageCount?: number;
  /** Address of the first page (default 0); must be a multiple of pageSize. */
  base?: number;
  /** Source of randomness for partial erases and torn words, in [0, 1) (default: seeded PRNG, seed 1). */
  random?: () => number;
  /** A cut word write programs a random subset of its bits instead of none (default false). */
  tornWords?: boolean;
  /** Initial contents (default all 0xFF); copied. */
  image?: Uint8Array;
}

/** Where the last power cut struck. */
export type CutKind = 'write' | 'erase';

export class NorFlash extends PowerCuts implements FlashHal {
  readonly pageSize: number;
  readonly pageCount: number;
  readonly base: number;
  /** The whole memory, page 0 first. Tests may read it or damage it directly. */
  readonly bytes: Uint8Array;
  /** Completed operations (word writes plus page erases) since creation. */
  ops = 0;
  /** Value of `ops` when the latest page erase began (tests aim cuts at erases with it). */
  lastEraseAt = -1;
  /** Power cuts so far, by where they struck. */
  cuts = { write: 0, erase: 0 };
  lastCut: CutKind | undefined;
  private readonly random: () => number;
  private readonly tornWords: boolean;

  constructor(opts: NorFlashOptions = {}) {
    super('nor flash');
    this.pageSize = opts.pageSize ?? 4096;
    this.pageCount = opts.pageCount ?? 2;
    this.base = opts.base ?? 0;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 4 || this.pageSize % 4 !== 0) {
      throw new Error(`nor flash: pageSize expected a positive multiple of 4, got ${this.pageSize}`);
    }
    if (!Number.isInteger(this.pageCount) || this.pageCount < 1) throw new Error(`nor flash: pageCount expected >= 1, got ${this.pageCount}`);
    if (!Number.isInteger(this.base) || this.base < 0 || this.base % this.pageSize !== 0) {
      throw new Error(`nor flash: base expected a multiple of pageSize, got ${this.base}`);
    }
    this.bytes = new Uint8Array(this.pageSize * this.pageCount).fill(0xff);
    if (opts.image) {
      if (opts.image.length !== this.bytes.length) throw new Error(`nor flash: image expected ${this.bytes.length} bytes, got ${opts.image.length}`);
      this.bytes.set(opts.image);
    }
    this.random = opts.random ?? seededRandom(1);
    this.tornWords = opts.tornWords ?? false;
  }

  /** Address of page i. */
  pageAddr(i: number): number {
    return this.base + i * this.pageSize;
  }

  read(addr: number, length: number): Uint8Array {
    this.alive();
    const at = this.offset(addr, length, 'read');
    return this.bytes.slice(at, at + length);
  }

  write(data: Uint8Array, addr: number): void {
    this.alive();
    if (!(data instanceof Uint8Array)) throw new Error('nor flash: write expected a Uint8Array');
    if (addr % 4 !== 0) throw new Error(`nor flash: write address 0x${addr.toString(16)} is not word-aligned (multiple of 4)`);
    if (data.length % 4 !== 0) throw new Error(`nor flash: write length ${data.length} is not a whole number of 4-byte words`);
    const at = this.offset(addr, data.length, 'write');
    for (let w = 0; w < data.length; w += 4) {
      if (this.cutDue()) {
        if (this.tornWords) {
          for (let i = 0; i < 4; i++) {
            const keep = Math.floor(this.random() * 256);
            this.bytes[at + w + i]! &= data[w + i]! | keep;
          }
        }
        this.cut('write', `during the word write at 0x${(addr + w).toString(16)}`);
      }
      for (let i = 0; i < 4; i++) this.bytes[at + w + i]! &= data[w + i]!;
      this.tick();
    }
  }

  erasePage(addr: number): void {
    this.alive();
    if ((addr - this.base) % this.pageSize !== 0) {
      throw new Error(`nor flash: erasePage address 0x${addr.toString(16)} is not the start of a ${this.pageSize}-byte page`);
    }
    const at = this.offset(addr, this.pageSize, 'erasePage');
    this.lastEraseAt = this.ops;
    if (this.cutDue()) {
      // Progress p: roughly that share of words ends erased, the rest is split
      // between untouched words and words with some bits already set to 1.
      const p = this.random();
      for (let w = 0; w < this.pageSize; w += 4) {
        const r = this.random();
        for (let i = 0; i < 4; i++) {
          if (r < p) this.bytes[at + w + i] = 0xff;
          else if (r < p + (1 - p) / 2) this.bytes[at + w + i]! |= Math.floor(this.random() * 256);
        }
      }
      this.cut('erase', `during the erase of the page at 0x${addr.toString(16)}`);
    }
    this.bytes.fill(0xff, at, at + this.pageSize);
    this.tick();
  }

  private tick(): void {
    this.ops++;
    this.spend();
  }

  private cut(kind: CutKind, where: string): never {
    this.cuts[kind]++;
    this.lastCut = kind;
    return this.fail(where);
  }

  private offset(addr: number, length: number, what: string): number {
    const at = addr - this.base;
    if (!Number.isInteger(addr) || !Number.isInteger(length) || length < 0 || at < 0 || at + length > this.bytes.length) {
      throw new Error(
        `nor flash: ${what} of ${length} bytes at 0x${Number(addr).toString(16)} is outside 0x${this.base.toString(16)}..0x${(this.base + this.bytes.length).toString(16)}`,
      );
    }
    return at;
  }
}
