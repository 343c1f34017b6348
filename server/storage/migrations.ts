// Versioned schema migrations, one entry per version with each backend's DDL.
// A backend applies, in one transaction each, every version above the highest
// recorded in schema_migrations. Append new versions; never edit an applied one.
//
// Column notes (both backends):
//   devices.settled      the ack watermark N (docs/protocol.md section 6)
//   devices.max_counter  highest stored counter; lets the ingest path skip
//                        queries when nothing is stored above the watermark
//   devices.boot_floor   highest counter of a boot anchor (reason 0)
//   devices.gap_hi       highest counter a gap row ever covered
//   readings.bound       min(relay rx, server receive time) of the frame, the
//                        upper bound its boot start estimate is taken from
//   readings.boot8/uptime24  the raw sample header, kept so a sample whose
//                        boot has no anchor yet can be resolved later
//   devices.keys_wrapped the device's seal key and nonce salt, derived once
//                        (registry import, or server start for older rows) and
//                        sealed with AES-256-GCM under a key-encryption key
//                        derived from the ingest private key (docs/server.md,
//                        "Wrapped device keys"); NULL until derived
//   boots.time_source /  'relay' when the boot start estimate rests on a relay's
//   readings.time_source (clamped) receive time, 'server' when only on the
//                        server's clock (docs/server.md, "Time clamp")
//   api_tokens.hash      SHA-256 of the bearer token; the token itself is never stored
//
// Version 3 (PostgreSQL only) makes frames, readings and anchors, the tables
// that grow with every frame, declaratively partitioned by hash of serial
// (PG_PARTITIONS of them). The primary keys stay (serial, counter) and
// (serial, counter, idx): a unique key on a partitioned table must contain the
// partition key, which serial is, so "a frame is stored once" is still enforced
// by the database; time partitions could not keep that key (docs/server.md,
// "Growth", and docs/decisions.md say why hash was chosen).

export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

/**
 * Hash partitions of each per-frame table (docs/server.md, "Growth"). Fixed in
 * migration 3; changing it later means copying the tables again, as that
 * migration does.
 */
export const PG_PARTITIONS = 16;

/**
 * Migration 3 on PostgreSQL: each table is renamed aside, recreated
 * partitioned with the same columns (LIKE, so types, order, NOT NULL and
 * CHECKs are the old table's), primary key and indexes, its rows copied and
 * the old table dropped, all inside the migration's transaction (under its
 * advisory lock, so nodes starting together convert once) with nothing lost:
 * a failure rolls everything back to version 2.
 */
function partitionByHash(table: string, key: string, indexes: string[]): string {
  const parts = Array.from(
    { length: PG_PARTITIONS },
    (_, i) => `CREATE TABLE ${table}_p${String(i).padStart(2, '0')} PARTITION OF ${table} FOR VALUES WITH (MODULUS ${PG_PARTITIONS}, REMAINDER ${i});`,
  );
  const name = (ix: string) => ix.slice(0, ix.indexOf(' '));
  return [
    `ALTER TABLE ${table} RENAME TO ${table}_v2;`,
    `ALTER TABLE ${table}_v2 RENAME CONSTRAINT ${table}_pkey TO ${table}_v2_pkey;`,
    ...indexes.map((ix) => `ALTER INDEX ${name(ix)} RENAME TO ${name(ix)}_v2;`),
    `CREATE TABLE ${table} (LIKE ${table}_v2 INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (${key})) PARTITION BY HASH (serial);`,
    ...parts,
    `INSERT INTO ${table} SELECT * FROM ${table}_v2;`,
    `DROP TABLE ${table}_v2;`,
    ...indexes.map((ix) => `CREATE INDEX ${name(ix)} ON ${table} ${ix.slice(ix.indexOf(' ') + 1)};`),
    `ANALYZE ${table};`,
  ].join('\n');
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'registry, frames, readings, gaps',
    sqlite: `
      CREATE TABLE batches (
        batch TEXT PRIMARY KEY,
        factory_key_id TEXT NOT NULL,
        ingest_key_id TEXT NOT NULL,
        board TEXT NOT NULL,
        frame_size INTEGER NOT NULL,
        created TEXT NOT NULL,
        manifest_sha256 TEXT NOT NULL,
        devices INTEGER NOT NULL,
        imported_at INTEGER NOT NULL
      );
      CREATE TABLE devices (
        serial TEXT PRIMARY KEY,
        enc BLOB NOT NULL,
        ingest_key_id TEXT NOT NULL,
        board TEXT NOT NULL,
        frame_size INTEGER NOT NULL,
        batch TEXT NOT NULL REFERENCES batches(batch),
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
        registered_at INTEGER NOT NULL,
        revoked_at INTEGER,
        frames INTEGER NOT NULL DEFAULT 0,
        last_seen INTEGER,
        settled INTEGER NOT NULL DEFAULT 0,
        max_counter INTEGER NOT NULL DEFAULT 0,
        boot_floor INTEGER NOT NULL DEFAULT 0,
        gap_hi INTEGER NOT NULL DEFAULT 0,
        battery REAL,
        battery_counter INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE frames (
        serial TEXT NOT NULL,
        counter INTEGER NOT NULL,
        frame BLOB NOT NULL,
        type INTEGER NOT NULL,
        content TEXT NOT NULL,
        relay TEXT NOT NULL,
        relay_time INTEGER NOT NULL,
        rx INTEGER NOT NULL,
        received INTEGER NOT NULL,
        PRIMARY KEY (serial, counter)
      ) WITHOUT ROWID;
      CREATE TABLE anchors (
        serial TEXT NOT NULL,
        counter INTEGER NOT NULL,
        boot INTEGER NOT NULL,
        uptime INTEGER NOT NULL,
        reason INTEGER NOT NULL,
        PRIMARY KEY (serial, counter)
      ) WITHOUT ROWID;
      CREATE TABLE boots (
        serial TEXT NOT NULL,
        boot INTEGER NOT NULL,
        start INTEGER NOT NULL,
        anchor_counter INTEGER NOT NULL,
        PRIMARY KEY (serial, boot)
      ) WITHOUT ROWID;
      CREATE TABLE readings (
        serial TEXT NOT NULL,
        counter INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        channel INTEGER NOT NULL,
        name TEXT NOT NULL,
        unit TEXT NOT NULL,
        value REAL,
        boot8 INTEGER NOT NULL,
        uptime24 INTEGER NOT NULL,
        bound INTEGER NOT NULL,
        boot INTEGER,
        uptime INTEGER,
        time INTEGER,
        PRIMARY KEY (serial, counter, idx)
      ) WITHOUT ROWID;
      CREATE INDEX readings_by_time ON readings (serial, time);
      CREATE INDEX readings_by_boot ON readings (serial, boot);
      CREATE TABLE gaps (
        id INTEGER PRIMARY KEY,
        serial TEXT NOT NULL,
        first INTEGER NOT NULL,
        count INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('outbox-overflow', 'power-loss')),
        detected_at INTEGER NOT NULL
      );
      CREATE INDEX gaps_by_serial ON gaps (serial, first);
    `,
    postgres: `
      CREATE TABLE batches (
        batch TEXT PRIMARY KEY,
        factory_key_id TEXT NOT NULL,
        ingest_key_id TEXT NOT NULL,
        board TEXT NOT NULL,
        frame_size INTEGER NOT NULL,
        created TEXT NOT NULL,
        manifest_sha256 TEXT NOT NULL,
        devices INTEGER NOT NULL,
        imported_at BIGINT NOT NULL
      );
      CREATE TABLE devices (
        serial TEXT PRIMARY KEY,
        enc BYTEA NOT NULL,
        ingest_key_id TEXT NOT NULL,
        board TEXT NOT NULL,
        frame_size INTEGER NOT NULL,
        batch TEXT NOT NULL REFERENCES batches(batch),
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
        registered_at BIGINT NOT NULL,
        revoked_at BIGINT,
        frames BIGINT NOT NULL DEFAULT 0,
        last_seen BIGINT,
        settled BIGINT NOT NULL DEFAULT 0,
        max_counter BIGINT NOT NULL DEFAULT 0,
        boot_floor BIGINT NOT NULL DEFAULT 0,
        gap_hi BIGINT NOT NULL DEFAULT 0,
        battery DOUBLE PRECISION,
        battery_counter BIGINT NOT NULL DEFAULT 0
      );
      CREATE TABLE frames (
        serial TEXT NOT NULL,
        counter BIGINT NOT NULL,
        frame BYTEA NOT NULL,
        type SMALLINT NOT NULL,
        content TEXT NOT NULL,
        relay TEXT NOT NULL,
        relay_time BIGINT NOT NULL,
        rx BIGINT NOT NULL,
        received BIGINT NOT NULL,
        PRIMARY KEY (serial, counter)
      );
      CREATE TABLE anchors (
        serial TEXT NOT NULL,
        counter BIGINT NOT NULL,
        boot INTEGER NOT NULL,
        uptime BIGINT NOT NULL,
        reason SMALLINT NOT NULL,
        PRIMARY KEY (serial, counter)
      );
      CREATE TABLE boots (
        serial TEXT NOT NULL,
        boot INTEGER NOT NULL,
        start BIGINT NOT NULL,
        anchor_counter BIGINT NOT NULL,
        PRIMARY KEY (serial, boot)
      );
      CREATE TABLE readings (
        serial TEXT NOT NULL,
        counter BIGINT NOT NULL,
        idx SMALLINT NOT NULL,
        channel SMALLINT NOT NULL,
        name TEXT NOT NULL,
        unit TEXT NOT NULL,
        value DOUBLE PRECISION,
        boot8 SMALLINT NOT NULL,
        uptime24 INTEGER NOT NULL,
        bound BIGINT NOT NULL,
        boot INTEGER,
        uptime BIGINT,
        time BIGINT,
        PRIMARY KEY (serial, counter, idx)
      );
      CREATE INDEX readings_by_time ON readings (serial, time);
      CREATE INDEX readings_by_boot ON readings (serial, boot);
      CREATE TABLE gaps (
        id BIGSERIAL PRIMARY KEY,
        serial TEXT NOT NULL,
        first BIGINT NOT NULL,
        count BIGINT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('outbox-overflow', 'power-loss')),
        detected_at BIGINT NOT NULL
      );
      CREATE INDEX gaps_by_serial ON gaps (serial, first);
    `,
  },
  {
    version: 2,
    name: 'API tokens, wrapped device keys, time sources',
    sqlite: `
      CREATE TABLE api_tokens (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('read', 'admin')),
        hash BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        last_used INTEGER
      );
      ALTER TABLE devices ADD COLUMN keys_wrapped BLOB;
      ALTER TABLE boots ADD COLUMN time_source TEXT NOT NULL DEFAULT 'relay' CHECK (time_source IN ('relay', 'server'));
      ALTER TABLE readings ADD COLUMN time_source TEXT CHECK (time_source IN ('relay', 'server'));
      UPDATE readings SET time_source = 'relay' WHERE time IS NOT NULL;
    `,
    postgres: `
      CREATE TABLE api_tokens (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('read', 'admin')),
        hash BYTEA NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        last_used BIGINT
      );
      ALTER TABLE devices ADD COLUMN keys_wrapped BYTEA;
      ALTER TABLE boots ADD COLUMN time_source TEXT NOT NULL DEFAULT 'relay' CHECK (time_source IN ('relay', 'server'));
      ALTER TABLE readings ADD COLUMN time_source TEXT CHECK (time_source IN ('relay', 'server'));
      UPDATE readings SET time_source = 'relay' WHERE time IS NOT NULL;
    `,
  },
  {
    version: 3,
    name: 'frames, readings and anchors partitioned by hash of serial (PostgreSQL)',
    // SQLite has no partitioning; one file serves one node (docs/server.md, "Growth").
    sqlite: '',
    postgres: [
      partitionByHash('frames', 'serial, counter', []),
      partitionByHash('anchors', 'serial, counter', []),
      partitionByHash('readings', 'serial, counter, idx', ['readings_by_time (serial, time)', 'readings_by_boot (serial, boot)']),
    ].join('\n'),
  },
];
