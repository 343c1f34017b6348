// sealpost-storage: the database (SQLite file or PostgreSQL URL from the
// config), migrated at boot. A storage passed in by the caller (tests, two
// "nodes" on one database) is used as is and left open on close.
import fp from 'fastify-plugin';
import { ConfigError } from '../errors.js';
import { PostgresStorage, SqliteStorage, describeDb, openStorage } from '../storage/index.js';
import type { Storage } from '../storage/types.js';

export interface StorageOptions {
  storage?: Storage;
}

export default fp<StorageOptions>(
  async (app, opts) => {
    const owned = opts.storage === undefined;
    const db = describeDb(app.config.db);
    let storage = opts.storage;
    if (!storage) {
      try {
        storage = await openStorage(app.config.db, {
          sqliteSynchronous: app.config.sqliteSynchronous,
          poolSize: app.config.pgPoolSize,
          readPoolSize: app.config.pgReadPoolSize,
          readWorkers: app.config.readWorkers,
          keyDirectory: app.config.keyDirectory,
          onError: (e) => app.log.error({ err: e }, 'database connection error'),
          onWarning: (message) => app.log.warn(message),
        });
      } catch (e) {
        throw new ConfigError(`cannot open the database ${db}: ${(e as Error).message}`);
      }
    }
    const opened = storage;
    app.decorate('storage', opened);
    if (owned) app.addHook('onClose', async () => opened.close());
    // Start the read worker now rather than make the first read wait for it.
    if (opened instanceof SqliteStorage || opened instanceof PostgresStorage) opened.readWorkers?.warm();
    app.log.info({ backend: opened.backend, db: owned ? db : '(given)', migrations: await opened.migrations() }, 'storage ready');
  },
  { name: 'sealpost-storage', fastify: '5.x', dependencies: ['sealpost-context'] },
);
