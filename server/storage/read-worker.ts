// A read worker (docs/server.md, "Reads"): its own connections to the
// database, in its own thread, so a read that fetches, parses and encodes
// 10,000 rows never holds the event loop that answers uplinks. SQLite: one
// read-only connection (WAL lets it read committed data while the main
// thread writes). PostgreSQL: the read pool (pg_read_pool_size connections),
// several pages at once. Either way a page is one statement, one snapshot,
// so it never shows half a transaction.
// Messages: {id, op: 'page' | 'readings' | 'devicesPage' | 'gaps', args};
// answers {id, ok: true, value} or {id, ok: false, message}. A page's body is
// transferred, not copied.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { encodePage } from '../reads/wire.js';
import { PostgresStorage } from './postgres.js';
import { SqliteStorage } from './sqlite.js';
import type { PageRequest, Storage } from './types.js';

export interface ReadMessage {
  id: number;
  op: 'page' | 'readings' | 'devicesPage' | 'gaps';
  args: unknown[];
}

/** The read worker thread's nice value (0 normal, 19 lowest). */
const READ_NICE = 10;

export interface ReadWorkerData {
  /** A SQLite file path or a postgres:// URL. */
  db: string;
  readPoolSize: number;
}

const port = parentPort!;
const { db, readPoolSize } = workerData as ReadWorkerData;

// On Linux the nice value is per thread (setpriority(2), NOTES: "under the
// current Linux/NPTL implementation of POSIX threads, the nice value is a
// per-thread attribute"), so this lowers only this thread: when reads and
// uploads want the same CPU, the event loop that answers uploads goes first.
// Elsewhere it may lower the whole process or fail; then it is left alone.
if (process.platform === 'linux') {
  try {
    setPriority(READ_NICE);
  } catch {
    // not permitted here: reads keep the normal priority
  }
}
// A failure to open is thrown here, ends the thread, and fails the reads waiting for it with the reason.
const opening: Promise<Storage> = /^postgres(ql)?:\/\//i.test(db)
  ? PostgresStorage.open(db, { readOnly: true, readPoolSize, readWorkers: 0 })
  : Promise.resolve(new SqliteStorage(db, { readonly: true, readWorkers: 0 }));

async function answer(m: ReadMessage): Promise<void> {
  const storage = await opening;
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
await opening;
