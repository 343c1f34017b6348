// sealpost-relay-page: the Web Bluetooth relay page at `/relay`
// (docs/relay.md, "The relay page"). Its sources are relay/web/ (TypeScript,
// CSS, HTML), bundled with the relay core by esbuild into memory the first
// time the page is asked for (or when the server starts listening), once per
// process, as the dashboard is: a clean clone serves it with no build step.
// The page talks to this server only (POST /v1/uplink, relative to the page),
// so one server both serves the relay and receives its frames.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { asset, bundleFrontEnd, once, sendAsset, type Asset } from './web-assets.js';

export interface RelayPageConfig {
  enabled: boolean;
}

export const RELAY_PAGE_DEFAULTS: RelayPageConfig = { enabled: true };

/** The `relay_page` section: `false`, `true`, or {"enabled": bool}. */
export function checkRelayPageConfig(value: unknown, where: string): RelayPageConfig {
  if (typeof value === 'boolean') return { enabled: value };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${where} must be false (no relay page), true, or an object such as {"enabled": true}`);
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'enabled') throw new ConfigError(`${where} has an unknown setting "${k}" (known: enabled)`);
  if (o.enabled !== undefined && typeof o.enabled !== 'boolean') throw new ConfigError(`${where}.enabled must be true or false`);
  return { enabled: (o.enabled as boolean | undefined) ?? true };
}

export const relayPageConfig = (config: ServerConfig): RelayPageConfig => (config.sections.relay_page as RelayPageConfig | undefined) ?? RELAY_PAGE_DEFAULTS;


export interface RelayPageAssets {
  page: Asset;
  /** app.js, style.css, icon.svg */
  files: Map<string, Asset>;
  buildMs: number;
}

const SOURCE_DIR = fileURLToPath(new URL('../../relay/web/', import.meta.url));

/** Bundles the page (once per process; a failed build is retried on the next call). */
export const relayPageAssets = once(async (): Promise<RelayPageAssets> => {
  const { files, buildMs } = await bundleFrontEnd(SOURCE_DIR, 'relay page');
  const page = asset(await readFile(`${SOURCE_DIR}index.html`), 'text/html; charset=utf-8');
  return { page, files, buildMs };
});

// The page loads its own script, style and icon and talks to this server
// only (connect-src 'self': the uploads). Web Bluetooth is not a fetch and
// needs no CSP source; it needs a secure context (HTTPS or localhost).
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function send(request: FastifyRequest, reply: FastifyReply, a: Asset) {
  return sendAsset(request, reply, a, SECURITY_HEADERS);
}

export default fp(
  async (app) => {
    let announced = false;
    const load = async () => {
      const assets = await relayPageAssets();
      if (!announced) {
        announced = true;
        app.log.info({ buildMs: assets.buildMs, bytes: assets.files.get('app.js')!.body.length }, 'relay page ready');
      }
      return assets;
    };

    // A server that listens builds the page now, so the first phone does not wait;
    // app.inject() tests that never ask for it never build it.
    app.addHook('onListen', async () => {
      load().catch((e) => app.log.error({ err: e }, 'relay page build failed; GET /relay will answer 500'));
    });

    app.get('/relay', async (request, reply) => send(request, reply, (await load()).page));

    // The page's URLs are relative to /relay; /relay/ would resolve them one level too deep.
    app.get('/relay/', async (_request, reply) => reply.redirect('../relay', 301));

    app.get<{ Params: { file: string } }>('/relay/:file', async (request, reply) => {
      const a = (await load()).files.get(request.params.file);
      if (!a) return reply.code(404).send({ error: 'Not Found', message: `no relay page file ${JSON.stringify(request.params.file.slice(0, 100))}`, statusCode: 404 });
      return send(request, reply, a);
    });
  },
  { name: 'sealpost-relay-page', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors'] },
);
