// What the two pages the server serves (the dashboard at /, the relay page
// at /relay) share: their front-end (TypeScript, or in build/ its compiled
// JavaScript, and CSS) bundled by esbuild into memory once per process,
// served with an ETag and a strict CSP, so a page needs nothing but this
// server; servePage registers a page's routes.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

export function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** A promise made once per process; a failed one is made again on the next call. */
export function once<T>(make: () => Promise<T>): () => Promise<T> {
  let cached: Promise<T> | null = null;
  return () => {
    if (!cached) {
      cached = make();
      cached.catch(() => {
        cached = null;
      });
    }
    return cached;
  };
}

export interface FrontEnd {
  /** app.js, style.css and icon.svg. */
  files: Map<string, Asset>;
  buildMs: number;
}

// The page's entry: app.ts among the sources, app.js in build/ (compiled
// next to this module, with the page's other files copied beside it).
const ENTRY = import.meta.url.endsWith('.ts') ? 'app.ts' : 'app.js';

/**
 * Bundles the app entry and `style.css` of `sourceDir` (minified, IIFE) and
 * adds its `icon.svg`. `what` names the page in errors.
 */
export async function bundleFrontEnd(sourceDir: string, what: string, options: { banner?: string } = {}): Promise<FrontEnd> {
  const started = performance.now();
  // esbuild is a runtime dependency; loaded only when a page is wanted.
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: sourceDir,
    entryPoints: { app: ENTRY, style: 'style.css' },
    bundle: true,
    write: false,
    outdir: 'out',
    format: 'iife',
    platform: 'browser',
    minify: true,
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    legalComments: 'eof',
    logLevel: 'silent',
    charset: 'utf8',
    ...(options.banner ? { banner: { js: options.banner, css: options.banner } } : {}),
  });
  const files = new Map<string, Asset>();
  for (const f of result.outputFiles) {
    const name = f.path.slice(f.path.lastIndexOf('/') + 1);
    files.set(name, asset(Buffer.from(f.contents), name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8'));
  }
  for (const want of ['app.js', 'style.css']) if (!files.has(want)) throw new Error(`${what} build produced no ${want}`);
  files.set('icon.svg', asset(await readFile(`${sourceDir}icon.svg`), 'image/svg+xml'));
  return { files, buildMs: Math.round(performance.now() - started) };
}

/** Sends an asset with its ETag (304 when the browser has it) and the page's security headers. */
export function sendAsset(request: FastifyRequest, reply: FastifyReply, a: Asset, securityHeaders: Record<string, string>) {
  reply.headers({ ...securityHeaders, 'cache-control': 'no-cache', etag: a.etag });
  if (request.headers['if-none-match'] === a.etag) return reply.code(304).send();
  return reply.type(a.type).send(a.body);
}

/** The headers every page and its files are sent with: its CSP, no sniffing, no referrer. */
export function pageHeaders(contentSecurityPolicy: string): Record<string, string> {
  return { 'content-security-policy': contentSecurityPolicy, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };
}

export interface WebPage {
  /** Names the page in log lines and 404s, e.g. "dashboard". */
  what: string;
  /** The page's URL, e.g. "/". */
  path: string;
  /** Where its files are, e.g. "/dashboard" for /dashboard/app.js. */
  filesPath: string;
  headers: Record<string, string>;
  /** The page and its files; a bundle made once per process (see once). */
  load: () => Promise<FrontEnd & { page: Asset }>;
}

/**
 * GET `path` (the page) and GET `filesPath`/:file. A server that listens
 * builds the page at once, so the first visitor does not wait; app.inject()
 * tests that never ask for it never build it.
 */
export function servePage(app: FastifyInstance, p: WebPage): void {
  let announced = false;
  const load = async () => {
    const assets = await p.load();
    if (!announced) {
      announced = true;
      app.log.info({ buildMs: assets.buildMs, bytes: assets.files.get('app.js')!.body.length }, `${p.what} ready`);
    }
    return assets;
  };

  app.addHook('onListen', async () => {
    load().catch((e) => app.log.error({ err: e }, `${p.what} build failed; GET ${p.path} will answer 500`));
  });

  app.get(p.path, async (request, reply) => sendAsset(request, reply, (await load()).page, p.headers));

  app.get<{ Params: { file: string } }>(`${p.filesPath}/:file`, async (request, reply) => {
    const a = (await load()).files.get(request.params.file);
    if (!a) return reply.code(404).send({ error: 'Not Found', message: `no ${p.what} file ${JSON.stringify(request.params.file.slice(0, 100))}`, statusCode: 404 });
    return sendAsset(request, reply, a, p.headers);
  });
}
