// Key renewal on the device (design brief, "Key renewal"; docs/firmware.md,
// "Key renewal on the device"; docs/protocol.md sections 8 and 12). Loaded
// only while a renewal runs: at boot to read the renewal records of the
// counter log (scan), and from the first ANNOUNCE write until the renewal is
// committed or given up (start). firmware/device.ts keeps only a small hook.
//
//  - ANNOUNCE arrives as six writes 0xB0|i || 19 bytes on `ack`, in any
//    order, repeated, among other writes; a different part i than the one
//    held starts the collection over (two announcements mixed). Cheap checks
//    first (type, version, fleet id, epoch above the device's, flags), then
//    at most one signature verification per connection.
//  - 32 bytes from hwRand (eight words, none zero, no two alike; a throw
//    aborts, a later ANNOUNCE retries), SetupPSKS (ikm as DeriveKeyPair's
//    input), PENDING written durably, five REKEY frames at consecutive
//    counters (the first five of a fresh block) through the outbox.
//  - RENEW_ACK (0xC5, 16 bytes) checked under the NEW keys; then COMMIT
//    {e, c_e}, c_e the first counter of the block reserved right after it,
//    and the device switches its sealer (acks below c_e stay under the old key).
//  - After a power cut with PENDING and no COMMIT the device seals the same
//    enc_e again (never a new ikm for an epoch whose REKEY may have left).
//
// ES5 only, every var and function declared before it is used, no comments
// inside function bodies (Espruino 2v29, docs/espruino-notes.md).
import type { Ccm, CounterSource, RenewalCryptoHal } from '../hal/types.js';
import { COMMIT_PAYLOAD_LEN, PENDING_PAYLOAD_LEN, RECORD_COMMIT, RECORD_PENDING } from '../protocol/wire/counter-log.js';
import { readU32BE, writeU32BE } from '../protocol/wire/be.js';
import { createSealer, type Sealer } from './sealer.js';

/** What scan() found in the counter log. */
export interface RenewalRecords {
  /** The epoch the device is on: that of the last COMMIT whose PENDING is found; 0 for none. */
  epoch: number;
  /** c_e of that COMMIT. */
  commit: number;
  /** PENDING payload of the current epoch (92 bytes: e, enc, seal key, nonce salt, chain); undefined on epoch 0. */
  keys: Uint8Array | undefined;
  /** PENDING payload of a renewal above the current epoch not committed: resend its enc. */
  pending: Uint8Array | undefined;
  /** The raw PENDING and COMMIT records of the current epoch. */
  base: Uint8Array | undefined;
  /** The raw records a new flash page must start with: `base`, then the open PENDING. */
  carry: Uint8Array | undefined;
}

/** Everything the running renewal needs of the device (firmware/device.ts builds it). */
export interface RenewalContext {
  serial: string;
  frameSize: number;
  fleetId: Uint8Array;
  renewalKey: Uint8Array;
  epoch: number;
  /** chain of the current epoch: the PSK of the next renewal. */
  chain: Uint8Array;
  records: RenewalRecords;
  crypto: RenewalCryptoHal;
  ccm(key: Uint8Array, maxMsgLen: number): Ccm;
  crc32(data: Uint8Array): number;
  counters: CounterSource;
  /** The outbox ring the sealers write into. */
  ring: Uint8Array;
  /** Seals one plaintext (F - 12 bytes) through the outbox under the current key; its counter, 0 when sealing stopped. */
  seal(plaintext: Uint8Array): number;
  /** True while the frame of `counter` is still in the outbox (not acknowledged, not dropped). */
  held(counter: number): boolean;
  /** Seal with `sealer` from counter `commit` on; acks below it keep the old key. */
  use(sealer: Sealer, commit: number): void;
  print(line: string): void;
}

export interface Renewal {
  /** An `ack` write that is not an ack: ANNOUNCE parts and RENEW_ACK. True when the renewal is over (committed) and the module may go. */
  write(data: Uint8Array): boolean;
  /** A new connection: one more signature verification allowed; an open renewal whose REKEY frames left the outbox seals them again. */
  connect(): void;
  /** True while a renewal is open (PENDING written, no COMMIT). */
  open(): boolean;
}

/** The module as firmware/device.ts loads it (a Storage module on a board). */
export interface RenewalModule {
  scan(read: (slot: number) => Uint8Array, used: number, crc32: (d: Uint8Array) => number): RenewalRecords;
  start(ctx: RenewalContext): Renewal;
}

const INFO_PREFIX = 'sealpost/v1 renew ';
const CHAIN_LABEL = 'sealpost/v1 chain';
const ANNOUNCE_CONTEXT = 'sealpost/v1 announce';
const DOMAIN_RENEW = 3;

/** A renewal record: head 00 type 00 n, n words 00 a 00 b, two check words with CRC-32 (docs/protocol.md section 8). */
export function encodeRecord(type: number, payload: Uint8Array, crc32: (d: Uint8Array) => number): Uint8Array {
  const n = payload.length / 2;
  const out = new Uint8Array((n + 3) * 4);
  out[1] = type;
  out[3] = n;
  for (let i = 0; i < n; i++) {
    out[5 + 4 * i] = payload[2 * i]!;
    out[7 + 4 * i] = payload[2 * i + 1]!;
  }
  const c = crc32(out.subarray(0, (n + 1) * 4));
  const at = (n + 1) * 4;
  out[at + 1] = (c >>> 24) & 255;
  out[at + 3] = (c >>> 16) & 255;
  out[at + 5] = (c >>> 8) & 255;
  out[at + 7] = c & 255;
  return out;
}

/** The payload of a complete record (head, words and CRC all right), or undefined. */
export function decodeRecord(rec: Uint8Array, crc32: (d: Uint8Array) => number): Uint8Array | undefined {
  const n = rec[3]!;
  if (rec.length !== (n + 3) * 4 || rec[1] === undefined) return undefined;
  for (let i = 0; i < rec.length; i += 4) if (rec[i] !== 0 || rec[i + 2] !== 0) return undefined;
  const c = crc32(rec.subarray(0, (n + 1) * 4));
  const at = (n + 1) * 4;
  if (rec[at + 1] !== ((c >>> 24) & 255) || rec[at + 3] !== ((c >>> 16) & 255) || rec[at + 5] !== ((c >>> 8) & 255) || rec[at + 7] !== (c & 255)) return undefined;
  const out = new Uint8Array(2 * n);
  for (let i = 0; i < n; i++) {
    out[2 * i] = rec[5 + 4 * i]!;
    out[2 * i + 1] = rec[7 + 4 * i]!;
  }
  return out;
}

function join(a: Uint8Array | undefined, b: Uint8Array | undefined): Uint8Array | undefined {
  if (!a) return b;
  if (!b) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Reads every renewal record of the slots 0 .. used - 1, oldest first. A
 * record counts only when it is complete: torn ones (a power cut while it was
 * written) fail their length, word or CRC check and are skipped slot by slot.
 */
export function scan(read: (slot: number) => Uint8Array, used: number, crc32: (d: Uint8Array) => number): RenewalRecords {
  const r: RenewalRecords = { epoch: 0, commit: 0, keys: undefined, pending: undefined, base: undefined, carry: undefined };
  let keysRec: Uint8Array | undefined;
  let commitRec: Uint8Array | undefined;
  let lastP: Uint8Array | undefined;
  let lastPRec: Uint8Array | undefined;
  let s = 0;
  while (s < used) {
    const w = read(s);
    const n = w[3]!;
    const want = w[1] === RECORD_PENDING ? PENDING_PAYLOAD_LEN / 2 : w[1] === RECORD_COMMIT ? COMMIT_PAYLOAD_LEN / 2 : -1;
    if (w[0] !== 0 || w[2] !== 0 || n !== want || s + n + 3 > used) {
      s++;
      continue;
    }
    const rec = new Uint8Array((n + 3) * 4);
    for (let i = 0; i < n + 3; i++) rec.set(read(s + i), 4 * i);
    const p = decodeRecord(rec, crc32);
    if (!p) {
      s++;
      continue;
    }
    s += n + 3;
    if (w[1] === RECORD_PENDING) {
      lastP = p;
      lastPRec = rec;
    } else if (lastP && readU32BE(lastP, 0) === readU32BE(p, 0) && readU32BE(p, 0) > r.epoch) {
      r.epoch = readU32BE(p, 0);
      r.commit = readU32BE(p, 4);
      r.keys = lastP;
      keysRec = lastPRec;
      commitRec = rec;
    }
  }
  if (lastP && readU32BE(lastP, 0) > r.epoch) r.pending = lastP;
  r.base = join(keysRec, commitRec);
  r.carry = join(r.base, r.pending ? lastPRec : undefined);
  return r;
}

function ascii(s: string, out: Uint8Array, at: number): number {
  for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i) & 255;
  return at + s.length;
}

/** The renewal that runs on the device; see the top of this file. */
export function start(ctx: RenewalContext): Renewal {
  const parts = new Uint8Array(114);
  let have = 0;
  let verified = false;
  let said = '';
  let pend: Uint8Array | undefined = ctx.records.pending;
  let pendRec: Uint8Array | undefined;
  let rekeyAt = 0;
  const recs = ctx.records;

  function say(line: string): void {
    if (line === said) return;
    said = line;
    ctx.print('sealpost ' + ctx.serial + ': renewal: ' + line);
  }

  function sealRekey(): void {
    const p = pend!;
    const pt = new Uint8Array(ctx.frameSize - 12);
    let first = 0;
    try {
      ctx.counters.append!(new Uint8Array(0), true);
    } catch (e) {
      say('cannot reserve counters for REKEY: ' + (e as Error).message);
      return;
    }
    for (let i = 0; i < 5; i++) {
      pt[0] = 0x30 + i;
      for (let j = 0; j < 7; j++) {
        const k = i * 7 + j;
        pt[1 + j] = k < 2 ? p[2 + k]! : k < 34 ? p[4 + k - 2]! : 0;
      }
      const c = ctx.seal(pt);
      if (c === 0) return;
      if (i === 0) first = c;
      else if (c !== first + i) {
        say('REKEY frames not at consecutive counters; sealing them again on the next connection');
        return;
      }
    }
    rekeyAt = first;
  }

  function derive(a: Uint8Array): void {
    const e = readU32BE(a, 6);
    const ikm = new Uint8Array(32);
    const words: number[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const w = ctx.crypto.hwRand() >>> 0;
        if (w === 0) throw new Error('hardware random source gave a zero word');
        for (let j = 0; j < words.length; j++) if (words[j] === w) throw new Error('hardware random source repeated a word');
        words.push(w);
        writeU32BE(ikm, 4 * i, w);
      }
    } catch (err) {
      say('no randomness (' + (err as Error).message + '); retried on a later ANNOUNCE');
      return;
    }
    const info = new Uint8Array(INFO_PREFIX.length + ctx.serial.length + 4);
    writeU32BE(info, ascii(ctx.serial, info, ascii(INFO_PREFIX, info, 0)), e);
    const pskId = new Uint8Array(CHAIN_LABEL.length + 4);
    writeU32BE(pskId, ascii(CHAIN_LABEL, pskId, 0), ctx.epoch);
    let out: Uint8Array;
    try {
      out = ctx.crypto.setupPskS(a.subarray(10, 42), info, ctx.chain, pskId, ikm);
    } catch (err) {
      say('derivation refused: ' + (err as Error).message);
      return;
    } finally {
      ikm.fill(0);
    }
    const p = new Uint8Array(PENDING_PAYLOAD_LEN);
    writeU32BE(p, 0, e);
    p.set(out.subarray(0, 88), 4);
    out.fill(0);
    const rec = encodeRecord(RECORD_PENDING, p, ctx.crc32);
    try {
      ctx.counters.room!(rec.length / 4);
      ctx.counters.append!(rec);
    } catch (err) {
      say('cannot write PENDING: ' + (err as Error).message);
      return;
    }
    pend = p;
    pendRec = rec;
    recs.pending = p;
    recs.carry = join(recs.base, rec);
    if (ctx.counters.keep) ctx.counters.keep(recs.carry);
    say('epoch ' + e + ' pending');
    sealRekey();
  }

  function announce(): void {
    const a = new Uint8Array(108);
    a.set(parts.subarray(0, 108));
    for (let i = 108; i < 114; i++) if (parts[i] !== 0) return say('ANNOUNCE part 5 has a nonzero pad; ignored');
    if (a[0] !== 0x5a || a[1] !== 1) return say('ANNOUNCE of an unknown type or version; ignored');
    for (let i = 0; i < 4; i++) if (a[2 + i] !== ctx.fleetId[i]) return say('ANNOUNCE for another fleet; ignored');
    const e = readU32BE(a, 6);
    if (e <= ctx.epoch) return say('ANNOUNCE for epoch ' + e + ', not above ' + ctx.epoch + '; ignored');
    if (a[42] !== 0 || a[43] !== 0) return say('ANNOUNCE with flags this firmware does not know; ignored');
    if (pend && readU32BE(pend, 0) >= e) return;
    if (verified) return;
    verified = true;
    const msg = new Uint8Array(ANNOUNCE_CONTEXT.length + 44);
    msg.set(a.subarray(0, 44), ascii(ANNOUNCE_CONTEXT, msg, 0));
    if (!ctx.crypto.verify(ctx.renewalKey, msg, a.subarray(44, 108))) return say('ANNOUNCE signature does not verify; ignored');
    derive(a);
  }

  function renewAck(d: Uint8Array): boolean {
    const p = pend;
    if (!p || d[5] !== 0 || d[6] !== 0 || d[7] !== 0) return false;
    for (let i = 0; i < 4; i++) if (d[1 + i] !== p[i]) return false;
    const ccm = ctx.ccm(p.subarray(36, 52), ctx.frameSize - 12);
    const t = new Uint8Array(12);
    ccm.framer(p.subarray(52, 60), 0, t, DOMAIN_RENEW)(readU32BE(p, 0), new Uint8Array(0), 0);
    let diff = 0;
    for (let i = 0; i < 8; i++) diff |= t[4 + i]! ^ d[8 + i]!;
    if (diff !== 0) return false;
    const e = readU32BE(p, 0);
    const c = new Uint8Array(COMMIT_PAYLOAD_LEN);
    writeU32BE(c, 0, e);
    let ce: number;
    let rec: Uint8Array;
    try {
      rec = encodeRecord(RECORD_COMMIT, c, ctx.crc32);
      ce = ctx.counters.room!(rec.length / 4);
      writeU32BE(c, 4, ce);
      rec = encodeRecord(RECORD_COMMIT, c, ctx.crc32);
      if (ctx.counters.keep) ctx.counters.keep(join(pendRec, rec));
      ctx.counters.append!(rec, true);
    } catch (err) {
      say('cannot write COMMIT: ' + (err as Error).message);
      return false;
    }
    ctx.use(createSealer({ ccm: ccm, nonceSalt: p.subarray(52, 60), frameSize: ctx.frameSize, ring: ctx.ring }), ce);
    ctx.epoch = e;
    ctx.chain = p.subarray(60, 92);
    recs.epoch = e;
    recs.commit = ce;
    recs.keys = p;
    recs.pending = undefined;
    recs.base = join(pendRec, rec);
    recs.carry = recs.base;
    pend = undefined;
    pendRec = undefined;
    say('epoch ' + e + ' committed from counter ' + ce);
    return true;
  }

  if (pend) {
    pendRec = encodeRecord(RECORD_PENDING, pend, ctx.crc32);
    say('epoch ' + readU32BE(pend, 0) + ' still pending after a restart: sending the same enc again');
    sealRekey();
  }

  return {
    write: function (d: Uint8Array): boolean {
      if (d.length === 16 && d[0] === 0xc5) return renewAck(d);
      if (d.length !== 20 || (d[0]! & 0xf0) !== 0xb0 || (d[0]! & 15) > 5) return false;
      const i = d[0]! & 15;
      const at = i * 19;
      if (have & (1 << (i & 7))) {
        let same = true;
        for (let j = 0; j < 19; j++) if (parts[at + j] !== d[1 + j]) same = false;
        if (same) return false;
        have = 0;
      }
      parts.set(d.subarray(1, 20), at);
      have |= 1 << (i & 7);
      if (have === 63) {
        have = 0;
        announce();
      }
      return false;
    },
    connect: function (): void {
      verified = false;
      have = 0;
      if (pend && !(rekeyAt > 0 && ctx.held(rekeyAt))) sealRekey();
    },
    open: function (): boolean {
      return pend !== undefined;
    },
  };
}
