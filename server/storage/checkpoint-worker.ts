// The SQLite checkpoint thread (docs/server.md, "Durability"; checkpointer.ts):
// its own read-write connection to the database file, which does nothing but
// copy the WAL back into the database when the writer asks. At
// synchronous=NORMAL (set here; SQLite's checkpoint takes its syncs from the
// connection that runs it, wal.c walCheckpoint) the checkpoint fsyncs the WAL
// before copying and the database after, and records the frames as copied
// only after that second fsync: so the writer may restart the WAL over them
// and nothing acknowledged lives in the page cache only. With OFF it would
// sync nothing, which is why the level is set rather than inherited.
// Messages: {id} runs PRAGMA wal_checkpoint(PASSIVE); answers {id, ok: true,
// busy, log, checkpointed} or {id, ok: false, message}. 'close' closes the
// connection and ends the thread (so the writer's connection is the last
// one and removes the WAL when it closes, as it did alone).
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

export interface CheckpointWorkerData {
  /** The database file (a plain path: never :memory: or a file: URI). */
  path: string;
}

export interface CheckpointAnswer {
  id: number;
  ok: boolean;
  /** PRAGMA wal_checkpoint's columns: 1 when a lock kept it from finishing, the WAL's frames, and how many are copied. */
  busy?: number;
  log?: number;
  checkpointed?: number;
  message?: string;
}

const port = parentPort!;
const { path } = workerData as CheckpointWorkerData;
const db = new Database(path, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = NORMAL');
// This connection writes nothing; its own automatic checkpoints stay off so it only ever checkpoints when asked.
db.pragma('wal_autocheckpoint = 0');

port.on('message', (m: { id: number } | 'close') => {
  if (m === 'close') {
    db.close();
    port.close();
    return;
  }
  let answer: CheckpointAnswer;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    answer = { id: m.id, ok: true, busy: r!.busy, log: r!.log, checkpointed: r!.checkpointed };
  } catch (e) {
    answer = { id: m.id, ok: false, message: (e as Error).message };
  }
  port.postMessage(answer);
});
