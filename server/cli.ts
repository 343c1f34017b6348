// `sealpost server`, `registry`, `token` and `relay-key`: parse arguments
// (cli/args.ts), call server/start.ts, server/registry.ts, server/auth/tokens.ts and
// server/auth/relay-keys.ts, print, return an exit code (style.md rule 12). Mistakes
// in the command line are UsageErrors; other errors are thrown with a message
// for the operator. cli/main.ts holds the usage and prints both.
import { existsSync, readFileSync } from 'node:fs';
import { checkedArg, parseFlags, stringOption, UsageError, type Flags, type Values } from '../cli/args.js';
import { loadConfig, LOG_LEVELS, parseListen, type ConfigFlags, type ServerConfig } from './config.js';
import { Keyring, loadIngestKeysForImport, loadTrustedKeys, wrapPendingDevices } from './keys.js';
import { ConfigError, RegistryError } from './errors.js';
import { formatTable, importManifest, revokeDevice } from './registry.js';
import { startServer } from './start.js';
import { describeDb, isPostgresUrl, openStorage, type Storage } from './storage/index.js';
import { newRelayKey, RELAY_KEY_NAME, RELAY_KEY_NAME_RULE } from './auth/relay-keys.js';
import { checkRole, checkTokenName, createToken, listTokens, revokeToken } from './auth/tokens.js';
import { epochView, type EpochRow, type EpochView } from './storage/epochs.js';

const DB_OPTIONS: Flags = { config: { type: 'string' }, db: { type: 'string' } };

const CONFIG_OPTIONS: Flags = {
  ...DB_OPTIONS,
  'ingest-key': { type: 'string', multiple: true },
  trust: { type: 'string', multiple: true },
};

function flagsOf(values: Values): ConfigFlags {
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

/** Opens the database for a one-off command (registry, token): a small pool; a failure is the operator's to fix. */
async function openCommandStorage(config: Pick<ServerConfig, 'db' | 'sqliteSynchronous'>): Promise<Storage> {
  try {
    return await openStorage(config.db, { sqliteSynchronous: config.sqliteSynchronous, poolSize: 2 });
  } catch (e) {
    throw new ConfigError(`cannot open the database ${describeDb(config.db)}: ${(e as Error).message}`);
  }
}

/** The database must be named on the command line, by itself or through the server's config. */
function needDatabase(values: Values): void {
  if (values.config === undefined && values.db === undefined) {
    throw new UsageError("say which database: --config FILE (the server's config) or --db PATH|postgres://URL");
  }
}

export async function runServer(args: string[]): Promise<number> {
  const { values } = parseFlags(
    args,
    { ...CONFIG_OPTIONS, listen: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'log-level': { type: 'string' } },
    0,
  );
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together: give both for HTTPS, or neither for HTTP');
  const listen = stringOption(values, 'listen');
  if (listen !== undefined) checkedArg(() => parseListen(listen, '--listen'));
  const level = stringOption(values, 'log-level');
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  const config = loadConfig(flagsOf(values));
  const server = await startServer(config);
  const signal = await waitForSignal();
  server.app.log.info({ signal }, 'shutting down');
  await server.close();
  return 0;
}

const REGISTRY_TARGET: Record<string, string | null> = { import: 'MANIFEST', revoke: 'SERIAL', list: null };

export async function runRegistry(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...CONFIG_OPTIONS, json: { type: 'boolean' } });
  const [action, target, ...rest] = positionals;
  if (action === undefined) throw new UsageError('which action? import, revoke or list');
  if (!Object.hasOwn(REGISTRY_TARGET, action)) throw new UsageError(`unknown action "${action}": use import, revoke or list`);
  const wants = REGISTRY_TARGET[action];
  if (wants !== null && target === undefined) throw new UsageError(`registry ${action} needs the ${wants}`);
  const extra = wants === null ? target : rest[0];
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  needDatabase(values);
  const config = loadConfig(flagsOf(values));
  if (action !== 'import' && !isPostgresUrl(config.db) && !existsSync(config.db)) {
    throw new ConfigError(`database ${config.db} does not exist (import a manifest first, or check --db / the config)`);
  }

  let manifest = '';
  if (action === 'import') {
    try {
      manifest = readFileSync(target!, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read manifest ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; give the manifest.json that sealpost provision wrote`);
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
      const r = await revokeDevice(storage, target!).catch((e: unknown) => {
        throw e instanceof RegistryError ? new RegistryError(`${e.message} (sealpost registry list shows the serials)`) : e;
      });
      console.log(r === 'revoked' ? `revoked ${target}: its frames are rejected from now on` : `${target} was already revoked: nothing changed`);
    } else {
      const devices = await storage.devices();
      // Key renewal: each device's epoch (and pending or frozen), from its epoch rows.
      const epochs = new Map<string, EpochView>();
      const bySerial = new Map<string, EpochRow[]>();
      for (const r of await storage.epochs.rows(devices.map((d) => d.serial))) bySerial.set(r.serial, [...(bySerial.get(r.serial) ?? []), r]);
      for (const d of devices) epochs.set(d.serial, epochView(bySerial.get(d.serial) ?? []));
      if (values.json) console.log(JSON.stringify(devices.map((d) => ({ ...d, ...epochs.get(d.serial) })), null, 2));
      else console.log(devices.length === 0 ? 'no devices registered' : formatTable(devices, epochs));
    }
  } finally {
    await storage.close();
  }
  return 0;
}

const iso = (t: number | null) => (t === null ? 'never' : new Date(t).toISOString());

export async function runToken(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...DB_OPTIONS, json: { type: 'boolean' }, role: { type: 'string' }, name: { type: 'string' } });
  const [action, ...rest] = positionals;
  if (action === undefined) throw new UsageError('which action? create, list or revoke');
  if (!['create', 'list', 'revoke'].includes(action)) throw new UsageError(`unknown action "${action}": use create, list or revoke`);
  if (action === 'revoke' && rest.length === 0) throw new UsageError('say which token: sealpost token revoke NAME (sealpost token list shows the names)');
  const extra = action === 'revoke' ? rest[1] : rest[0];
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const role = stringOption(values, 'role');
  const name = stringOption(values, 'name');
  if (action === 'create') {
    if (role === undefined) throw new UsageError('say which role: --role read (reads the API and the dashboard) or --role admin (also manages the fleet)');
    if (name === undefined) throw new UsageError('say whose token it is: --name NAME, e.g. --name dashboard-alice (1 to 64 of A-Z a-z 0-9 . _ -)');
    checkedArg(() => checkRole(role));
    checkedArg(() => checkTokenName(name));
  } else if (role !== undefined || name !== undefined) {
    throw new UsageError('--role and --name belong to token create');
  }
  if (action === 'revoke') checkedArg(() => checkTokenName(rest[0]!));
  needDatabase(values);
  const config = loadConfig(flagsOf(values));
  if (action !== 'create' && !isPostgresUrl(config.db) && !existsSync(config.db)) {
    throw new ConfigError(`database ${config.db} does not exist (check --db / the config)`);
  }
  const storage = await openCommandStorage(config);
  try {
    if (action === 'create') {
      const t = await createToken(storage, name!, role!);
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

export async function runRelayKey(args: string[]): Promise<number> {
  const { positionals } = parseFlags(args, {}, 2);
  const [action, name] = positionals;
  if (action === undefined) throw new UsageError('which action? only "new" exists');
  if (action !== 'new') throw new UsageError(`unknown action "${action}": only "new" exists`);
  if (name === undefined) throw new UsageError('say whose key it is: sealpost relay-key new NAME, e.g. acme-app');
  if (!RELAY_KEY_NAME.test(name)) throw new UsageError(`relay key name must be ${RELAY_KEY_NAME_RULE}, got ${JSON.stringify(name)}`);
  const made = newRelayKey(name);
  console.log(`relay key "${name}" (shown only now; build it into the relay app or pass it to sealpost sim --relay-key):`);
  console.log(`  ${made.key}`);
  console.log('');
  console.log('add this entry to "relay_keys" in the server\'s config file and restart the server (the file holds only the hash):');
  console.log(`  ${JSON.stringify(made.entry)}`);
  return 0;
}
