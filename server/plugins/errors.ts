// sealpost-errors: the one error handler. Client errors (4xx) say what was
// wrong; server errors (5xx) say only that something failed and which request
// to look for in the log, never the error itself (it may name tables, files or
// values). The exception is an error marked `expose` (ReadsUnavailableError:
// the read worker restarting, the read queue full), whose message was written
// for the client and says when to retry. Every error body is
// {"error", "message", "statusCode"}.
import { STATUS_CODES } from 'node:http';
import fp from 'fastify-plugin';
import type { FastifyError } from 'fastify';
import { HttpError } from '../errors.js';

export default fp(
  async (app) => {
    app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
      let status = typeof error.statusCode === 'number' ? error.statusCode : 500;
      if (status < 400 || status > 599) status = 500;
      const exposed = (error as { expose?: unknown }).expose === true;
      if (status >= 500 && exposed) {
        request.log.warn({ statusCode: status, reason: error.message }, 'request refused');
        for (const [k, v] of Object.entries((error as { headers?: Record<string, string> }).headers ?? {})) reply.header(k, v);
        return reply.code(status).send({ error: STATUS_CODES[status] ?? 'Service Unavailable', message: error.message, statusCode: status });
      }
      if (status >= 500) {
        request.log.error({ err: error }, 'request failed');
        return reply.code(status).send({
          error: STATUS_CODES[status] ?? 'Internal Server Error',
          message: `internal error (request ${request.id}); the server log has the details`,
          statusCode: status,
        });
      }
      if (error instanceof HttpError) for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
      request.log.info({ statusCode: status, reason: error.message }, 'request refused');
      return reply.code(status).send({ error: STATUS_CODES[status] ?? 'Error', message: error.message, statusCode: status });
    });
    app.setNotFoundHandler((request, reply) =>
      reply.code(404).send({ error: 'Not Found', message: `no route for ${request.method} ${request.url.slice(0, 200)}`, statusCode: 404 }),
    );
  },
  { name: 'sealpost-errors', fastify: '5.x' },
);
