// `sealpost/relay` as an app gets it: `npm pack` (from build/, as prepack
// leaves it), unpacked into an app's node_modules/sealpost the way npm installs
// it, imported by a plain Node ESM script and by a TypeScript file type-checked
// against the packed declarations, and its compiled import graph checked for
// anything Node-only. The script relays frames sealed for a provisioned device
// through a link of its own to a real server, which stores them and acks.
//
// The package's dependencies are not installed on purpose: the relay subpath
// must need none of them (better-sqlite3 alone takes minutes to build), so a
// graph that imported one fails here as it would in a phone app's bundler.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'acorn';
import { simple } from 'acorn-walk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAck } from '../../protocol/ack.js';
import { IngestServer } from '../helpers/relay-server.js';
import { SealingDevice, makeFleet } from '../helpers/server.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const NODE_GLOBALS = new Set(['Buffer', 'process', 'require', '__dirname', '__filename', 'setImmediate', 'global']);

/**
 * What in the ESM graph from `entry` would not run in a browser or a phone
 * app: node: or bare builtin imports, any npm package, Node globals. One line per finding.
 */
function nodeOnlyUses(entry: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const ast = parse(readFileSync(file, 'utf8'), { ecmaVersion: 'latest', sourceType: 'module' });
    const specs: string[] = [];
    const from = (node: { source?: { value?: unknown } | null }) => {
      if (typeof node.source?.value === 'string') specs.push(node.source.value);
    };
    simple(ast, {
      ImportDeclaration: from,
      ExportNamedDeclaration: from,
      ExportAllDeclaration: from,
      ImportExpression: (n) => (n.source.type === 'Literal' ? specs.push(String(n.source.value)) : found.push(`${file}: import() of a computed name`)),
      Identifier: (n) => (NODE_GLOBALS.has(n.name) ? found.push(`${file}: uses ${n.name}`) : undefined),
    });
    for (const spec of specs) {
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else if (spec.startsWith('node:') || builtinModules.includes(spec)) found.push(`${file}: imports ${spec} (a Node built-in)`);
      else found.push(`${file}: imports ${spec} (an npm package)`);
    }
  };
  visit(entry);
  return [...new Set(found)];
}

// The app: plain ESM, only the package. It reads the server, the device's info and its sealed frames from stdin.
const APP = `
import { Relay, MemoryQueueStore, fetchUploader, SERVICE_UUID } from 'sealpost/relay';
const input = JSON.parse(await new Promise((ok) => { let s = ''; process.stdin.on('data', (d) => (s += d)); process.stdin.on('end', () => ok(s)); }));
const acks = [];
let connected = true;
let deliver;
const link = {
  info: () => input.info,
  onFrame: (cb) => { deliver = cb; },
  write: (writes) => { for (const w of writes) acks.push(Buffer.from(w).toString('base64')); },
  disconnect: () => { connected = false; },
  connected: () => connected,
};
const relay = await Relay.open({
  relayId: 'pack-app',
  clock: { now: () => Date.now(), setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h) },
  upload: fetchUploader(input.server),
  store: new MemoryQueueStore(),
  flushDelayMs: 50,
  log: () => {},
});
const serial = await relay.connect(link);
for (const f of input.frames) deliver(Uint8Array.from(Buffer.from(f, 'base64')));
const last = input.frames.length;
const end = Date.now() + 20000;
while (relay.status().devices[0].ackN < last && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
const s = relay.status();
await relay.close();
console.log(JSON.stringify({ serial, service: SERVICE_UUID, acks, queue: s.queue, accepted: s.totals.accepted, ackN: s.devices[0].ackN, lastUpload: s.lastUpload }));
`;

// The same API from TypeScript, checked against the packed .d.ts (no Node types: an app may have none).
const TYPED = `
import { Relay, MemoryQueueStore, fetchUploader, RelayError, type DeviceLink, type QueueStore, type RelayStatus } from 'sealpost/relay';
import { IdbQueueStore } from 'sealpost/relay/indexeddb';
const link: DeviceLink = { info: () => '{}', onFrame: () => {}, write: (writes: readonly Uint8Array[]) => void writes, disconnect: () => {}, connected: () => true };
export async function start(store: QueueStore = new MemoryQueueStore()): Promise<RelayStatus> {
  const relay = await Relay.open({ relayId: 'x', clock: { now: Date.now, setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as number) }, upload: fetchUploader('https://example.com'), store });
  await relay.connect(link).catch((e: unknown) => (e instanceof RelayError ? e.message : ''));
  return relay.status();
}
export const idb: Promise<QueueStore> = IdbQueueStore.open();
// @ts-expect-error the relay reads its status; it is not a function
start().then((s) => s.queue());
`;

describe('sealpost/relay from a packed package', () => {
  let dir: string;
  let app: string;
  let server: IngestServer;
  const fleet = makeFleet(1, { prefix: 'SP-PKG' });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealpost-pack-'));
    const json = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const tarball = join(dir, (JSON.parse(json) as { filename: string }[])[0]!.filename);
    app = join(dir, 'app');
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', join(app, 'node_modules')]);
    renameSync(join(app, 'node_modules/package'), join(app, 'node_modules/sealpost'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    server = new IngestServer(fleet);
    await server.start();
    await server.import(fleet.manifest);
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('relays sealed frames from a plain Node ESM app to a real server, which stores them and acks', async () => {
    const device = new SealingDevice(fleet.devices[0]!);
    const frames = [device.anchor(1, 0, 1), device.sample(1, 1, [{ channel: 1, value: 21.5 }]), device.sample(1, 2, [{ channel: 1, value: 21.75 }])];
    writeFileSync(join(app, 'relay.mjs'), APP);
    const input = JSON.stringify({
      server: server.url,
      info: JSON.stringify({ serial: device.serial, v: 1, f: 20, b: 'puckjs', fw: '0.1.0' }),
      frames: frames.map((f) => Buffer.from(f).toString('base64')),
    });
    // Not spawnSync: the server answering the app runs in this process.
    const child = spawn(process.execPath, ['relay.mjs'], { cwd: app, timeout: 30_000 });
    child.stdin.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const status = await new Promise<number | null>((ok) => child.on('close', ok));
    const run = { stdout, stderr, status };
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const out = JSON.parse(run.stdout) as { serial: string; service: string; acks: string[]; queue: number; accepted: number; ackN: number };
    expect(out).toMatchObject({ serial: device.serial, service: '7a1d0001-5ea1-4f05-9b2e-2d0c1e5a7f10', queue: 0, accepted: 3, ackN: 3 });
    // The ack the app wrote to its link is the server's, and the device would accept it.
    expect(verifyAck(fleet.devices[0]!, Buffer.from(out.acks.at(-1)!, 'base64'))).toBe(3);
    const stored = await server.running.app.storage.frames(device.serial);
    expect(stored.map((f) => [f.counter, f.relay])).toEqual([
      [1, 'pack-app'],
      [2, 'pack-app'],
      [3, 'pack-app'],
    ]);
  });

  it('is ESM only, with types an app without Node types compiles against', () => {
    const cjs = spawnSync(process.execPath, ['-e', "require('sealpost/relay')"], { cwd: app, encoding: 'utf8' });
    expect(cjs.status).not.toBe(0);
    expect(cjs.stderr).toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED|ERR_REQUIRE_ESM/);
    writeFileSync(join(app, 'typed.ts'), TYPED);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { noEmit: true, strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], types: [] }, files: ['typed.ts'] }),
    );
    const flags = ['-p', 'tsconfig.json'];
    const tsc = spawnSync(process.execPath, [TSC, ...flags], { cwd: app, encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
    // A wrong use is caught by those types, not waved through as any.
    writeFileSync(join(app, 'typed.ts'), TYPED.replace("relayId: 'x'", 'relayId: 7'));
    const bad = spawnSync(process.execPath, [TSC, ...flags], { cwd: app, encoding: 'utf8' });
    expect(bad.stdout).toMatch(/typed\.ts\(\d+,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
  });

  it('imports nothing Node-only or from npm anywhere under its exported entries', () => {
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules/sealpost/package.json'), 'utf8')) as { exports: Record<string, { import?: string; types?: string } | string> };
    const entries = Object.entries(pkg.exports).filter(([k]) => k.startsWith('./relay'));
    expect(entries.map(([k]) => k)).toEqual(['./relay', './relay/indexeddb', './relay/capacitor', './relay/react-native']);
    const files = new Set<string>();
    for (const [, target] of entries) {
      if (typeof target === 'string') throw new Error('relay exports name their import and types');
      const entry = join(app, 'node_modules/sealpost', target.import!);
      expect(nodeOnlyUses(entry)).toEqual([]);
      expect(readdirSync(dirname(join(app, 'node_modules/sealpost', target.types!)))).toContain(target.types!.split('/').at(-1));
      files.add(entry);
    }
    // The check finds what it is for: a Node built-in, a package, a Node global, reached through a relative import.
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'entry.js'), "export * from './inner.js';\n");
    writeFileSync(join(bad, 'inner.js'), "import { readFileSync } from 'node:fs';\nimport pg from 'pg';\nimport os from 'os';\nexport const x = () => [readFileSync, pg, os, Buffer.from('')];\n");
    expect(nodeOnlyUses(join(bad, 'entry.js'))).toEqual([
      `${join(bad, 'inner.js')}: uses Buffer`,
      `${join(bad, 'inner.js')}: imports node:fs (a Node built-in)`,
      `${join(bad, 'inner.js')}: imports pg (an npm package)`,
      `${join(bad, 'inner.js')}: imports os (a Node built-in)`,
    ]);
  });
});
