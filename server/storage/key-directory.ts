// The key directory: a node's in-memory copy of registry key rows, so that a
// request naming many serials reads its rows from memory instead of one
// B-tree descent per serial (docs/server.md, "Junk uplinks", sixth pass;
// docs/decisions.md, "Junk uplinks, sixth pass"). It holds what a registry
// dump holds, nothing more: enc (public) and keys_wrapped (sealed under the
// KEK); no unwrapped key ever enters it (those stay in the Keyring's LRU).
//
// What makes a copy safe is that a key row hardly changes: enc, ingest key
// id and frame size are fixed at import (a re-import with another enc is
// refused), keys_wrapped goes from NULL to a blob once (rows without one are
// never held), status goes from active to revoked once. The backends keep
// it true (sqlite.ts, postgres.ts):
//   - a serial not held is read from the database (new devices are seen at
//     once; unknown serials are never held);
//   - a revoke forgets the row on its own node at once, and on the others
//     by a change signal (SQLite: PRAGMA data_version, read per request,
//     clears the directory after any other connection's commit; PostgreSQL:
//     NOTIFY from the revoking transaction, delivered at its commit; without
//     a live LISTEN connection the directory is not used);
//   - every device a request locks is forgotten after the transaction, so
//     `settled` is re-read after this node changed it;
//   - a database read that overlapped a forget is returned but not kept (the
//     epoch), so a row read before a change cannot come back after it.
// Nothing depends on it for what is stored: ingest re-reads the rows it
// locks and opens again if they changed (server/ingest/uplink.ts), so even a
// stale "active" row stores nothing of a revoked device.
//
// Memory: flat arrays grown by doubling up to `capacity` rows, with a row's
// enc (32 bytes) and blob (53) in one shared byte array, 98 bytes a row in
// typed arrays, plus about 72 on the heap (the Map entry, the serial string,
// its slot's back reference): 170 MB held at a million rows, about 210 MB
// of RSS (measured, docs/server.md "Junk uplinks", sixth pass). When full,
// it admits a row only into a slot a forget freed, and never evicts: a fleet
// larger than the directory keeps the rows it holds, and junk naming serials
// it does not hold (every one a miss) cannot push the held ones out or make
// each read rewrite the arrays (docs/server.md, "Junk uplinks", seventh
// pass).
import { WRAPPED_LENGTH } from '../keys.js';
import type { DeviceKeyRow } from './types.js';

/** Bytes of enc a held row has (X25519 HPKE: every row sealpost registers). */
const ENC = 32;
const ROW = ENC + WRAPPED_LENGTH;
/** Distinct ingest key ids held (a fleet has a handful); rows of any further one are read every time. */
const MAX_KEY_IDS = 0xffff;

export class KeyDirectory {
  readonly capacity: number;
  /** Bumped by every forget and clear: a read that started before one must not be kept. */
  epoch = 0;
  private readonly slotOf = new Map<string, number>();
  private serialOf: (string | undefined)[] = [];
  private keyIds: string[] = [];
  private readonly keyIdIndex = new Map<string, number>();
  private keyIdOf = new Uint16Array(0);
  private frameSize = new Uint16Array(0);
  private revoked = new Uint8Array(0);
  private settled = new Float64Array(0);
  private bytes = new Uint8Array(0);
  /** Slots in use (the arrays' live prefix) and free slots to reuse. */
  private used = 0;
  private free: number[] = [];

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`key directory capacity must be a positive integer, not ${capacity}`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.slotOf.size;
  }

  /**
   * The held rows among `serials` (copies: their bytes sit in one new buffer,
   * so a slot reused later changes nothing a request holds) and the serials
   * to read from the database.
   */
  lookup(serials: readonly string[]): { rows: DeviceKeyRow[]; missing: string[] } {
    const slots: number[] = [];
    const missing: string[] = [];
    for (const serial of serials) {
      const slot = this.slotOf.get(serial);
      if (slot === undefined) missing.push(serial);
      else slots.push(slot);
    }
    const rows: DeviceKeyRow[] = new Array(slots.length);
    if (slots.length === 0) return { rows, missing };
    const copy = new Uint8Array(slots.length * ROW);
    const bytes = this.bytes;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      const at = i * ROW;
      copy.set(bytes.subarray(s * ROW, s * ROW + ROW), at);
      rows[i] = {
        serial: this.serialOf[s]!,
        ingestKeyId: this.keyIds[this.keyIdOf[s]!]!,
        frameSize: this.frameSize[s]!,
        status: this.revoked[s] === 1 ? 'revoked' : 'active',
        settled: this.settled[s]!,
        enc: copy.subarray(at, at + ENC),
        keysWrapped: copy.subarray(at + ENC, at + ROW),
      };
    }
    return { rows, missing };
  }

  /**
   * The key rows of `serials`: the held ones from here, the others by `read`
   * (the database), kept for next time when no forget happened meanwhile and
   * `keep()` still says so after the read.
   */
  async rows(serials: readonly string[], read: (missing: string[]) => DeviceKeyRow[] | Promise<DeviceKeyRow[]>, keep: () => boolean = () => true): Promise<DeviceKeyRow[]> {
    const { rows, missing } = this.lookup(serials);
    if (missing.length === 0) return rows;
    const epoch = this.epoch;
    const fetched = await read(missing);
    if (keep()) this.admit(fetched, epoch);
    if (rows.length === 0) return fetched;
    for (const r of fetched) rows.push(r);
    return rows;
  }

  /**
   * Keeps rows read from the database, unless a forget or clear happened
   * since `epoch` (read before the read began); a row not held yet only
   * while a slot is free (a full directory evicts nothing).
   */
  admit(rows: readonly DeviceKeyRow[], epoch: number): void {
    if (epoch !== this.epoch) return;
    for (const row of rows) {
      if (row.keysWrapped === null || row.keysWrapped.length !== WRAPPED_LENGTH || row.enc.length !== ENC) continue;
      if (!Number.isSafeInteger(row.frameSize) || row.frameSize < 0 || row.frameSize > 0xffff) continue;
      let s = this.slotOf.get(row.serial);
      if (s === undefined && this.free.length === 0 && this.used >= this.capacity) continue;
      let k = this.keyIdIndex.get(row.ingestKeyId);
      if (k === undefined) {
        if (this.keyIds.length >= MAX_KEY_IDS) continue;
        k = this.keyIds.push(row.ingestKeyId) - 1;
        this.keyIdIndex.set(row.ingestKeyId, k);
      }
      if (s === undefined) {
        s = this.take();
        this.slotOf.set(row.serial, s);
        this.serialOf[s] = row.serial;
      }
      this.keyIdOf[s] = k;
      this.frameSize[s] = row.frameSize;
      this.revoked[s] = row.status === 'active' ? 0 : 1;
      this.settled[s] = row.settled;
      this.bytes.set(row.enc, s * ROW);
      this.bytes.set(row.keysWrapped, s * ROW + ENC);
    }
  }

  /** Drops a serial's row (a revoke, a settle): the next request reads it from the database. */
  forget(serial: string): void {
    this.epoch++;
    const s = this.slotOf.get(serial);
    if (s === undefined) return;
    this.slotOf.delete(serial);
    this.serialOf[s] = undefined;
    this.free.push(s);
  }

  /** Drops every row (the change signal was lost, or another connection committed something). */
  clear(): void {
    this.epoch++;
    this.slotOf.clear();
    this.serialOf = [];
    this.free = [];
    this.used = 0;
  }

  /** A slot for a new row, a free one or a new one; only called while one is left (admit). */
  private take(): number {
    const f = this.free.pop();
    if (f !== undefined) return f;
    if (this.used === this.frameSize.length) this.grow();
    return this.used++;
  }

  private grow(): void {
    const n = Math.min(this.capacity, Math.max(1024, this.frameSize.length * 2));
    const keyIdOf = new Uint16Array(n);
    keyIdOf.set(this.keyIdOf);
    const frameSize = new Uint16Array(n);
    frameSize.set(this.frameSize);
    const revoked = new Uint8Array(n);
    revoked.set(this.revoked);
    const settled = new Float64Array(n);
    settled.set(this.settled);
    const bytes = new Uint8Array(n * ROW);
    bytes.set(this.bytes);
    this.keyIdOf = keyIdOf;
    this.frameSize = frameSize;
    this.revoked = revoked;
    this.settled = settled;
    this.bytes = bytes;
  }
}

/** Rows a node holds unless configured otherwise (`key_directory`): about 170 MB at a million devices (docs/server.md). */
export const DEFAULT_KEY_DIRECTORY = 1_000_000;
