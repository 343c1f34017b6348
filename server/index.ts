// Public entry of the ingest server for tests, the demo and other tools.
export { buildServer, type BuildOptions } from './app.js';
export { startServer, type RunningServer } from './start.js';
export { ConfigError, DeviceKeyError, HttpError, ReadsUnavailableError, RegistryError, TokenError, tooManyRequests } from './errors.js';
export { DEFAULTS, DEFAULT_LIMITS, NO_RATE_LIMIT, SECTIONS, checkConfig, loadConfig, makeConfig, type Limits, type ServerConfig } from './config.js';
export { Keyring, checkPrivateKeyMode, loadIngestKeys, loadIngestKeysForImport, loadTrustedKeys, registryKek, unwrapDeviceKeys, wrapDeviceKeys, wrapPendingDevices } from './keys.js';
export { IngestEvents, type ReadingEvent, type RetimeEvent, type UplinkEvent } from './events.js';
export { ingestUplink, REASONS, type DeviceResult, type UplinkBody } from './ingest/uplink.js';
export { formatTable, importManifest, revokeDevice, type ImportOutcome } from './registry.js';
export { OPTIONAL_PLUGINS, type OptionalPlugin } from './plugins/index.js';
export { openStorage, isPostgresUrl, SqliteStorage, PostgresStorage } from './storage/index.js';
export type { Storage, DeviceRow, DeviceSummary, GapRow, StoredFrame, StoredReading, NewReading, PageRequest, EncodedPage } from './storage/types.js';
export { TokenVerifier, createToken, listTokens, revokeToken, type CreatedToken, type TokenInfo, type TokenRole } from './auth/tokens.js';
export { RELAY_KEY_HEADER, RelayKeys, hashRelayKey, newRelayKey, type RelayKeyEntry } from './auth/relay-keys.js';
export { fileDescriptorLimit } from './edge/connections.js';
