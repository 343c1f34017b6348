// `sealpost demo`: the whole path on one machine, from nothing but the repo.
// It makes fleet keys, provisions simulated devices as the factory does,
// starts the ingest server on SQLite in a local folder, imports the signed
// manifest into its registry, and runs the fleet (the real firmware on the
// sim HAL) through the simulated relay until Ctrl-C, printing a status line
// and, at the end, a summary. The dashboard is at the printed URL meanwhile.
// Every run adds a new batch of devices (a device's counters live in its
// simulated flash, which ends with the run; new devices never reuse a key).
import { mkdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { boardProfile } from '../boards/index.js';
import { parseKeyFile } from '../protocol/index.js';
import { numberOption, parseFlags, stringOption } from './args.js';
import { loadOrCreateKeys } from '../sim/fleet.js';
import { formatSummary, runSimFleet } from '../sim/run.js';
import { importManifest, makeConfig, startServer, type RunningServer } from '../server/index.js';
import { createToken } from '../server/auth/tokens.js';

export async function runDemo(args: string[]): Promise<number> {
  const { values } = parseFlags(
    args,
    { dir: { type: 'string' }, devices: { type: 'string' }, port: { type: 'string' }, speed: { type: 'string' }, duration: { type: 'string' }, seed: { type: 'string' } },
    0,
  );
  const dir = resolve(stringOption(values, 'dir') ?? '.sealpost-demo');
  const devices = numberOption(values, 'devices', { min: 1, max: 200, whole: true }, 6);
  const port = numberOption(values, 'port', { min: 0, max: 65535, whole: true }, 8080);
  const speed = numberOption(values, 'speed', { min: 1, max: 100, whole: true }, 1);
  const given = numberOption(values, 'duration', { min: 1, max: 86400, whole: true, unit: 'seconds' }, 0);
  const duration = given === 0 ? undefined : given;
  const seed = numberOption(values, 'seed', { min: 0, max: 2 ** 31 - 1, whole: true }, Date.now() % 1_000_000);
  const show = (p: string) => (relative(process.cwd(), p).startsWith('..') ? p : relative(process.cwd(), p) || '.');

  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = loadOrCreateKeys(join(dir, 'keys'));
  if (!keys.ingestPrivatePath || !keys.factoryPublicPath) {
    throw new Error(`${show(keys.dir)} lacks the ingest private key or the factory public key the demo server needs; use an empty --dir`);
  }
  const config = makeConfig({
    db: join(dir, 'sealpost.db'),
    listen: { host: '127.0.0.1', port },
    ingestKeys: [keys.ingestPrivatePath],
    trust: [keys.factoryPublicPath],
    logLevel: 'warn',
  });
  let server: RunningServer;
  try {
    server = await startServer(config, { logger: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new Error(`port ${port} is in use: run sealpost demo --port ${port + 1} (or --port 0 for any free port)`);
    throw e;
  }
  const base = server.url.replace(/\/+$/, '');
  // Reads need a token (docs/api.md, "Authentication"). Only its hash is kept, so a
  // second run cannot show the first run's token: it replaces it with a new one.
  const storage = server.app.storage;
  const replaced = await storage.deleteToken('demo');
  const { token } = await createToken(storage, 'demo', 'read');
  const auth = { authorization: `Bearer ${token}` };
  console.log(`sealpost demo in ${show(dir)}: SQLite database ${show(config.db)}, keys in ${show(keys.dir)}`);
  console.log(`ingest server on ${base}`);
  // The token rides in the URL fragment, which the browser never sends: the server never sees or logs it.
  console.log(`dashboard:  ${base}/#token=${token}`);
  console.log(`read token "demo"${replaced ? ' (replaces the previous run\'s)' : ''}: ${token}  (for the API: Authorization: Bearer ...)`);
  console.log(`relay page: ${base}/relay (Web Bluetooth, for real devices)`);
  console.log(`${devices} simulated devices at ${speed}x real time; Ctrl-C to stop${duration ? ` (or after ${duration} s)` : ''}`);
  console.log('');

  const abort = new AbortController();
  const stop = () => {
    if (!abort.signal.aborted) console.log('\nstopping; frames the relay still holds stay in its queue file and go up on the next run');
    abort.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const trusted = [parseKeyFile(readFileSync(keys.factoryPublicPath, 'utf8'), 'factory-public', keys.factoryPublicPath)];
  try {
    const summary = await runSimFleet({
      server: base,
      devices,
      durationMs: duration ? duration * 1000 * speed : Number.MAX_SAFE_INTEGER,
      keysDir: keys.dir,
      profile: boardProfile('sim'),
      speed,
      seed,
      queueFile: join(dir, 'relay-queue.journal'),
      chaos: { meanLinkMs: 120_000, failureRate: 0 },
      statusEveryMs: 5000,
      waitImportMs: 10_000,
      drainMs: 30_000,
      signal: abort.signal,
      print: (line) => console.log(line),
      token,
      onManifest: async (path, text) => {
        // The server's keyring: the demo holds the private key, so import wraps the device keys at once.
        const outcome = await importManifest(server.app.storage, text, { trusted, ingestKeyIds: [keys.ingestPublic.id], keyring: server.app.keyring });
        console.log(`registry: imported batch ${outcome.batch} (${show(path)}) into the server`);
      },
    });
    console.log('');
    console.log(formatSummary(summary));
    // Every item of a paged list (docs/api.md, "Paging").
    const all = async <T>(path: string, key: string): Promise<T[]> => {
      const items: T[] = [];
      let cursor: string | null = null;
      do {
        const page = (await (await fetch(`${base}${path}?limit=10000${cursor ? `&cursor=${cursor}` : ''}`, { headers: auth })).json()) as Record<string, unknown>;
        items.push(...(page[key] as T[]));
        cursor = page.next_cursor as string | null;
      } while (cursor !== null);
      return items;
    };
    const list = { devices: await all<{ serial: string; frames: number; gaps: number; lost: number }>('/v1/devices', 'devices') };
    const ours = list.devices.filter((d) => summary.devices.some((s) => s.serial === d.serial));
    let readings = 0;
    for (const d of ours) readings += (await all(`/v1/devices/${encodeURIComponent(d.serial)}/readings`, 'readings')).length;
    const frames = ours.reduce((n, d) => n + d.frames, 0);
    const gaps = ours.reduce((n, d) => n + d.gaps, 0);
    const lost = ours.reduce((n, d) => n + d.lost, 0);
    console.log('');
    console.log(`summary: ${ours.length} devices, ${frames} frames stored, ${readings} readings, ${gaps} gaps (${lost} frames lost), ${list.devices.length} devices in the registry`);
    console.log(
      `dashboard: ${base}/#token=${token}  (the database stays in ${show(config.db)}; sealpost server --db ${show(config.db)} --ingest-key ${show(keys.ingestPrivatePath)} serves it again, and the token "demo" still signs in)`,
    );
    return summary.rejected === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await server.close();
  }
}
