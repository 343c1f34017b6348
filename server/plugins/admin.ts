// sealpost-admin: fleet management over HTTP for admin tokens
// (docs/api.md). The CLI (`sealpost registry revoke`) stays; this is the same
// call for an operator's tools.
import fp from 'fastify-plugin';
import { HttpError, RegistryError } from '../errors.js';
import { revokeDevice } from '../registry.js';
import { serialParams } from '../schemas.js';

export default fp(
  async (app) => {
    app.post<{ Params: { serial: string } }>('/v1/devices/:serial/revoke', { schema: { params: serialParams }, config: { role: 'admin' } }, async (request) => {
      const { serial } = request.params;
      try {
        const r = await revokeDevice(app.storage, serial, app.clock());
        request.log.info({ serial, tokenName: request.auth!.name, outcome: r }, 'device revoked over HTTP');
        return { serial, status: 'revoked', changed: r === 'revoked' };
      } catch (e) {
        if (e instanceof RegistryError) throw new HttpError(404, e.message);
        throw e;
      }
    });
  },
  { name: 'sealpost-admin', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors', 'sealpost-storage', 'sealpost-auth'] },
);
