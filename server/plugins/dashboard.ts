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
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { asset, bundleFrontEnd, once, sendAsset, type Asset } from './web-assets.js';

export interface DashboardConfig {
  enabled: boolean;
  /** How often the page fetches the device list again. */
  refreshSeconds: number;
}

export const DASHBOARD_DEFAULTS: DashboardConfig = { enabled: true, refreshSeconds: 10 };

/** The `dashboard` section: `false`, `true`, or {"enabled": bool, "refresh_seconds": 2..3600}. */
export function checkDashboardConfig(value: unknown, where: string): DashboardConfig {
  if (typeof value === 'boolean') return { ...DASHBOARD_DEFAULTS, enabled: value };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${where} must be false (no dashboard), true, or an object such as {"enabled": true, "refresh_seconds": 10}`);
  }
  const o = value as Record<string, unknown>;
  const keys = ['enabled', 'refresh_seconds'];
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new ConfigError(`${where} has an unknown setting "${k}" (known: ${keys.join(', ')})`);
  const c = { ...DASHBOARD_DEFAULTS };
  if (o.enabled !== undefined) {
    if (typeof o.enabled !== 'boolean') throw new ConfigError(`${where}.enabled must be true or false`);
    c.enabled = o.enabled;
  }
  if (o.refresh_seconds !== undefined) {
    const r = o.refresh_seconds;
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 2 || r > 3600) {
      throw new ConfigError(`${where}.refresh_seconds must be a whole number from 2 to 3600, got ${JSON.stringify(r)}`);
    }
    c.refreshSeconds = r;
  }
  return c;
}

export const dashboardConfig = (config: ServerConfig): DashboardConfig => (config.sections.dashboard as DashboardConfig | undefined) ?? DASHBOARD_DEFAULTS;

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
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function send(request: FastifyRequest, reply: FastifyReply, a: Asset) {
  return sendAsset(request, reply, a, SECURITY_HEADERS);
}

export default fp(
  async (app) => {
    const config = dashboardConfig(app.config);
    let page: Asset | null = null;
    const load = async () => {
      const assets = await dashboardAssets();
      if (!page) {
        const html = assets.html.replace(REFRESH_PLACEHOLDER, String(config.refreshSeconds)).replace(MQTT_PLACEHOLDER, app.config.sections.mqtt !== undefined ? 'on' : 'off');
        page = asset(Buffer.from(html), 'text/html; charset=utf-8');
        app.log.info({ buildMs: assets.buildMs, bytes: assets.files.get('app.js')!.body.length }, 'dashboard ready');
      }
      return assets;
    };

    // A server that listens builds the page now, so the first visitor does not wait;
    // app.inject() tests that never ask for it never build it.
    app.addHook('onListen', async () => {
      load().catch((e) => app.log.error({ err: e }, 'dashboard build failed; GET / will answer 500'));
    });

    app.get('/', async (request, reply) => {
      await load();
      return send(request, reply, page!);
    });

    app.get<{ Params: { file: string } }>('/dashboard/:file', async (request, reply) => {
      const a = (await load()).files.get(request.params.file);
      if (!a) return reply.code(404).send({ error: 'Not Found', message: `no dashboard file ${JSON.stringify(request.params.file.slice(0, 100))}`, statusCode: 404 });
      return send(request, reply, a);
    });
  },
  { name: 'sealpost-dashboard', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-errors', 'sealpost-devices'] },
);
