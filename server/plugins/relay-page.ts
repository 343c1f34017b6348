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
import { asset, bundleFrontEnd, once, pageHeaders, servePage, type Asset } from './web-assets.js';

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
const HEADERS = pageHeaders(
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
);

export default fp(
  async (app) => {
    servePage(app, { what: 'relay page', path: '/relay', filesPath: '/relay', headers: HEADERS, load: relayPageAssets });

    // The page's URLs are relative to /relay; /relay/ would resolve them one level too deep.
    app.get('/relay/', async (_request, reply) => reply.redirect('../relay', 301));
  },
  { name: 'sealpost-relay-page', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors'] },
);
