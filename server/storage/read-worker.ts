// A SQLite read worker (docs/server.md, "Reads"): its own read-only
// connection to the database file, in its own thread, so a read that scans
// and encodes 10,000 rows never holds the event loop that answers uplinks.
// WAL lets it read committed data while the main thread writes; each
// statement reads one snapshot, so a page never shows half a transaction.
// Messages: {id, op: 'page' | 'readings' | 'devicesPage' | 'gaps', args};
// answers {id, ok: true, value} or {id, ok: false, message}. A page's body is
// transferred, not copied.
import { parentPort, workerData } from 'node:worker_threads';
import { encodePage } from '../wire.js';
import { SqliteStorage } from './sqlite.js';
import type { PageRequest } from './types.js';

export interface ReadMessage {
  id: number;
  op: 'page' | 'readings' | 'devicesPage' | 'gaps';
  args: unknown[];
}

const port = parentPort!;
const storage = new SqliteStorage((workerData as { path: string }).path, { readonly: true, readWorkers: 0 });

async function answer(m: ReadMessage): Promise<void> {
  try {
    if (m.op === 'page') {
      const page = await encodePage(storage, m.args[0] as PageRequest);
      const body = page.body;
      // A fresh buffer owns its memory only when it does not sit in Node's shared pool.
      const own = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : new Uint8Array(body);
      port.postMessage({ id: m.id, ok: true, value: { ...page, body: own } }, [own.buffer as ArrayBuffer]);
      return;
    }
    const s = storage as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const value = await s[m.op]!.apply(storage, m.args);
    port.postMessage({ id: m.id, ok: true, value });
  } catch (e) {
    port.postMessage({ id: m.id, ok: false, message: (e as Error).message });
  }
}

port.on('message', (m: ReadMessage) => void answer(m));
