// POST /v1/uplink, minus HTTP (docs/protocol.md sections 5 and 6;
// docs/server.md, "Ingest"): parse the request; open its frames against the
// devices' committed key rows (open.ts); then, only if a frame authenticated,
// one transaction that locks those devices, stores the frames (store.ts) and
// settles each device (settle.ts, time.ts); the acks are made only after it
// committed (acks.ts). The transaction is the storage's ingestTransaction:
// on PostgreSQL it reads ahead and writes in one call when it can (docs/server.md,
// "One round trip per write"), so it may run more than once. Anything wrong with one frame is a rejection of that
// frame with a reason; the request still succeeds.
import { fromBase64, isSerial } from '../../protocol/index.js';
import type { IngestPlan, NewReading, Tx } from '../storage/types.js';
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
  const opened = openRequest(await ctx.storage.deviceKeyRows(serials), entries, ctx);
  let writes = opened.newlyWrapped.length > 0;
  if (!writes) for (const w of opened.work.values()) if ((writes = w.authenticated)) break;
  const committed: Committed = writes
    ? await ctx.storage.ingestTransaction(planOf(opened, serials), (tx) => storeAndSettle(tx, opened, serials, entries, body.relay, ctx))
    : { work: opened.work, settled: settledOf(opened.work), results: opened.results, readings: [], retimed: [], reused: opened.reused };
  return finish(committed, body.relay.id, ctx);
}

/**
 * The request's transaction: lock the devices with authenticated frames (in
 * serial order), store the frames, settle each device. It changes nothing it
 * is given, so a retried transaction (PostgreSQL) starts from the same state.
 */
async function storeAndSettle(tx: Tx, opened: OpenedRequest, serials: string[], entries: ParsedEntry[], relay: UplinkBody['relay'], ctx: IngestContext): Promise<Committed> {
  let req = opened;
  const wanted = serials.filter((s) => req.work.get(s)?.authenticated);
  let rows = await tx.lockDevices(wanted);
  if (rows.length !== wanted.length || rows.some((row) => !sameKeyRow(req.work.get(row.serial)!.row, row))) {
    // The registry changed since the read (a revoke, a re-import): open again from rows locked now.
    const all = await tx.lockDevices(serials);
    req = openRequest(all, entries, ctx);
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
  return { work: req.work, settled, results, readings, retimed, reused };
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
