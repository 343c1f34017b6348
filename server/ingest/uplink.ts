// POST /v1/uplink, minus HTTP (docs/protocol.md sections 5 and 6;
// docs/server.md, "Ingest"): parse the request, then in one transaction open
// its frames (open.ts), store them (store.ts) and settle each device
// (settle.ts, time.ts); the acks are made only after it committed (acks.ts).
// Anything wrong with one frame is a rejection of that frame with a reason;
// the request still succeeds.
import type { NewReading } from '../storage/types.js';
import type { RetimeEvent } from '../events.js';
import { finish } from './acks.js';
import { deviceWork, openEntries, type ParsedEntry } from './open.js';
import { settleDevice } from './settle.js';
import { storeFrames } from './store.js';
import type { DeviceResult, IngestContext, IngestResult, UplinkBody } from './types.js';
import type { DeviceWork } from './work.js';

export { clampRx } from './time.js';
export { REASONS, type DeviceResult, type IngestContext, type IngestResult, type Rejection, type UplinkBody, type UplinkFrame } from './types.js';

const SERIAL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const isSerial = (s: string): boolean => SERIAL.test(s);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (RFC 4648 section 4, padded); undefined when it is not. */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (!BASE64.test(text)) return undefined;
  const b = Buffer.from(text, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Stores one uplink request; returns the response body and what to announce. */
export async function ingestUplink(body: UplinkBody, ctx: IngestContext): Promise<IngestResult> {
  const { serials, entries } = parseRequest(body);
  const committed = await ctx.storage.transaction(async (tx) => {
    const results: DeviceResult[] = body.devices.map((d) => ({ serial: d.serial, ack: null, accepted: 0, duplicates: 0, rejected: [] }));
    const work = new Map<string, DeviceWork>();
    const newlyWrapped: { serial: string; keysWrapped: Uint8Array }[] = [];
    for (const row of await tx.lockDevices(serials)) {
      const got = deviceWork(row, ctx);
      work.set(row.serial, got.work);
      if (got.wrapped) newlyWrapped.push({ serial: row.serial, keysWrapped: got.wrapped });
    }
    // A row imported without the private key: derived just now, stored so it is never derived again.
    if (newlyWrapped.length > 0) await tx.setKeysWrapped(newlyWrapped);

    const { candidates, reused } = openEntries(entries, work, results, ctx);
    await storeFrames(tx, candidates, body.relay, ctx.now, work, results, reused);
    const readings: NewReading[] = [];
    const retimed: RetimeEvent[] = [];
    for (const serial of serials) {
      const w = work.get(serial);
      if (w?.authenticated) await settleDevice(tx, w, ctx.now, readings, retimed);
    }
    await tx.insertReadings(readings);
    return { results, work, readings, retimed, reused };
  });
  return finish(committed, body.relay.id, ctx);
}

/** The request's well-formed serials, sorted (anything else is simply not registered), and each frame's bytes. */
function parseRequest(body: UplinkBody): { serials: string[]; entries: ParsedEntry[] } {
  const serials = [...new Set(body.devices.map((d) => d.serial))].filter(isSerial).sort();
  const entries = body.devices.map((d) => ({ serial: d.serial, frames: d.frames, bytes: d.frames.map((f) => decodeBase64(f.data)) }));
  return { serials, entries };
}
