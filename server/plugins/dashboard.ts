// sealpost-dashboard: the web page at `/` (docs/server.md section 12). The
// front-end is TypeScript and CSS under server/dashboard/, bundled with uPlot
// and its stylesheet by esbuild into memory the first time the page is asked
// for (or when the server starts listening), once per process: a clean clone
// serves it with no build step, and the page needs nothing but this server.
// It reads the JSON API (GET /v1/devices, /v1/devices/:serial/readings and
// /gaps) with relative URLs, so it also works behind a proxy under a prefix.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fp from 'fastify-plugin';
import { dashboardConfig } from '../page-config.js';
import { asset, bundleFrontEnd, once, pageHeaders, servePage, type Asset } from './web-assets.js';

export interface DashboardAssets {
  /** index.html with placeholders for the refresh period and whether MQTT is on. */
  html: string;
  files: Map<string, Asset>;
  buildMs: number;
}

const SOURCE_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));
const REFRESH_PLACEHOLDER = '__SEALPOST_REFRESH_SECONDS__';
const MQTT_PLACEHOLDER = '__SEALPOST_MQTT__';

/** Bundles the front-end (once per process; a failed build is retried on the next call). */
export const dashboardAssets = once(async (): Promise<DashboardAssets> => {
  // uPlot's MIT licence asks for its notice in every copy; its source header is not a legal comment esbuild keeps.
  const uplotDir = dirname(createRequire(import.meta.url).resolve('uplot/package.json'));
  const notice = `/*! uPlot ${JSON.parse(await readFile(join(uplotDir, 'package.json'), 'utf8')).version}, bundled:\n${(await readFile(join(uplotDir, 'LICENSE'), 'utf8')).trim().replace(/\*\//g, '* /')}\n*/`;
  const { files, buildMs } = await bundleFrontEnd(SOURCE_DIR, 'dashboard', { banner: notice });
  const html = await readFile(`${SOURCE_DIR}index.html`, 'utf8');
  for (const p of [REFRESH_PLACEHOLDER, MQTT_PLACEHOLDER]) if (!html.includes(p)) throw new Error(`server/dashboard/index.html lacks ${p}`);
  return { html, files, buildMs };
});

// The page loads only its own script, style and icon and talks only to this
// server; uPlot draws on canvas and sets element styles through the CSSOM,
// which style-src does not restrict.
const HEADERS = pageHeaders(
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
);

export default fp(
  async (app) => {
    const config = dashboardConfig(app.config);
    let page: Asset | null = null;
    servePage(app, {
      what: 'dashboard',
      path: '/',
      filesPath: '/dashboard',
      headers: HEADERS,
      load: async () => {
        const assets = await dashboardAssets();
        if (!page) {
          const html = assets.html.replace(REFRESH_PLACEHOLDER, String(config.refreshSeconds)).replace(MQTT_PLACEHOLDER, app.config.sections.mqtt !== undefined ? 'on' : 'off');
          page = asset(Buffer.from(html), 'text/html; charset=utf-8');
        }
        return { ...assets, page };
      },
    });
  },
  { name: 'sealpost-dashboard', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors', 'sealpost-devices'] },
);
