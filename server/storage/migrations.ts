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
  {
    // PostgreSQL's ingest write in one round trip (server/storage/postgres-ingest.ts;
    // docs/server.md, "One round trip per write"). The node settles a request
    // from state it read without a lock; this function, called in autocommit
    // (one statement, its own transaction), locks the devices' rows in serial
    // order, checks that none changed since that read (xmin, the id of the
    // transaction that wrote the row version: every ingest transaction
    // updates the rows of the devices it writes for, so an unchanged xmin
    // means nothing the settling read has changed), and only then applies
    // every write of the request. It returns false, having written nothing,
    // when a row changed; the node then runs the request again under the row
    // locks. A frame that turns out to be stored already raises
    // serialization_failure, rolling everything back, with the same outcome.
    // What only a late frame can cause (samples resolved by a late anchor,
    // gaps shrunk) never comes here: a late frame takes the locked path.
    // Version 4, not 3: main's version 3 (partitions, issue #14 item 5) was
    // made at the same time on another branch and comes first when they meet.
    version: 4,
    name: 'ingest write function (PostgreSQL)',
    sqlite: `SELECT 1; -- nothing: SQLite runs the ingest transaction in-process`,
    postgres: `
      CREATE FUNCTION ingest_write(
        lock_serial text[], lock_version text[],
        f_serial text[], f_counter bigint[], f_frame bytea[], f_type smallint[], f_content text[], f_relay text[], f_relay_time bigint[], f_rx bigint[], f_received bigint[],
        a_serial text[], a_counter bigint[], a_boot int[], a_uptime bigint[], a_reason smallint[],
        b_serial text[], b_boot int[], b_start bigint[], b_anchor bigint[], b_source text[], b_new boolean[],
        t_serial text[], t_boot int[], t_start bigint[], t_source text[],
        r_serial text[], r_counter bigint[], r_idx smallint[], r_channel smallint[], r_name text[], r_unit text[], r_value float8[],
        r_boot8 smallint[], r_uptime24 int[], r_bound bigint[], r_boot int[], r_uptime bigint[], r_time bigint[], r_source text[],
        g_serial text[], g_first bigint[], g_count bigint[], g_kind text[], g_detected bigint[],
        d_serial text[], d_frames bigint[], d_last_seen bigint[], d_settled bigint[], d_max_counter bigint[], d_boot_floor bigint[],
        d_gap_hi bigint[], d_battery float8[], d_battery_counter bigint[],
        k_serial text[], k_wrapped bytea[]
      ) RETURNS boolean LANGUAGE plpgsql AS $fn$
      DECLARE
        n bigint;
      BEGIN
        -- The row locks first, in serial order like every ingest transaction, then the check.
        SELECT count(*) INTO n FROM (
          SELECT serial, xmin::text AS v FROM devices WHERE serial = ANY(lock_serial) ORDER BY serial FOR UPDATE
        ) l JOIN unnest(lock_serial, lock_version) AS e(serial, v) ON e.serial = l.serial AND e.v = l.v;
        IF n <> cardinality(lock_serial) THEN
          RETURN false;
        END IF;

        INSERT INTO frames (serial, counter, frame, type, content, relay, relay_time, rx, received)
        SELECT * FROM unnest(f_serial, f_counter, f_frame, f_type, f_content, f_relay, f_relay_time, f_rx, f_received)
        ON CONFLICT (serial, counter) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> cardinality(f_serial) THEN
          RAISE EXCEPTION 'sealpost: a frame of this request was stored meanwhile' USING ERRCODE = 'serialization_failure';
        END IF;

        INSERT INTO anchors (serial, counter, boot, uptime, reason)
        SELECT * FROM unnest(a_serial, a_counter, a_boot, a_uptime, a_reason) ON CONFLICT DO NOTHING;

        INSERT INTO boots (serial, boot, start, anchor_counter, time_source)
        SELECT u.serial, u.boot, u.start, u.anchor, u.source FROM unnest(b_serial, b_boot, b_start, b_anchor, b_source, b_new)
          AS u(serial, boot, start, anchor, source, is_new) WHERE u.is_new;
        UPDATE boots b SET start = u.start, time_source = u.source
        FROM unnest(b_serial, b_boot, b_start, b_source, b_new) AS u(serial, boot, start, source, is_new)
        WHERE NOT u.is_new AND b.serial = u.serial AND b.boot = u.boot;

        -- Before the new readings go in, as the ingest code does: they carry their time already.
        UPDATE readings r SET time = u.start + r.uptime * 1000, time_source = u.source
        FROM unnest(t_serial, t_boot, t_start, t_source) AS u(serial, boot, start, source)
        WHERE r.serial = u.serial AND r.boot = u.boot;

        INSERT INTO readings (serial, counter, idx, channel, name, unit, value, boot8, uptime24, bound, boot, uptime, time, time_source)
        SELECT * FROM unnest(r_serial, r_counter, r_idx, r_channel, r_name, r_unit, r_value, r_boot8, r_uptime24, r_bound, r_boot, r_uptime, r_time, r_source)
        ON CONFLICT DO NOTHING;

        -- In the order given, so ids (the tie-break of reads by (first, id)) rise as they would row by row.
        INSERT INTO gaps (serial, first, count, kind, detected_at)
        SELECT u.serial, u.first, u.count, u.kind, u.detected FROM unnest(g_serial, g_first, g_count, g_kind, g_detected)
          WITH ORDINALITY AS u(serial, first, count, kind, detected, i) ORDER BY u.i;

        UPDATE devices d SET keys_wrapped = u.k FROM unnest(k_serial, k_wrapped) AS u(serial, k)
        WHERE d.serial = u.serial AND d.keys_wrapped IS NULL;
        UPDATE devices d SET frames = u.frames, last_seen = u.last_seen, settled = u.settled, max_counter = u.max_counter,
          boot_floor = u.boot_floor, gap_hi = u.gap_hi, battery = u.battery, battery_counter = u.battery_counter
        FROM unnest(d_serial, d_frames, d_last_seen, d_settled, d_max_counter, d_boot_floor, d_gap_hi, d_battery, d_battery_counter)
          AS u(serial, frames, last_seen, settled, max_counter, boot_floor, gap_hi, battery, battery_counter)
        WHERE d.serial = u.serial;
        RETURN true;
      END
      $fn$;
    `,
  },
  {
    // Key renewal (issue #17 item 4; docs/server.md, "Key renewal"): one row per
    // device and epoch it renewed to. keys_wrapped is the epoch's seal key and
    // nonce salt wrapped exactly as devices.keys_wrapped (KEK of the epoch's
    // ingest key, ad binding serial, key id and enc), chain_wrapped the
    // epoch's chain secret under the same KEK with its own label: a dump
    // opens nothing. state: pending (RENEW_ACK sent, no frame under the new
    // key yet), committed (a frame opened under it; commit_counter is c_e),
    // frozen (a second, different enc came for this epoch). rekey_counter is
    // the counter of the REKEY set's part 0; prev_dropped_at when the key of
    // the epoch before stopped opening frames (everything below c_e settled,
    // or the grace period ended). Rows are only ever added by a renewal the
    // server answered, so the table stays empty without renewal.
    version: 5,
    name: 'key renewal: device epochs',
    sqlite: `
      CREATE TABLE device_epochs (
        serial TEXT NOT NULL REFERENCES devices (serial),
        epoch INTEGER NOT NULL CHECK (epoch BETWEEN 1 AND 4294967295),
        from_epoch INTEGER NOT NULL CHECK (from_epoch >= 0 AND from_epoch < epoch),
        ingest_key_id TEXT NOT NULL,
        enc BLOB NOT NULL,
        keys_wrapped BLOB NOT NULL,
        chain_wrapped BLOB NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'frozen')),
        rekey_counter INTEGER NOT NULL,
        commit_counter INTEGER,
        created_at INTEGER NOT NULL,
        committed_at INTEGER,
        prev_dropped_at INTEGER,
        frozen_at INTEGER,
        PRIMARY KEY (serial, epoch)
      );
    `,
    postgres: `
      CREATE TABLE device_epochs (
        serial TEXT NOT NULL REFERENCES devices (serial),
        epoch BIGINT NOT NULL CHECK (epoch BETWEEN 1 AND 4294967295),
        from_epoch BIGINT NOT NULL CHECK (from_epoch >= 0 AND from_epoch < epoch),
        ingest_key_id TEXT NOT NULL,
        enc BYTEA NOT NULL,
        keys_wrapped BYTEA NOT NULL,
        chain_wrapped BYTEA NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'frozen')),
        rekey_counter BIGINT NOT NULL,
        commit_counter BIGINT,
        created_at BIGINT NOT NULL,
        committed_at BIGINT,
        prev_dropped_at BIGINT,
        frozen_at BIGINT,
        PRIMARY KEY (serial, epoch)
      );
    `,
  },
  {
    // ingest_write of version 4, each write that is often empty (anchors,
    // boots, re-timing, readings, gaps, wrapped keys) behind a test of its
    // array, same signature and effect. PL/pgSQL runs every statement it
    // reaches, with an executor for each and, for the re-timing UPDATE of
    // readings, a scan set up on all 16 partitions, even when the unnest
    // yields no row; an in-order upload writes frames, one anchor, readings
    // and the device row, and the rest cost a third of the function's
    // database CPU (docs/server.md section 9, "The database's side").
    // Version 6: 5 is taken by other work made at the same time.
    version: 6,
    name: 'ingest write function skips empty writes (PostgreSQL)',
    sqlite: `SELECT 1; -- nothing: SQLite runs the ingest transaction in-process`,
    postgres: `
      CREATE OR REPLACE FUNCTION ingest_write(
        lock_serial text[], lock_version text[],
        f_serial text[], f_counter bigint[], f_frame bytea[], f_type smallint[], f_content text[], f_relay text[], f_relay_time bigint[], f_rx bigint[], f_received bigint[],
        a_serial text[], a_counter bigint[], a_boot int[], a_uptime bigint[], a_reason smallint[],
        b_serial text[], b_boot int[], b_start bigint[], b_anchor bigint[], b_source text[], b_new boolean[],
        t_serial text[], t_boot int[], t_start bigint[], t_source text[],
        r_serial text[], r_counter bigint[], r_idx smallint[], r_channel smallint[], r_name text[], r_unit text[], r_value float8[],
        r_boot8 smallint[], r_uptime24 int[], r_bound bigint[], r_boot int[], r_uptime bigint[], r_time bigint[], r_source text[],
        g_serial text[], g_first bigint[], g_count bigint[], g_kind text[], g_detected bigint[],
        d_serial text[], d_frames bigint[], d_last_seen bigint[], d_settled bigint[], d_max_counter bigint[], d_boot_floor bigint[],
        d_gap_hi bigint[], d_battery float8[], d_battery_counter bigint[],
        k_serial text[], k_wrapped bytea[]
      ) RETURNS boolean LANGUAGE plpgsql AS $fn$
      DECLARE
        n bigint;
      BEGIN
        -- The row locks first, in serial order like every ingest transaction, then the check.
        SELECT count(*) INTO n FROM (
          SELECT serial, xmin::text AS v FROM devices WHERE serial = ANY(lock_serial) ORDER BY serial FOR UPDATE
        ) l JOIN unnest(lock_serial, lock_version) AS e(serial, v) ON e.serial = l.serial AND e.v = l.v;
        IF n <> cardinality(lock_serial) THEN
          RETURN false;
        END IF;

        INSERT INTO frames (serial, counter, frame, type, content, relay, relay_time, rx, received)
        SELECT * FROM unnest(f_serial, f_counter, f_frame, f_type, f_content, f_relay, f_relay_time, f_rx, f_received)
        ON CONFLICT (serial, counter) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> cardinality(f_serial) THEN
          RAISE EXCEPTION 'sealpost: a frame of this request was stored meanwhile' USING ERRCODE = 'serialization_failure';
        END IF;

        IF cardinality(a_serial) > 0 THEN
          INSERT INTO anchors (serial, counter, boot, uptime, reason)
          SELECT * FROM unnest(a_serial, a_counter, a_boot, a_uptime, a_reason) ON CONFLICT DO NOTHING;
        END IF;

        IF cardinality(b_serial) > 0 THEN
          INSERT INTO boots (serial, boot, start, anchor_counter, time_source)
          SELECT u.serial, u.boot, u.start, u.anchor, u.source FROM unnest(b_serial, b_boot, b_start, b_anchor, b_source, b_new)
            AS u(serial, boot, start, anchor, source, is_new) WHERE u.is_new;
          UPDATE boots b SET start = u.start, time_source = u.source
          FROM unnest(b_serial, b_boot, b_start, b_source, b_new) AS u(serial, boot, start, source, is_new)
          WHERE NOT u.is_new AND b.serial = u.serial AND b.boot = u.boot;
        END IF;

        -- Before the new readings go in, as the ingest code does: they carry their time already.
        IF cardinality(t_serial) > 0 THEN
          UPDATE readings r SET time = u.start + r.uptime * 1000, time_source = u.source
          FROM unnest(t_serial, t_boot, t_start, t_source) AS u(serial, boot, start, source)
          WHERE r.serial = u.serial AND r.boot = u.boot;
        END IF;

        IF cardinality(r_serial) > 0 THEN
          INSERT INTO readings (serial, counter, idx, channel, name, unit, value, boot8, uptime24, bound, boot, uptime, time, time_source)
          SELECT * FROM unnest(r_serial, r_counter, r_idx, r_channel, r_name, r_unit, r_value, r_boot8, r_uptime24, r_bound, r_boot, r_uptime, r_time, r_source)
          ON CONFLICT DO NOTHING;
        END IF;

        -- In the order given, so ids (the tie-break of reads by (first, id)) rise as they would row by row.
        IF cardinality(g_serial) > 0 THEN
          INSERT INTO gaps (serial, first, count, kind, detected_at)
          SELECT u.serial, u.first, u.count, u.kind, u.detected FROM unnest(g_serial, g_first, g_count, g_kind, g_detected)
            WITH ORDINALITY AS u(serial, first, count, kind, detected, i) ORDER BY u.i;
        END IF;

        IF cardinality(k_serial) > 0 THEN
          UPDATE devices d SET keys_wrapped = u.k FROM unnest(k_serial, k_wrapped) AS u(serial, k)
          WHERE d.serial = u.serial AND d.keys_wrapped IS NULL;
        END IF;
        UPDATE devices d SET frames = u.frames, last_seen = u.last_seen, settled = u.settled, max_counter = u.max_counter,
          boot_floor = u.boot_floor, gap_hi = u.gap_hi, battery = u.battery, battery_counter = u.battery_counter
        FROM unnest(d_serial, d_frames, d_last_seen, d_settled, d_max_counter, d_boot_floor, d_gap_hi, d_battery, d_battery_counter)
          AS u(serial, frames, last_seen, settled, max_counter, boot_floor, gap_hi, battery, battery_counter)
        WHERE d.serial = u.serial;
        RETURN true;
      END
      $fn$;
    `,
  },
  {
    // SQLite: a request's key rows from one index (docs/server.md, "Junk
    // uplinks", seventh pass; docs/decisions.md, "Junk uplinks, seventh
    // pass"). The key-row statement (rows.ts, keyRowsQuery) reads, per
    // serial, the two values this index stores already computed: the row's
    // text of serial, key id, frame size, status, watermark and blob lengths,
    // and enc || keys_wrapped. Without it each serial cost a descent of the
    // serial index, one of the table's B-tree and the values built anew; with
    // it, one descent (sqlite.ts names the index, INDEXED BY, so a query
    // that cannot use it fails to prepare instead of running slower). The
    // two expressions must stay exactly those of keyRowsQuery: a test checks
    // that the statement's plan is a covering search of this index. SQLite
    // keeps it in step with every write of those columns (a settle rewrites
    // the device's entry); it holds what the table holds, nothing more.
    // PostgreSQL: nothing (an index-only scan cannot return an expression's
    // value, and its CPU is the database's, not the node's).
    version: 7,
    name: 'key rows index (SQLite)',
    sqlite: `
      CREATE INDEX devices_key_rows ON devices (
        serial,
        serial || ' ' || ingest_key_id || ' ' || frame_size || ' ' || status || ' ' || settled || ' ' || length(enc) || ' ' || COALESCE(length(keys_wrapped), -1),
        enc || COALESCE(keys_wrapped, x'')
      );
    `,
    postgres: `SELECT 1; -- nothing: see the SQLite statement's comment`,
  },
];
