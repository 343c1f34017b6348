// `sealpost sim` end to end against a real server (the operator's path: keys,
// signed manifest, registry import while the fleet waits, a run, a summary),
// its argument checks, and the browser rule for the relay core (relay/index.ts).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { boardProfile, withDevice } from '../../boards/index.js';
import { parseKeyFile } from '../../protocol/index.js';
import { loadOrCreateKeys } from '../../sim/fleet.js';
import { formatSummary, runSimFleet } from '../../sim/run.js';
import { createToken } from '../../server/auth/tokens.js';
import { sealpost } from '../helpers/cli.js';
import { IngestServer } from '../helpers/relay-server.js';
import { NO_RATE_LIMIT } from '../../server/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sealpost-relay-sim-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sealpost sim', () => {
  it('provisions a fleet, waits for the manifest import, relays everything to a real server and sums up', { timeout: 60_000 }, async () => {
    const keysDir = join(dir, 'keys');
    const keys = loadOrCreateKeys(keysDir);
    expect(keys.created).toBeDefined();
    expect(loadOrCreateKeys(keysDir).created).toBeUndefined();
    const ingestPrivate = parseKeyFile(readFileSync(keys.created!.ingestPrivate, 'utf8'), 'ingest-private');
    const factoryPublic = parseKeyFile(readFileSync(keys.created!.factoryPublic, 'utf8'), 'factory-public');
    const server = new IngestServer(
      { ingest: { privateFile: ingestPrivate, publicFile: keys.ingestPublic }, factory: { privateFile: keys.factoryPrivate, publicFile: factoryPublic } },
      mkdtempSync(join(dir, 'server-')),
    );
    await server.start({ rateLimit: NO_RATE_LIMIT });
    const { token } = await createToken(server.running.app.storage, 'sim', 'read');
    const lines: string[] = [];
    const manifestOut = join(dir, 'fleet.manifest.json');
    let imported = false;
    const summary = await runSimFleet({
      server: server.url,
      devices: 3,
      durationMs: 40_000,
      keysDir,
      manifestOut,
      profile: withDevice(boardProfile('sim'), { sensors: ['temperature', 'humidity'] }),
      speed: 40,
      seed: 5,
      chaos: { meanLinkMs: 10_000, failureRate: 0.2 },
      statusEveryMs: 200,
      waitImportMs: 20_000,
      drainMs: 300_000,
      token,
      print: (line) => {
        lines.push(line);
        if (line.startsWith('waiting for') && !imported) {
          imported = true;
          void server.import(readFileSync(manifestOut, 'utf8'));
        }
      },
    });
    await server.stop();
    const text = lines.join('\n');
    expect(text).toContain('sealpost registry import');
    expect(text).toMatch(/\[sim +\d+ s\] connected \d\/3/);
    expect(imported).toBe(true);
    expect(summary.devices).toHaveLength(3);
    expect(summary.unacknowledged).toBe(0);
    expect(summary.queued).toBe(0);
    expect(summary.rejected).toBe(0);
    for (const d of summary.devices) {
      expect(d.samples).toBeGreaterThanOrEqual(39);
      // Every frame sealed is stored or settled as a gap (no power loss here: stored).
      expect(d.server).toBeDefined();
      expect(d.server!.settled).toBe(d.sealed);
      expect(d.server!.frames).toBe(d.sealed);
    }
    const table = formatSummary(summary);
    expect(table).toContain('3 devices');
    expect(table.split('\n')[0]).toMatch(/^serial +power-ups +sealed +samples +stored +settled +gaps +lost$/);
  });

  it('without a read token, says how to get one and relays without waiting; the server stores everything', { timeout: 60_000 }, async () => {
    const keysDir = join(dir, 'keys-nt');
    const keys = loadOrCreateKeys(keysDir);
    const ingestPrivate = parseKeyFile(readFileSync(keys.created!.ingestPrivate, 'utf8'), 'ingest-private');
    const factoryPublic = parseKeyFile(readFileSync(keys.created!.factoryPublic, 'utf8'), 'factory-public');
    const server = new IngestServer(
      { ingest: { privateFile: ingestPrivate, publicFile: keys.ingestPublic }, factory: { privateFile: keys.factoryPrivate, publicFile: factoryPublic } },
      mkdtempSync(join(dir, 'server-nt-')),
    );
    await server.start({ rateLimit: NO_RATE_LIMIT });
    const lines: string[] = [];
    try {
      const summary = await runSimFleet({
        server: server.url,
        devices: 1,
        durationMs: 10_000,
        keysDir,
        profile: withDevice(boardProfile('sim'), { sensors: ['temperature'] }),
        // Slower than the test above: the relay's timeouts are simulated time, and a loaded machine stretches real time.
        speed: 10,
        seed: 7,
        chaos: { meanLinkMs: 0, failureRate: 0 },
        statusEveryMs: 0,
        waitImportMs: 20_000,
        drainMs: 300_000,
        print: (line) => lines.push(line),
        onManifest: async (_path, text) => server.import(text),
      });
      expect(lines.join('\n')).toContain('needs a read token to say whether it knows the fleet (set SEALPOST_TOKEN to one from sealpost token create --role read --name sim); relaying without waiting');
      expect(summary.rejected, JSON.stringify(summary)).toBe(0);
      expect(summary.unacknowledged, JSON.stringify(summary)).toBe(0);
      // Without a token the summary has no server columns, and says so with '?'.
      expect(summary.devices[0]!.server).toBeUndefined();
      const stored = await server.running.app.storage.frames(summary.devices[0]!.serial);
      expect(stored.length).toBe(summary.devices[0]!.sealed);
    } finally {
      await server.stop();
    }
  });

  it('refuses bad arguments with exit code 2 and says which', async () => {
    const errors: string[] = [];
    for (const args of [
      [],
      ['--server', 'not a url'],
      ['--server', 'ftp://x'],
      ['--server', 'http://x', '--devices', '0'],
      ['--server', 'http://x', '--devices', '2.5'],
      ['--server', 'http://x', '--duration', '5 minutes'],
      ['--server', 'http://x', '--speed', '-1'],
      ['--server', 'http://x', '--fail-rate', '1.5'],
      ['--server', 'http://x', '--sensors', 'temperature,smell'],
      ['--server', 'http://x', '--bogus'],
    ]) {
      const r = await sealpost('sim', ...args);
      expect(r.code).toBe(2);
      expect(r.err).toContain('usage: sealpost sim --server URL');
      errors.push(r.err);
    }
    expect(errors.join('\n')).toMatch(/--server URL is required/);
    expect(errors.join('\n')).toMatch(/--devices must be a whole number from 1 to 1000, got "2.5"/);
    expect(errors.join('\n')).toMatch(/not known: smell/);
  });

  it('refuses a key directory with a half key set, naming what is missing', () => {
    const half = join(dir, 'half');
    loadOrCreateKeys(half);
    for (const f of readdirSync(half)) if (f.startsWith('factory-') && f.endsWith('.key')) rmSync(join(half, f));
    expect(() => loadOrCreateKeys(half)).toThrow(/has no factory private key file/);
  });
});

describe('the relay core for the browser', () => {
  it('imports nothing from node: (directly or through its imports)', () => {
    const root = resolve(import.meta.dirname, '../..');
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        const spec = m[1]!;
        expect(spec.startsWith('node:') || ['fs', 'path', 'crypto', 'os', 'buffer'].includes(spec), `${file} imports ${spec}`).toBe(false);
        if (spec.startsWith('.')) {
          const ts = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
          if (existsSync(ts)) visit(ts);
        }
      }
      expect(/\bBuffer\b|\bprocess\.|\bsetImmediate\b|\brequire\(/.test(src.replace(/\/\/.*$/gm, '')), `${file} uses a Node global`).toBe(false);
    };
    visit(join(root, 'relay/index.ts'));
    expect([...seen].map((f) => f.slice(root.length + 1)).sort()).toEqual([
      'protocol/base64.ts',
      'protocol/serial.ts',
      'protocol/wire/be.ts',
      'protocol/wire/ble.ts',
      'protocol/wire/constants.ts',
      'relay/acks.ts',
      'relay/answer.ts',
      'relay/contracts.ts',
      'relay/device-info.ts',
      'relay/devices.ts',
      'relay/downlink.ts',
      'relay/index.ts',
      'relay/log.ts',
      'relay/memory-queue.ts',
      'relay/queue.ts',
      'relay/relay.ts',
      'relay/settings.ts',
      'relay/uploader.ts',
      'relay/uploads.ts',
    ]);
  });
});
