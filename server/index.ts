// Public entry of the ingest server for tests, the demo and other tools.
export { buildServer, type BuildOptions } from './app.js';
export { startServer, type RunningServer } from './start.js';
export { ConfigError, DEFAULTS, DEFAULT_LIMITS, SECTIONS, checkConfig, loadConfig, makeConfig, type Limits, type ServerConfig } from './config.js';
export { Keyring, checkPrivateKeyMode, loadIngestKeyIds, loadIngestKeys, loadTrustedKeys } from './keys.js';
export { IngestEvents, type ReadingEvent, type RetimeEvent, type UplinkEvent } from './events.js';
export { ingestUplink, REASONS, type DeviceResult, type UplinkBody } from './ingest.js';
export { RegistryError, formatTable, importManifest, revokeDevice, type ImportOutcome } from './registry.js';
export { OPTIONAL_PLUGINS, type OptionalPlugin } from './plugins/index.js';
export { openStorage, isPostgresUrl, SqliteStorage, PostgresStorage, ReadsUnavailableError } from './storage/index.js';
export type { Storage, DeviceRow, DeviceSummary, GapRow, StoredFrame, StoredReading, NewReading, PageRequest, EncodedPage } from './storage/types.js';
