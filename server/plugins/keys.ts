// sealpost-keys: the ingest private keys (already loaded and permission-
// checked by the caller, see server/start.ts) and the device key cache.
// Only key ids are ever logged.
import fp from 'fastify-plugin';
import type { KeyFile } from '../../protocol/index.js';
import { ConfigError, Keyring } from '../keys.js';

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
  },
  { name: 'sealpost-keys', fastify: '5.x', dependencies: ['sealpost-context'] },
);
