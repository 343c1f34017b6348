// Key renewal on the server (design brief, "Key renewal"; docs/protocol.md
// section 12; docs/server.md, "Key renewal"). The server learns epochs from the
// signed ANNOUNCE files of `sealpost keys renew`, checked with the renewal
// PUBLIC key (the private one never comes here), and holds each epoch's ingest
// private key among its ingest_keys. Per device it keeps epoch rows
// (storage/epochs.ts) and, per uplink:
//  - before opening: the device's key plan, at most two keys: the key it is on
//    (its latest committed epoch, or the registry's) and either its pending
//    renewal's key or, for a while after a commit, the key before it;
//  - after the request committed: a frame opened under the pending key is the
//    device's COMMIT (c_e = that frame's counter block start); the previous key
//    is dropped once every counter below c_e is settled or the grace period
//    ended; a complete REKEY set (five frames, part i at counter c + i, all
//    under the device's current key) is answered with RENEW_ACK after SetupPSKR,
//    or freezes the device when the epoch already has another enc; the ack
//    uses the key of its N; the downlink carries ack, RENEW_ACK and ANNOUNCE.
// Junk costs nothing here: only devices with a frame that authenticated in
// this request are looked at after the commit, and SetupPSKR runs only for a
// complete set of five authenticated REKEY frames.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { boardProfile } from '../boards/index.js';
import {
  announceWrites,
  ArgumentError,
  joinRekeyParts,
  keyId,
  makeAck,
  makeRenewAck,
  parseKeyFile,
  REKEY_FRAMES,
  toBase64,
  toHex,
  verifyAnnounce,
  type DeviceKeys,
} from '../protocol/index.js';
import { ConfigError, DeviceKeyError } from './errors.js';
import type { Keyring } from './keys.js';
import type { EpochRow } from './storage/epochs.js';
import type { DeviceKeyRow, Storage } from './storage/types.js';

export interface Announced {
  epoch: number;
  ingestPublicKey: Uint8Array;
  /** The ingest key id of ingestPublicKey ("ik-..."). */
  ingestKeyId: string;
  /** The six writes of the ANNOUNCE, base64. */
  writes: string[];
}

const ANNOUNCE_FILE = /^announce-\d{8}\.bin$/;

/**
 * Reads and verifies the ANNOUNCE files (each a file, or a directory of
 * announce-*.bin): signed by the renewal public key, of its fleet, one per
 * epoch. Throws ConfigError naming the file and what is wrong.
 */
export function loadAnnouncements(publicKeyFile: string, sources: readonly string[]): { fleetId: Uint8Array; renewalKeyId: string; announced: Announced[] } {
  let text: string;
  try {
    text = readFileSync(publicKeyFile, 'utf8');
  } catch (e) {
    throw new ConfigError(`renewal.public_key ${publicKeyFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; pass the renewal-<id>.pub file of \`sealpost keys init\``);
  }
  if (text.includes('sealpost-renewal-private-key')) {
    throw new ConfigError(`renewal.public_key ${publicKeyFile} is the renewal PRIVATE key: the server needs only renewal-<id>.pub; move the .key file back offline`);
  }
  let key;
  try {
    key = parseKeyFile(text, 'renewal-public', `renewal.public_key ${publicKeyFile}`);
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}; pass the renewal-<id>.pub file of \`sealpost keys init\``);
  }
  const files: string[] = [];
  for (const source of sources) {
    let isDir: boolean;
    try {
      isDir = statSync(source).isDirectory();
    } catch (e) {
      throw new ConfigError(`renewal.announce ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; list the announce-*.bin files of \`sealpost keys renew\` or their directory`);
    }
    if (isDir) for (const name of readdirSync(source).sort()) if (ANNOUNCE_FILE.test(name)) files.push(join(source, name));
    if (!isDir) files.push(source);
  }
  const announced = new Map<number, Announced>();
  for (const file of files) {
    const bytes = new Uint8Array(readFileSync(file));
    let a;
    try {
      a = verifyAnnounce(bytes, { renewalPublicKey: key.key, fleetId: key.fleetId!, currentEpoch: 0 });
    } catch (e) {
      throw new ConfigError(`renewal.announce ${file}: ${(e as Error).message} (renewal key ${key.id}); remove it from renewal.announce if it is not this fleet's`);
    }
    const seen = announced.get(a.epoch);
    const entry: Announced = { epoch: a.epoch, ingestPublicKey: a.ingestPublicKey, ingestKeyId: keyId('ik', a.ingestPublicKey), writes: announceWrites(bytes).map(toBase64) };
    if (seen && toHex(seen.ingestPublicKey) !== toHex(entry.ingestPublicKey)) throw new ConfigError(`renewal.announce: two ANNOUNCE files for epoch ${a.epoch} name different ingest keys (${seen.ingestKeyId}, ${entry.ingestKeyId})`);
    announced.set(a.epoch, entry);
  }
  return { fleetId: key.fleetId!, renewalKeyId: key.id, announced: [...announced.values()].sort((x, y) => x.epoch - y.epoch) };
}

/** The keys a device's frames are tried under (at most two). */
export interface KeyPlan {
  /** The key it is on: its latest committed epoch's, or the registry row's (epoch 0). */
  primary: { epoch: number; row: KeyRow };
  /** Its pending renewal's key, or for a while after a commit the key before. */
  other?: { epoch: number; row: KeyRow; role: 'pending' | 'previous' };
  /** c_e of the primary epoch (null for epoch 0). */
  commitCounter: number | null;
}

type KeyRow = Pick<DeviceKeyRow, 'serial' | 'ingestKeyId' | 'enc' | 'keysWrapped'>;

/** A device's epoch rows and what follows from them. */
export interface DeviceEpochs {
  rows: EpochRow[];
  current: EpochRow | undefined;
  pending: EpochRow | undefined;
  frozen: EpochRow | undefined;
}

export function deviceEpochs(rows: EpochRow[]): DeviceEpochs {
  let current: EpochRow | undefined;
  for (const r of rows) if (r.state === 'committed' && (!current || r.epoch > current.epoch)) current = r;
  const on = current?.epoch ?? 0;
  const pending = rows.find((r) => r.state === 'pending' && r.fromEpoch === on);
  return { rows, current, pending, frozen: rows.find((r) => r.state === 'frozen') };
}

const keyRowOf = (r: EpochRow): KeyRow => ({ serial: r.serial, ingestKeyId: r.ingestKeyId, enc: r.enc, keysWrapped: r.keysWrapped });

/** A counter's block start (counters are reserved in aligned blocks of K: docs/firmware.md, "Counter store"). */
export function blockStart(counter: number, block: number): number {
  return Math.floor((counter - 1) / block) * block + 1;
}

/** What the ingest path hands back after its transaction, per device with an authenticated frame. */
export interface RenewalInput {
  row: DeviceKeyRow;
  plan: KeyPlan | undefined;
  /** The counters of its frames in this request by the epoch of the key that opened them. */
  opened: { counter: number; epoch: number; rekey?: { part: number; bytes: Uint8Array } }[];
  settled: number;
  /** The ingest path made an ack (a frame opened under the key the device is on). */
  ackReady: boolean;
}

export interface RenewalLog {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export class Renewal {
  readonly latest: number;
  private readonly byEpoch = new Map<number, Announced>();

  constructor(
    private readonly storage: Storage,
    private readonly keyring: Keyring,
    readonly announced: readonly Announced[],
    private readonly graceMs: number,
    private readonly log: RenewalLog,
  ) {
    for (const a of announced) this.byEpoch.set(a.epoch, a);
    this.latest = announced.length > 0 ? announced[announced.length - 1]!.epoch : 0;
    const latest = this.byEpoch.get(this.latest);
    if (latest && !keyring.holds(latest.ingestKeyId)) {
      throw new ConfigError(`renewal: the ANNOUNCE of epoch ${this.latest} names ingest key ${latest.ingestKeyId}, which is not among ingest_keys; add its ingest-${latest.ingestKeyId}.key`);
    }
  }

  /** The epoch rows of these serials, by serial (only those that have any). */
  async epochsOf(serials: readonly string[]): Promise<Map<string, DeviceEpochs>> {
    const out = new Map<string, DeviceEpochs>();
    if (serials.length === 0) return out;
    const bySerial = new Map<string, EpochRow[]>();
    for (const r of await this.storage.epochs.rows(serials)) {
      const list = bySerial.get(r.serial);
      if (list) list.push(r);
      else bySerial.set(r.serial, [r]);
    }
    for (const [serial, rows] of bySerial) out.set(serial, deviceEpochs(rows));
    return out;
  }

  /** The keys to try for a device with epoch rows at `now`. */
  plan(row: KeyRow, e: DeviceEpochs, now: number): KeyPlan {
    const c = e.current;
    const primary = c ? { epoch: c.epoch, row: keyRowOf(c) } : { epoch: 0, row };
    const plan: KeyPlan = { primary, commitCounter: c?.commitCounter ?? null };
    if (e.pending && !e.frozen) plan.other = { epoch: e.pending.epoch, row: keyRowOf(e.pending), role: 'pending' };
    else if (c && this.previousHeld(c, now)) {
      const prev = e.rows.find((r) => r.epoch === c.fromEpoch && r.state === 'committed');
      plan.other = { epoch: c.fromEpoch, row: prev ? keyRowOf(prev) : row, role: 'previous' };
    }
    return plan;
  }

  private previousHeld(c: EpochRow, now: number): boolean {
    return c.prevDroppedAt === null && (c.committedAt === null || now - c.committedAt < this.graceMs);
  }

  /**
   * After the request committed: commit, drop, REKEY; then the device's ack
   * (undefined: the ingest path's is right) and the writes after it (base64:
   * RENEW_ACK, the six parts of ANNOUNCE).
   */
  async afterCommit(input: RenewalInput, epochs: DeviceEpochs | undefined, now: number): Promise<{ ack: string | null | undefined; extra: string[] } | undefined> {
    const { row } = input;
    if (row.status !== 'active') return undefined;
    let e = epochs ?? deviceEpochs([]);
    let changed = false;
    // COMMIT: the first frame under the pending key; or an earlier block of the current epoch.
    if (e.pending && !e.frozen) {
      const first = minCounter(input.opened, e.pending.epoch);
      if (first !== undefined) {
        await this.storage.epochs.commit(row.serial, e.pending.epoch, blockStart(first, await this.blockOf(row.serial)), now);
        this.log.info({ serial: row.serial, epoch: e.pending.epoch }, 'device committed its renewal');
        changed = true;
      }
    } else if (e.current && e.current.commitCounter !== null) {
      const first = minCounter(input.opened, e.current.epoch);
      if (first !== undefined && first < e.current.commitCounter) {
        await this.storage.epochs.commit(row.serial, e.current.epoch, blockStart(first, await this.blockOf(row.serial)), now);
        changed = true;
      }
    }
    if (changed) e = (await this.epochsOf([row.serial])).get(row.serial) ?? e;
    // The previous key goes once everything below c_e is settled, or after the grace period.
    const c = e.current;
    if (c && c.prevDroppedAt === null && c.commitCounter !== null && (input.settled >= c.commitCounter - 1 || !this.previousHeld(c, now))) {
      await this.storage.epochs.dropPrevious(row.serial, c.epoch, now);
      c.prevDroppedAt = now;
    }
    const renewAck = await this.rekey(input, e, now);
    if (renewAck !== undefined) e = (await this.epochsOf([row.serial])).get(row.serial) ?? e;
    // The ingest path's ack is under the key the device is on: right unless N is below c_e (or the key just changed).
    const n = input.settled;
    const keep = input.ackReady && !changed && (!e.current || e.current.commitCounter === null || n >= e.current.commitCounter) && (e.current?.epoch ?? 0) === (input.plan?.primary.epoch ?? 0);
    const extra: string[] = [];
    if (renewAck) extra.push(renewAck);
    const on = e.current?.epoch ?? 0;
    if (!e.frozen && on < this.latest && e.pending?.epoch !== this.latest) extra.push(...this.byEpoch.get(this.latest)!.writes);
    return { ack: keep ? undefined : this.ack(row, e, n, now), extra };
  }

  /** The ack for N under the key of N's epoch: N >= c_e the current key, below it the previous one while held. */
  private ack(row: KeyRow, e: DeviceEpochs, n: number, now: number): string | null {
    if (n < 1) return null;
    const c = e.current;
    let keys: DeviceKeys | undefined;
    if (!c || c.commitCounter === null || n >= c.commitCounter) keys = this.keyring.unwrapRow(c ? keyRowOf(c) : row);
    else if (this.previousHeld(c, now)) {
      const prev = e.rows.find((r) => r.epoch === c.fromEpoch && r.state === 'committed');
      keys = this.keyring.unwrapRow(prev ? keyRowOf(prev) : row);
    }
    return keys ? toBase64(makeAck(keys, n)) : null;
  }

  /** The device's counter block size from its board profile (1 for a board this server does not know). */
  private async blockOf(serial: string): Promise<number> {
    const d = await this.storage.device(serial);
    try {
      return d ? boardProfile(d.board).device.counterBlock : 1;
    } catch {
      return 1;
    }
  }

  /** A complete REKEY set in this request: RENEW_ACK (base64), or undefined. */
  private async rekey(input: RenewalInput, e: DeviceEpochs, now: number): Promise<string | undefined> {
    const { row } = input;
    const on = e.current?.epoch ?? 0;
    const parts = input.opened.filter((o) => o.rekey && o.epoch === on);
    if (parts.length === 0) return undefined;
    const stored = await this.storage.epochs.rekeyParts(row.serial, Math.max(1, Math.min(...parts.map((p) => p.counter)) - (REKEY_FRAMES - 1)), Math.max(...parts.map((p) => p.counter)) + REKEY_FRAMES - 1);
    const byCounter = new Map<number, { part: number; bytes: Uint8Array; epoch: number }>();
    for (const s of stored) byCounter.set(s.counter, s);
    for (const p of parts) byCounter.set(p.counter, { part: p.rekey!.part, bytes: p.rekey!.bytes, epoch: p.epoch });
    // Sets: part i at counter c + i, all under the key of the epoch the device is on; the latest set wins.
    let set: { counter: number; epochLo16: number; enc: Uint8Array } | undefined;
    for (const [counter, p] of byCounter) {
      if (p.part !== 0 || (set && set.counter > counter)) continue;
      const five = [0, 1, 2, 3, 4].map((i) => byCounter.get(counter + i));
      if (five.some((x, i) => !x || x.part !== i || x.epoch !== on)) continue;
      try {
        set = { counter, ...joinRekeyParts(five.map((x) => x!.bytes)) };
      } catch {
        continue;
      }
    }
    if (!set) return undefined;
    const targets = this.announced.filter((a) => a.epoch > on && (a.epoch & 0xffff) === set.epochLo16);
    if (targets.length !== 1) {
      this.log.warn({ serial: row.serial, epoch_lo16: set.epochLo16, on }, targets.length === 0 ? 'REKEY names no announced epoch above the device\'s; ignored' : 'REKEY epoch_lo16 is ambiguous; ignored');
      return undefined;
    }
    const target = targets[0]!;
    const existing = e.rows.find((r) => r.epoch === target.epoch);
    if (existing) return this.again(row.serial, existing, set.enc, now);
    if (e.frozen) return undefined;
    if (e.current && this.previousHeld(e.current, now) && e.current.prevDroppedAt === null) {
      this.log.info({ serial: row.serial, epoch: target.epoch }, 'REKEY waits: the device renews again once the key before its current one is retired');
      return undefined;
    }
    if (e.pending) {
      if (e.pending.rekeyCounter >= set.counter) return undefined;
      await this.storage.epochs.deletePending(row.serial, e.pending.epoch);
    }
    let chain: Uint8Array | undefined;
    let renewed;
    try {
      chain = e.current ? this.keyring.unwrapChain(e.current) : this.keyring.factoryChain(row);
      if (!chain) throw new DeviceKeyError('the chain secret of its current epoch does not open');
      renewed = this.keyring.renew({ serial: row.serial, fromEpoch: on, toEpoch: target.epoch, chain }, target.ingestKeyId, set.enc);
    } catch (err) {
      if (!(err instanceof DeviceKeyError) && !(err instanceof ArgumentError)) throw err;
      this.log.warn({ serial: row.serial, epoch: target.epoch, reason: err.message }, 'REKEY not answered');
      return undefined;
    } finally {
      chain?.fill(0);
    }
    const inserted = await this.storage.epochs.insertPending({
      serial: row.serial,
      epoch: target.epoch,
      fromEpoch: on,
      ingestKeyId: target.ingestKeyId,
      enc: set.enc,
      keysWrapped: renewed.keysWrapped,
      chainWrapped: renewed.chainWrapped,
      state: 'pending',
      rekeyCounter: set.counter,
      commitCounter: null,
      createdAt: now,
      committedAt: null,
      prevDroppedAt: null,
      frozenAt: null,
    });
    const ack = toBase64(makeRenewAck(renewed.keys, target.epoch));
    renewed.keys.chain.fill(0);
    if (!inserted) {
      // Another node answered the same device meanwhile: its row decides.
      const now2 = (await this.epochsOf([row.serial])).get(row.serial)?.rows.find((r) => r.epoch === target.epoch);
      return now2 ? this.again(row.serial, now2, set.enc, now) : undefined;
    }
    this.log.info({ serial: row.serial, epoch: target.epoch, from: on }, 'renewal answered (RENEW_ACK)');
    return ack;
  }

  /** A REKEY for an epoch the device already has a row of: the same enc gets RENEW_ACK again; another freezes it. */
  private async again(serial: string, r: EpochRow, enc: Uint8Array, now: number): Promise<string | undefined> {
    if (toHex(r.enc) !== toHex(enc)) {
      if (r.state !== 'frozen') {
        await this.storage.epochs.freeze(serial, r.epoch, now);
        this.log.warn({ serial, epoch: r.epoch }, 'device FROZEN: a second, different enc for the same epoch (only a holder of its previous key can send one); it gets no RENEW_ACK until an operator looks');
      }
      return undefined;
    }
    if (r.state !== 'pending') return undefined;
    const keys = this.keyring.unwrapRow(keyRowOf(r));
    return keys ? toBase64(makeRenewAck(keys, r.epoch)) : undefined;
  }
}

function minCounter(opened: RenewalInput['opened'], epoch: number): number | undefined {
  let min: number | undefined;
  for (const o of opened) if (o.epoch === epoch && (min === undefined || o.counter < min)) min = o.counter;
  return min;
}
