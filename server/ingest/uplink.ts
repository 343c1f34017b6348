// POST /v1/uplink, minus HTTP (docs/protocol.md sections 5 and 6;
// docs/server.md, "Ingest"): parse the request; open its frames against the
// devices' committed key rows (open.ts); then, only if a frame authenticated,
// one transaction that locks those devices, stores the frames (store.ts) and
// settles each device (settle.ts, time.ts); the acks are made only after it
// committed (acks.ts). The transaction is the storage's ingestTransaction:
// on PostgreSQL it reads ahead and writes in one call when it can (docs/server.md,
// "One round trip per write"), so it may run more than once. Anything wrong with one frame is a rejection of that
// frame with a reason; the request still succeeds.
import { fromBase64, isSerial, REKEY_FRAMES, REKEY_TYPE } from '../../protocol/index.js';
import type { DeviceKeyRow, IngestPlan, NewReading, Tx } from '../storage/types.js';
import type { DeviceEpochs, KeyPlan, Renewal, RenewalInput } from '../renewal.js';
import type { RetimeEvent } from '../events.js';
import { finish, type Committed } from './acks.js';
import { openRequest, sameKeyRow, type OpenedRequest, type ParsedEntry } from './open.js';
import { settleDevice } from './settle.js';
import { storeFrames } from './store.js';
import type { IngestContext, IngestResult, UplinkBody } from './types.js';
import { isType, type DeviceWork } from './work.js';

export { clampRx } from './time.js';
export { REASONS, type DeviceResult, type IngestContext, type IngestResult, type Rejection, type UplinkBody, type UplinkFrame } from './types.js';

/** Stores one uplink request; returns the response body and what to announce. */
export async function ingestUplink(body: UplinkBody, ctx: IngestContext): Promise<IngestResult> {
  const { serials, entries } = parseRequest(body);
  // Keys and frames first, outside any transaction: a request none of whose frames
  // authenticates takes no lock and writes nothing (docs/server.md, "Junk uplinks").
  // Key renewal's epoch rows are read beside the key rows, only when renewal is on.
  const [keyRows, epochs] = ctx.renewal ? await Promise.all([ctx.storage.deviceKeyRows(serials), ctx.renewal.epochsOf(serials)]) : [await ctx.storage.deviceKeyRows(serials), undefined];
  const plans = ctx.renewal && epochs && epochs.size > 0 ? plansOf(ctx.renewal, keyRows, epochs, ctx.now) : undefined;
  const opened = openRequest(keyRows, entries, ctx, plans);
  let writes = opened.newlyWrapped.length > 0;
  if (!writes) for (const w of opened.work.values()) if ((writes = w.authenticated)) break;
  const committed: Committed = writes
    ? await ctx.storage.ingestTransaction(planOf(opened, serials), (tx) => storeAndSettle(tx, opened, serials, entries, body.relay, ctx, plans))
    : { work: opened.work, settled: settledOf(opened.work), results: opened.results, readings: [], retimed: [], reused: opened.reused, candidates: opened.candidates };
  const result = finish(committed, body.relay.id, ctx);
  if (ctx.renewal) await renewAfterCommit(ctx.renewal, committed, epochs!, result, ctx.now);
  return result;
}

function plansOf(renewal: Renewal, rows: DeviceKeyRow[], epochs: Map<string, DeviceEpochs>, now: number): Map<string, KeyPlan> {
  const plans = new Map<string, KeyPlan>();
  for (const row of rows) {
    const e = epochs.get(row.serial);
    if (e) plans.set(row.serial, renewal.plan(row, e, now));
  }
  return plans;
}

/** Key renewal after the commit (server/renewal.ts): per device with an authenticated frame, its ack and downlink. */
async function renewAfterCommit(renewal: Renewal, committed: Committed, epochs: Map<string, DeviceEpochs>, result: IngestResult, now: number): Promise<void> {
  const bySerial = new Map<string, RenewalInput['opened']>();
  for (const c of committed.candidates ?? []) {
    const list = bySerial.get(c.serial) ?? [];
    const part = c.typeCode >= REKEY_TYPE && c.typeCode < REKEY_TYPE + REKEY_FRAMES ? rekeyOf(c.content) : undefined;
    list.push(part ? { counter: c.counter, epoch: c.keyEpoch, rekey: part } : { counter: c.counter, epoch: c.keyEpoch });
    bySerial.set(c.serial, list);
  }
  for (const [serial, w] of committed.work) {
    if (!w.authenticated) continue;
    const out = await renewal.afterCommit({ row: w.row, plan: w.plan, opened: bySerial.get(serial) ?? [], settled: committed.settled.get(serial) ?? 0, ackReady: w.cipher !== undefined }, epochs.get(serial), now);
    if (!out) continue;
    for (const r of result.devices) {
      if (r.serial !== serial) continue;
      if (out.ack !== undefined) r.ack = out.ack;
      if (out.extra.length > 0) r.downlink = r.ack ? [r.ack, ...out.extra] : [...out.extra];
    }
  }
}

function rekeyOf(content: string): { part: number; bytes: Uint8Array } | undefined {
  const c = JSON.parse(content) as { type?: string; part?: number; bytes?: string };
  return c.type === 'rekey' && typeof c.part === 'number' && typeof c.bytes === 'string' ? { part: c.part, bytes: new Uint8Array(Buffer.from(c.bytes, 'hex')) } : undefined;
}

/**
 * The request's transaction: lock the devices with authenticated frames (in
 * serial order), store the frames, settle each device. It changes nothing it
 * is given, so a retried transaction (PostgreSQL) starts from the same state.
 */
async function storeAndSettle(tx: Tx, opened: OpenedRequest, serials: string[], entries: ParsedEntry[], relay: UplinkBody['relay'], ctx: IngestContext, plans: Map<string, KeyPlan> | undefined): Promise<Committed> {
  let req = opened;
  const wanted = serials.filter((s) => req.work.get(s)?.authenticated);
  let rows = await tx.lockDevices(wanted);
  if (rows.length !== wanted.length || rows.some((row) => !sameKeyRow(req.work.get(row.serial)!.row, row))) {
    // The registry changed since the read (a revoke, a re-import): open again from rows locked now.
    const all = await tx.lockDevices(serials);
    req = openRequest(all, entries, ctx, plans);
    rows = all.filter((row) => req.work.get(row.serial)!.authenticated);
  }
  if (req.newlyWrapped.length > 0) await tx.setKeysWrapped(req.newlyWrapped);
  const results = req.results.map((r) => ({ ...r, rejected: [...r.rejected] }));
  const reused = [...req.reused];
  const fresh = await storeFrames(tx, req.candidates, relay, ctx.now, results, reused);
  const settled = settledOf(req.work);
  const readings: NewReading[] = [];
  const retimed: RetimeEvent[] = [];
  for (const row of rows) {
    const d = { ...row };
    await settleDevice(tx, d, fresh.get(d.serial) ?? [], ctx.now, readings, retimed);
    settled.set(d.serial, d.settled);
  }
  await tx.insertReadings(readings);
  return { work: req.work, settled, results, readings, retimed, reused, candidates: req.candidates };
}

/** What the transaction will touch: the request's serials, and its authenticated frames with the boot of each anchor. */
function planOf(opened: OpenedRequest, serials: string[]): IngestPlan {
  return {
    serials,
    frames: opened.candidates.map((c) => ({ serial: c.serial, counter: c.counter, anchorBoot: isType(c, 'anchor') ? c.decoded.boot : undefined })),
  };
}

function settledOf(work: Map<string, DeviceWork>): Map<string, number> {
  const settled = new Map<string, number>();
  for (const [serial, w] of work) settled.set(serial, w.row.settled);
  return settled;
}

/** The request's well-formed serials, distinct and sorted (anything else is simply not registered), and each frame's bytes. */
function parseRequest(body: UplinkBody): { serials: string[]; entries: ParsedEntry[] } {
  const seen = new Set<string>();
  const serials: string[] = [];
  const entries: ParsedEntry[] = new Array(body.devices.length);
  for (let i = 0; i < body.devices.length; i++) {
    const d = body.devices[i]!;
    if (!seen.has(d.serial)) {
      seen.add(d.serial);
      if (isSerial(d.serial)) serials.push(d.serial);
    }
    const bytes: (Uint8Array | undefined)[] = new Array(d.frames.length);
    for (let f = 0; f < d.frames.length; f++) bytes[f] = fromBase64(d.frames[f]!.data);
    entries[i] = { serial: d.serial, frames: d.frames, bytes };
  }
  serials.sort();
  return { serials, entries };
}
