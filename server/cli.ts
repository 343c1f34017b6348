// `sealpost server`, `sealpost registry` and `sealpost token`: parse arguments, call
// server/start.ts and server/registry.ts, print, return an exit code
// (style.md rule 12). Errors are thrown with a message for the operator;
// cli/main.ts prints them.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../cli/command.js';
import { ConfigError, loadConfig, type ConfigFlags, type ServerConfig } from './config.js';
import { Keyring, loadIngestKeysForImport, loadTrustedKeys, wrapPendingDevices } from './keys.js';
import { formatTable, importManifest, revokeDevice } from './registry.js';
import { startServer } from './start.js';
import { describeDb, isPostgresUrl, openStorage, type Storage } from './storage/index.js';
import { createToken, listTokens, revokeToken } from './tokens.js';

const CONFIG_OPTIONS = {
  config: { type: 'string' },
  db: { type: 'string' },
  'ingest-key': { type: 'string', multiple: true },
  trust: { type: 'string', multiple: true },
} as const;

function flagsOf(values: Record<string, unknown>): ConfigFlags {
  const f: ConfigFlags = {};
  if (typeof values.config === 'string') f.config = values.config;
  if (typeof values.db === 'string') f.db = values.db;
  if (typeof values.listen === 'string') f.listen = values.listen;
  if (Array.isArray(values['ingest-key'])) f.ingestKey = values['ingest-key'] as string[];
  if (Array.isArray(values.trust)) f.trust = values.trust as string[];
  if (typeof values['tls-cert'] === 'string') f.tlsCert = values['tls-cert'];
  if (typeof values['tls-key'] === 'string') f.tlsKey = values['tls-key'];
  if (typeof values['log-level'] === 'string') f.logLevel = values['log-level'];
  return f;
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

const SERVER_USAGE =
  'sealpost server [--config FILE] [--db PATH|postgres://URL] [--listen HOST:PORT] [--ingest-key FILE]... [--trust FILE]... ' +
  '[--tls-cert FILE --tls-key FILE] [--log-level LEVEL]';

/** Opens the database for a one-off command (registry, token): a small pool; a failure is the operator's to fix. */
async function openCommandStorage(config: Pick<ServerConfig, 'db' | 'sqliteSynchronous'>): Promise<Storage> {
  try {
    return await openStorage(config.db, { sqliteSynchronous: config.sqliteSynchronous, poolSize: 2 });
  } catch (e) {
    throw new ConfigError(`cannot open the database ${describeDb(config.db)}: ${(e as Error).message}`);
  }
}

async function runServer(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...CONFIG_OPTIONS,
      listen: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new ConfigError(`unexpected argument "${positionals[0]}"; usage: ${SERVER_USAGE}`);
  const config = loadConfig(flagsOf(values));
  const server = await startServer(config);
  const signal = await waitForSignal();
  server.app.log.info({ signal }, 'shutting down');
  await server.close();
  return 0;
}

const REGISTRY_USAGE = [
  'sealpost registry import MANIFEST (--config FILE | --db PATH|URL --trust FACTORY.pub... --ingest-key FILE...)',
  'sealpost registry revoke SERIAL (--config FILE | --db PATH|URL)',
  'sealpost registry list [--json] (--config FILE | --db PATH|URL)',
].join('\n       ');

async function runRegistry(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...CONFIG_OPTIONS, json: { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  const [action, target, ...rest] = positionals;
  const expects = action === 'list' ? 0 : 1;
  if (action === undefined || !['import', 'revoke', 'list'].includes(action) || (target === undefined ? 0 : 1 + rest.length) !== expects) {
    throw new ConfigError(`usage: ${REGISTRY_USAGE}`);
  }
  if (values.config === undefined && values.db === undefined) {
    throw new ConfigError('say which database: --config FILE (the server\'s config) or --db PATH|postgres://URL');
  }
  const config = loadConfig(flagsOf(values));
  if (action !== 'import' && !isPostgresUrl(config.db) && !existsSync(config.db)) {
    throw new ConfigError(`database ${config.db} does not exist (import a manifest first, or check --db / the config)`);
  }

  let manifest = '';
  if (action === 'import') {
    try {
      manifest = readFileSync(target!, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read manifest ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  const trusted = action === 'import' ? loadTrustedKeys(config.trust) : [];
  const ingestKeys = action === 'import' ? loadIngestKeysForImport(config.ingestKeys) : { ids: [], privateKeys: [] };

  const storage = await openCommandStorage(config);
  try {
    if (action === 'import') {
      const keyring = ingestKeys.privateKeys.length > 0 ? new Keyring(ingestKeys.privateKeys, 1) : undefined;
      const o = await importManifest(storage, manifest, { trusted, ingestKeyIds: ingestKeys.ids, ...(keyring ? { keyring } : {}) });
      if (o.status === 'unchanged') {
        console.log(`batch ${o.batch} was already imported from this manifest: nothing changed`);
      } else {
        const present = o.present > 0 ? `, ${o.present} already registered with the same enc` : '';
        console.log(
          `imported batch ${o.batch}: ${o.added} devices registered${present} (board ${o.board}, frame size ${o.frameSize}, ingest key ${o.ingestKeyId}, signed by ${o.factoryKeyId})`,
        );
        if (o.wrapped < o.devices) {
          console.log(
            `${o.devices - o.wrapped} of them are stored without wrapped keys: this machine holds only the public key of ${o.ingestKeyId}. ` +
              'The server derives and wraps them when it next starts (or, at the latest, on each device\'s first frame); ' +
              'to do it now, import with --ingest-key naming the private key file.',
          );
        }
      }
      if (keyring) {
        // Rows of earlier imports (or from before wrapping) that are still unwrapped: wrap them now too.
        const older = await wrapPendingDevices(storage, keyring);
        if (older.wrapped > 0) console.log(`also wrapped the keys of ${older.wrapped} registry rows imported earlier without them`);
        if (older.failed.length > 0) console.log(`${older.failed.length} registry rows have an enc no key can be derived from: ${older.failed.slice(0, 5).join(', ')}`);
      }
    } else if (action === 'revoke') {
      const r = await revokeDevice(storage, target!);
      console.log(r === 'revoked' ? `revoked ${target}: its frames are rejected from now on` : `${target} was already revoked: nothing changed`);
    } else {
      const devices = await storage.devices();
      if (values.json) console.log(JSON.stringify(devices, null, 2));
      else console.log(devices.length === 0 ? 'no devices registered' : formatTable(devices));
    }
  } finally {
    await storage.close();
  }
  return 0;
}

const TOKEN_USAGE = [
  'sealpost token create --role read|admin --name NAME (--config FILE | --db PATH|URL)',
  'sealpost token list [--json] (--config FILE | --db PATH|URL)',
  'sealpost token revoke NAME (--config FILE | --db PATH|URL)',
].join('\n       ');

const iso = (t: number | null) => (t === null ? 'never' : new Date(t).toISOString());

async function runToken(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: CONFIG_OPTIONS.config, db: CONFIG_OPTIONS.db, json: { type: 'boolean' }, role: { type: 'string' }, name: { type: 'string' } },
    strict: true,
    allowPositionals: true,
  });
  const [action, ...rest] = positionals;
  if (action === undefined || !['create', 'list', 'revoke'].includes(action)) throw new ConfigError(`usage: ${TOKEN_USAGE}`);
  if (action === 'revoke' && rest.length !== 1) throw new ConfigError(`say which token: sealpost token revoke NAME (sealpost token list shows the names)`);
  if (action !== 'revoke' && rest.length > 0) throw new ConfigError(`unexpected argument "${rest[0]}"; usage: ${TOKEN_USAGE}`);
  if (action === 'create') {
    if (values.role === undefined) throw new ConfigError('say which role: --role read (reads the API and the dashboard) or --role admin (also manages the fleet)');
    if (values.name === undefined) throw new ConfigError('say whose token it is: --name NAME, e.g. --name dashboard-alice (1 to 64 of A-Z a-z 0-9 . _ -)');
  } else if (values.role !== undefined || values.name !== undefined) {
    throw new ConfigError(`--role and --name belong to token create; usage: ${TOKEN_USAGE}`);
  }
  if (values.config === undefined && values.db === undefined) {
    throw new ConfigError("say which database: --config FILE (the server's config) or --db PATH|postgres://URL");
  }
  const config = loadConfig(flagsOf(values));
  if (action !== 'create' && !isPostgresUrl(config.db) && !existsSync(config.db)) {
    throw new ConfigError(`database ${config.db} does not exist (check --db / the config)`);
  }
  const storage = await openCommandStorage(config);
  try {
    if (action === 'create') {
      const t = await createToken(storage, values.name!, values.role!);
      console.log(`created ${t.role} token ${t.name}:`);
      console.log('');
      console.log(`  ${t.token}`);
      console.log('');
      console.log('It will not be shown again: only its hash is stored. Send it as');
      console.log(`  Authorization: Bearer ${t.token}`);
      console.log('or paste it into the dashboard\'s sign-in form.');
    } else if (action === 'revoke') {
      await revokeToken(storage, rest[0]!);
      console.log(`revoked token ${rest[0]}: requests with it get 401 from now on`);
    } else {
      const tokens = await listTokens(storage);
      if (values.json) {
        console.log(JSON.stringify(tokens.map((t) => ({ name: t.name, role: t.role, created: iso(t.createdAt), last_used: t.lastUsed === null ? null : iso(t.lastUsed) })), null, 2));
      } else if (tokens.length === 0) {
        console.log('no tokens; create one with: sealpost token create --role read --name NAME');
      } else {
        const head = ['name', 'role', 'created', 'last used'];
        const rows = tokens.map((t) => [t.name, t.role, iso(t.createdAt), iso(t.lastUsed)]);
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
      }
    }
  } finally {
    await storage.close();
  }
  return 0;
}

export const serverCommands: Record<string, Command> = {
  server: {
    summary: 'run the ingest server (HTTP API, registry, readings store)',
    usage: SERVER_USAGE,
    run: runServer,
  },
  registry: {
    summary: 'import signed batch manifests, revoke devices, list the registry',
    usage: REGISTRY_USAGE,
    run: runRegistry,
  },
  token: {
    summary: 'create, list and revoke API tokens (bearer tokens for the read API and the dashboard)',
    usage: TOKEN_USAGE,
    run: runToken,
  },
};
