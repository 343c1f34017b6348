// The downlink to a device (docs/relay.md, "The device link", rule 2): what
// the core hands a DeviceLink to write, as an ordered list of writes of at
// most 20 bytes, and the one queue a platform's link runs its GATT operations
// through (rule 1). The list is the 12-byte ack, then what else the server
// answered for the device (key renewal: RENEW_ACK, the six ANNOUNCE parts).
import { RelayError } from './contracts.js';

/** The largest downlink write: the default ATT MTU of 23 less its 3-byte header, so no platform negotiates an MTU. */
export const MAX_DOWNLINK_WRITE = 20;

/** The writes that carry one ack to a device: one 12-byte write. */
export function ackWrites(ack: Uint8Array): Uint8Array[] {
  return checkDownlink([ack.slice()]);
}

/** Returns `writes` if every write is 1..20 bytes; otherwise throws a RelayError naming the first bad one. */
export function checkDownlink(writes: readonly Uint8Array[]): Uint8Array[] {
  if (writes.length === 0) throw new RelayError('a downlink needs at least one write');
  writes.forEach((w, i) => {
    if (!(w instanceof Uint8Array) || w.length < 1 || w.length > MAX_DOWNLINK_WRITE) {
      throw new RelayError(`downlink write ${i} is ${w instanceof Uint8Array ? `${w.length} bytes` : 'not bytes'}; each write must be 1..${MAX_DOWNLINK_WRITE} bytes`);
    }
  });
  return [...writes];
}

/** Runs GATT operations one after the other, whatever the previous one did. */
export class GattQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(op, op);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * Writes `writes` in order through `queue`, each with `writeOne` (a write
 * with response) started only after the previous one was acknowledged.
 * Rejects at the first that fails; the rest are not written. Each write is
 * its own queued operation, so a read or subscription may come between two
 * writes of one list but never reorders them.
 */
export async function writeInOrder(queue: GattQueue, writes: readonly Uint8Array[], writeOne: (bytes: Uint8Array) => Promise<void>): Promise<void> {
  for (const w of checkDownlink(writes)) await queue.run(() => writeOne(w));
}
