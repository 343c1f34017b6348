// The relay's queue on Node: an append-only journal file, fsynced before any
// promise resolves, compacted by writing a new file and renaming it over the
// old one (so a crash at any moment leaves the old or the new journal whole).
//
// File format, one record per line:
//
//     <crc32 of the JSON, 8 hex> <JSON>\n
//
//     {"journal":"sealpost-relay-queue/1"}             first line
//     {"a":[[id, serial, data (base64), rx], ...]}      frames appended
//     {"r":[id, ...]}                                   frames removed
//
// A line whose checksum or JSON fails (a torn write at power loss, or damage)
// is skipped; the file is then rewritten at open. Skipping a removal brings a
// frame back (a duplicate upload, harmless); skipping an append loses frames
// from the queue, which the devices still hold until they are acknowledged.
// One process per file: two relays on one journal would interleave records.
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from '../protocol/wire/crc32.js';
import type { QueuedFrame, QueueStore } from './contracts.js';

export const JOURNAL_FORMAT = 'sealpost-relay-queue/1';
const FRAMES_PER_LINE = 1000;

export interface FileQueueOptions {
  /** Rewrite the journal once this many removed frames are in it and they outnumber the live ones. Default 5000. */
  compactAfter?: number;
  /** Log line for the operator (torn records, compaction). */
  log?: (message: string) => void;
}

function line(record: unknown): string {
  const json = JSON.stringify(record);
  return crc32(new TextEncoder().encode(json)).toString(16).padStart(8, '0') + ' ' + json + '\n';
}

function parseLine(text: string): unknown {
  const m = /^([0-9a-f]{8}) (.*)$/.exec(text);
  if (!m) return undefined;
  if (crc32(new TextEncoder().encode(m[2]!)).toString(16).padStart(8, '0') !== m[1]) return undefined;
  try {
    return JSON.parse(m[2]!) as unknown;
  } catch {
    return undefined;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export class FileQueueStore implements QueueStore {
  readonly path: string;
  readonly #live = new Map<number, QueuedFrame>();
  readonly #compactAfter: number;
  readonly #log: (message: string) => void;
  #handle: FileHandle | undefined;
  #dead = 0;
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;
  #broken = false;
  /** Records skipped at open (bad checksum, torn line). */
  skipped = 0;
  compactions = 0;

  private constructor(path: string, options: FileQueueOptions) {
    this.path = path;
    this.#compactAfter = options.compactAfter ?? 5000;
    this.#log = options.log ?? (() => undefined);
  }

  /** Opens (or creates) the journal at `path`; refuses a file that is not a relay journal. */
  static async open(path: string, options: FileQueueOptions = {}): Promise<FileQueueStore> {
    const store = new FileQueueStore(path, options);
    await store.#open();
    return store;
  }

  async #open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await rm(this.path + '.tmp', { force: true });
    let text: string | undefined;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    let rewrite = text === undefined;
    if (text !== undefined) {
      const lines = text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      const head = lines.length > 0 ? (parseLine(lines[0]!) as { journal?: unknown } | undefined) : undefined;
      if (lines.length > 0 && head?.journal !== JOURNAL_FORMAT) {
        throw new Error(`${this.path} is not a sealpost relay queue (first line is not {"journal":"${JOURNAL_FORMAT}"}); move it away or give another --queue file`);
      }
      if (lines.length === 0) rewrite = true;
      for (const l of lines.slice(1)) {
        const rec = parseLine(l) as { a?: unknown; r?: unknown } | undefined;
        if (rec && Array.isArray(rec.a)) {
          for (const f of rec.a as unknown[]) {
            if (!Array.isArray(f) || f.length !== 4) continue;
            const [id, serial, data, rx] = f as [number, string, string, number];
            this.#live.set(id, { id, serial, data, rx });
          }
        } else if (rec && Array.isArray(rec.r)) {
          for (const id of rec.r as number[]) if (this.#live.delete(id)) this.#dead++;
        } else {
          this.skipped++;
        }
      }
      if (this.skipped > 0) {
        this.#log(`${this.path}: skipped ${this.skipped} damaged record(s) (torn write at power loss?); rewriting the journal`);
        rewrite = true;
      }
      if (this.#dead >= this.#compactAfter && this.#dead > this.#live.size) rewrite = true;
    }
    if (rewrite) await this.#rewrite();
    this.#handle = await open(this.path, 'a');
  }

  /** Writes the live frames to a new file and renames it over the journal. */
  async #rewrite(): Promise<void> {
    const tmp = this.path + '.tmp';
    const h = await open(tmp, 'w', 0o600);
    try {
      let out = line({ journal: JOURNAL_FORMAT });
      const all = [...this.#live.values()];
      for (let i = 0; i < all.length; i += FRAMES_PER_LINE) {
        out += line({ a: all.slice(i, i + FRAMES_PER_LINE).map((f) => [f.id, f.serial, f.data, f.rx]) });
      }
      await h.writeFile(out, 'utf8');
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, this.path);
    await fsyncDir(dirname(this.path));
    this.#dead = 0;
    this.compactions++;
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(op);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #write(record: unknown): Promise<void> {
    if (this.#closed) throw new Error(`${this.path}: queue store is closed`);
    if (this.#broken || !this.#handle) {
      // A failed write may have left half a line that the next record would
      // be glued to: start a clean file from what is known to be live.
      await this.#handle?.close().catch(() => undefined);
      this.#handle = undefined;
      await this.#rewrite();
      this.#handle = await open(this.path, 'a');
      this.#broken = false;
    }
    try {
      await this.#handle.write(line(record));
      await this.#handle.datasync();
    } catch (e) {
      this.#broken = true;
      throw e;
    }
  }

  load(): Promise<QueuedFrame[]> {
    return this.#serial(async () => [...this.#live.values()].map((f) => ({ ...f })));
  }

  append(frames: QueuedFrame[]): Promise<void> {
    return this.#serial(async () => {
      if (frames.length === 0) return;
      for (let i = 0; i < frames.length; i += FRAMES_PER_LINE) {
        await this.#write({ a: frames.slice(i, i + FRAMES_PER_LINE).map((f) => [f.id, f.serial, f.data, f.rx]) });
      }
      for (const f of frames) this.#live.set(f.id, { ...f });
    });
  }

  remove(ids: number[]): Promise<void> {
    return this.#serial(async () => {
      const present = ids.filter((id) => this.#live.has(id));
      if (present.length === 0) return;
      await this.#write({ r: present });
      for (const id of present) this.#live.delete(id);
      this.#dead += present.length;
      if (this.#dead >= this.#compactAfter && this.#dead > this.#live.size) {
        await this.#handle!.close();
        this.#handle = undefined;
        await this.#rewrite();
        this.#handle = await open(this.path, 'a');
        this.#log(`${this.path}: compacted to ${this.#live.size} frame(s)`);
      }
    });
  }

  get size(): number {
    return this.#live.size;
  }

  close(): Promise<void> {
    return this.#serial(async () => {
      this.#closed = true;
      await this.#handle?.close();
      this.#handle = undefined;
    });
  }
}
