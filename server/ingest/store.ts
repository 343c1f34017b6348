// Storing a request's opened frames idempotently by (serial, counter)
// (docs/protocol.md section 11; docs/server.md, "Ingest"): a new frame is
// accepted and becomes its device's fresh work; one already stored is a
// replay (duplicate) when its bytes are the same, and a reused counter (a
// device fault, rejected and reported) when they differ.
import { equalBytes } from '../../protocol/index.js';
import type { NewFrame, Tx } from '../storage/types.js';
import { REASONS, type DeviceResult } from './types.js';
import type { Candidate, DeviceWork } from './work.js';

export async function storeFrames(
  tx: Tx,
  candidates: Candidate[],
  relay: { id: string; time: number },
  now: number,
  work: Map<string, DeviceWork>,
  results: DeviceResult[],
  reused: { serial: string; counter: number }[],
): Promise<void> {
  const inserted = await tx.insertFrames(
    candidates.map(
      (c): NewFrame => ({
        serial: c.serial,
        counter: c.counter,
        frame: c.bytes,
        type: c.typeCode,
        content: c.content,
        relay: relay.id,
        relayTime: relay.time,
        rx: c.rx,
        received: now,
      }),
    ),
  );

  const old = new Map<string, Candidate[]>();
  candidates.forEach((c, i) => {
    if (inserted[i]) {
      work.get(c.serial)!.fresh.push(c);
      results[c.entry]!.accepted++;
    } else {
      const list = old.get(c.serial) ?? [];
      list.push(c);
      old.set(c.serial, list);
    }
  });
  for (const [serial, list] of old) {
    const stored = await tx.frameBytes(serial, list.map((c) => c.counter));
    for (const c of list) {
      const s = stored.get(c.counter);
      if (s === undefined || equalBytes(s, c.bytes)) results[c.entry]!.duplicates++;
      else {
        reused.push({ serial, counter: c.counter });
        results[c.entry]!.rejected.push({ index: c.index, reason: REASONS.reused });
      }
    }
  }
}
