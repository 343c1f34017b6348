// Storing a request's opened frames idempotently by (serial, counter)
// (docs/protocol.md section 11; docs/server.md, "Ingest"): a new frame is
// accepted and is one of its device's fresh frames; one already stored is a
// replay (duplicate) when its bytes are the same, and a reused counter (a
// device fault, rejected and reported) when they differ.
import { equalBytes } from '../../protocol/index.js';
import type { NewFrame, Tx } from '../storage/types.js';
import { REASONS, type DeviceResult } from './types.js';
import { settlingCopy, type Candidate } from './work.js';

/**
 * Inserts the candidates; counts accepted and duplicate frames into `results`
 * and reused counters into `reused` and `results`. Returns each device's
 * fresh frames as copies, which settling may annotate (a retried transaction
 * starts again from the untouched candidates).
 */
export async function storeFrames(
  tx: Tx,
  candidates: Candidate[],
  relay: { id: string; time: number },
  now: number,
  results: DeviceResult[],
  reused: { serial: string; counter: number }[],
): Promise<Map<string, Candidate[]>> {
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

  const fresh = new Map<string, Candidate[]>();
  const old = new Map<string, Candidate[]>();
  candidates.forEach((c, i) => {
    if (inserted[i]) results[c.entry]!.accepted++;
    const into = inserted[i] ? fresh : old;
    const list = into.get(c.serial) ?? [];
    list.push(inserted[i] ? settlingCopy(c) : c);
    into.set(c.serial, list);
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
  return fresh;
}
