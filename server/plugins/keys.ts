// sealpost-keys: the ingest private keys (already loaded and permission-
// checked by the caller, see server/start.ts), the device key cache, and
// which AES route the request path runs (logged once).
// Before the server listens, every registry row of a held ingest key that
// has no wrapped keys yet gets them (wrapRegistryAtStart, called by
// buildServer once every plugin is ready: it can take minutes for a large
// old registry, longer than fastify's plugin timeout allows a plugin to
// boot; docs/server.md, "Wrapped device keys"), so the request path never
// needs a public-key operation. Only key ids and counts are ever logged.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { KeyFile } from '../../protocol/index.js';
import { ConfigError } from '../errors.js';
import { deviceAes } from '../ingest/aes.js';
import { Keyring, wrapPendingDevices } from '../keys.js';
import { loadAnnouncements, Renewal } from '../renewal.js';

export interface KeysOptions {
  ingestKeys: KeyFile[];
}

export default fp<KeysOptions>(
  async (app, opts) => {
    if (opts.ingestKeys.length === 0) {
      throw new ConfigError('no ingest key: give --ingest-key FILE (or "ingest_keys" in the config file) with the fleet\'s ingest private key');
    }
    const keyring = new Keyring(opts.ingestKeys, app.config.keyCache);
    app.decorate('keyring', keyring);
    app.log.info({ ingestKeys: keyring.keyIds }, 'ingest keys loaded');
    // Key renewal (docs/server.md, "Key renewal"): epochs from the signed ANNOUNCE files.
    let renewal: Renewal | null = null;
    const rc = app.config.renewal;
    if (rc) {
      const loaded = loadAnnouncements(rc.publicKey, rc.announce);
      renewal = new Renewal(app.storage, keyring, loaded.announced, rc.graceMs, app.log.child({ part: 'renewal' }));
      app.log.info({ renewalKey: loaded.renewalKeyId, epochs: loaded.announced.map((a) => `${a.epoch}:${a.ingestKeyId}`), latest: renewal.latest, graceDays: rc.graceMs / 86_400_000 }, 'key renewal on');
    }
    app.decorate('renewal', renewal);
    // The AES under every device's CCM (server/ingest/aes.ts): the addon, or node:crypto without it.
    const { aes, fallback } = deviceAes();
    if (fallback === undefined) app.log.info({ aes: aes.route }, 'device AES: the native addon');
    else app.log.warn({ aes: aes.route, reason: fallback }, 'device AES: node:crypto, correct but slower for requests naming many devices (docs/server.md, "Junk uplinks")');
  },
  { name: 'sealpost-keys', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-storage'] },
);

/**
 * Loads the registry's key rows into the node's key directory (after wrapping:
 * only wrapped rows are held), so a request naming many serials reads none
 * from the database (docs/server.md, "Junk uplinks", sixth pass). Never throws:
 * rows not held are read on demand.
 */
export async function loadKeyDirectoryAtStart(app: FastifyInstance): Promise<void> {
  if (!app.storage.loadKeyDirectory) return;
  const started = performance.now();
  try {
    const rows = await app.storage.loadKeyDirectory();
    if (rows > 0) app.log.info({ rows, ms: Math.round(performance.now() - started) }, 'key directory loaded');
  } catch (e) {
    app.log.error({ err: e }, 'loading the key directory failed; key rows are read from the database on demand');
  }
}

/** Wraps the keys of registry rows that have none; logs counts. Never throws. */
export async function wrapRegistryAtStart(app: FastifyInstance): Promise<void> {
  const started = performance.now();
  try {
    const { wrapped, failed } = await wrapPendingDevices(app.storage, app.keyring);
    if (wrapped > 0) app.log.info({ wrapped, ms: Math.round(performance.now() - started) }, 'device keys derived and wrapped for registry rows that had none');
    if (failed.length > 0) {
      app.log.error({ count: failed.length, serials: failed.slice(0, 10) }, 'device keys cannot be derived from these registry rows (bad enc); their frames are rejected');
    }
  } catch (e) {
    // Not fatal: a row still unwrapped is derived once, on its first frame, and stored then.
    app.log.error({ err: e }, 'wrapping device keys at start failed; rows without wrapped keys are derived on their first frame instead');
  }
}
