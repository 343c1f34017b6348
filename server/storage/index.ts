// Chooses the backend from the database setting: a postgres:// or
// postgresql:// URL selects PostgreSQL, anything else is a SQLite file path
// (a `sqlite:` prefix is accepted and removed).
import { PostgresStorage, type PostgresOptions } from './postgres.js';
import { SqliteStorage } from './sqlite.js';
import type { Storage } from './types.js';

export type { Storage } from './types.js';
export { ReadsUnavailableError } from '../errors.js';
export { SqliteStorage } from './sqlite.js';
export { PostgresStorage } from './postgres.js';

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

export function sqlitePath(db: string): string {
  return db.startsWith('sqlite:') ? db.slice('sqlite:'.length) : db;
}

export interface OpenOptions extends PostgresOptions {
  sqliteSynchronous?: 'FULL' | 'NORMAL';
}

/** The database setting fit for a log line or a message: a URL loses its password. */
export function describeDb(db: string): string {
  if (!isPostgresUrl(db)) return sqlitePath(db);
  try {
    const u = new URL(db);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** Opens the database and applies pending migrations. */
export async function openStorage(db: string, options: OpenOptions = {}): Promise<Storage> {
  if (isPostgresUrl(db)) return PostgresStorage.open(db, options);
  return new SqliteStorage(sqlitePath(db), {
    ...(options.sqliteSynchronous ? { synchronous: options.sqliteSynchronous } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    ...(options.readWorkers !== undefined ? { readWorkers: options.readWorkers } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
    ...(options.keyDirectory !== undefined ? { keyDirectory: options.keyDirectory } : {}),
  });
}
