// `sealpost sim --keys DIR` on a key set that can renew (issue #17, README "Key renewal, step by
// step" step 5): after `keys init` and `keys renew`, the sim provisions format-2 devices against the
// epoch-0 ingest key as the factory would, and over HTTP a real server with the renewal config moves
// them to epoch 1 (GET /v1/fleet). A key set without a renewal key gives format 1 and says so; a
// broken key set (unreadable renewal key, two unannounced ingest keys, a foreign ANNOUNCE) is refused
// with what to do.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importManifest, makeConfig, startServer, NO_RATE_LIMIT, type RunningServer } from '../../server/index.js';
import { decodeDeviceFile, encodeKeyFile, makeAnnounce, newIngestKey, newRenewalKey, parseKeyFile } from '../../protocol/index.js';
import { loadOrCreateKeys, makeSimFleet } from '../../sim/fleet.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { boardProfile } from '../../boards/index.js';
import { DEVICE_FILE_NAME } from '../../protocol/wire/names.js';
import { readToken } from '../helpers/server.js';
import { sealpost } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'sealpost-sim-renewal-'));
let server: RunningServer | undefined;

afterAll(async () => {
  delete process.env.SEALPOST_TOKEN;
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const keyFiles = (keys: string, re: RegExp) => readdirSync(keys).filter((n) => re.test(n)).map((n) => join(keys, n));

describe('sealpost sim on a key set after keys renew', () => {
  it('provisions format-2 devices on the epoch-0 key and the server moves them to epoch 1', async () => {
    const keys = join(dir, 'keys');
    expect((await sealpost('keys', 'init', '--dir', keys)).code).toBe(0);
    const factoryIngest = keyFiles(keys, /^ingest-.*\.key$/)[0]!;
    const renew = await sealpost('keys', 'renew', '--keys', keys);
    expect(renew.code, renew.err).toBe(0);
    const ingestKeys = keyFiles(keys, /^ingest-.*\.key$/);
    expect(ingestKeys).toHaveLength(2);
    server = await startServer(
      makeConfig({
        db: join(dir, 'sealpost.db'),
        listen: { host: '127.0.0.1', port: 0 },
        ingestKeys,
        logLevel: 'silent',
        rateLimit: NO_RATE_LIMIT,
        renewal: { publicKey: keyFiles(keys, /^renewal-.*\.pub$/)[0]!, announce: [keys], graceMs: 7 * 86_400_000 },
      }),
      { logger: false },
    );
    const storage = server.app.storage;
    const token = (await readToken(storage)).token;
    process.env.SEALPOST_TOKEN = token;
    const fleet = async () => (await fetch(`${server!.url}/v1/fleet`, { headers: { authorization: `Bearer ${token}` } })).json();
    const manifestPath = join(dir, 'sim-batch.json');
    // The operator's `registry import`, done as soon as the sim has written its manifest.
    let before: unknown;
    const importer = (async () => {
      while (!existsSync(manifestPath)) await new Promise((r) => setTimeout(r, 50));
      const text = readFileSync(manifestPath, 'utf8');
      const factoryPub = parseKeyFile(readFileSync(keyFiles(keys, /^factory-.*\.pub$/)[0]!, 'utf8'), 'factory-public');
      const factoryIngestId = parseKeyFile(readFileSync(factoryIngest, 'utf8'), 'ingest-private').id;
      await importManifest(storage, text, { trusted: [factoryPub], ingestKeyIds: [factoryIngestId] });
      before = await fleet();
    })();
    const sim = await sealpost('sim', '--devices', '3', '--duration', '40s', '--speed', '20', '--server', server.url, '--keys', keys, '--manifest-out', manifestPath, '--wait', '20s', '--drain', '10s', '--status-every', '1h');
    await importer;
    expect(sim.err).toBe('');
    expect(sim.code).toBe(0);
    expect(sim.out).toMatch(/device files format 2: the devices can renew \(fleet [0-9a-f]{8}, renewal key rk-[0-9a-f]{16}\), sealed under the epoch-0 ingest key ik-[0-9a-f]{16}; epochs 1 \(ik-[0-9a-f]{16}\) announced/);
    const manifest = JSON.parse(JSON.parse(readFileSync(manifestPath, 'utf8')).body);
    expect(manifest.fleet_id).toMatch(/^[0-9a-f]{8}$/);
    // Imported, the devices were on the factory's epoch; after the run, on epoch 1.
    expect(before).toEqual({ latest_epoch: 1, epochs: [{ epoch: 0, devices: 3 }], pending: 0, frozen: 0 });
    expect(await fleet()).toEqual({ latest_epoch: 1, epochs: [{ epoch: 1, devices: 3 }], pending: 0, frozen: 0 });
    await server.close();
    server = undefined;
  }, 120_000);
});

describe('sealpost sim key sets', () => {
  it('provisions format 1 for a key set without a renewal key, and says the devices cannot renew', () => {
    const keys = join(dir, 'plain');
    const k = loadOrCreateKeys(keys);
    expect(k.created).toBeDefined();
    expect(k.renewalPublic).toBeUndefined();
    const f = makeSimFleet({ count: 1, ingestPublic: k.ingestPublic, factoryPrivate: k.factoryPrivate, clock: new VirtualClock(), profile: boardProfile('sim'), batch: 'B', prefix: 'S-', seed: 1 });
    expect(JSON.parse(JSON.parse(f.manifest).body).fleet_id).toBeUndefined();
  });

  it('writes format-2 device files naming the fleet and its renewal key', async () => {
    const keys = join(dir, 'fmt2');
    expect((await sealpost('keys', 'init', '--dir', keys)).code).toBe(0);
    const k = loadOrCreateKeys(keys);
    const f = makeSimFleet({ count: 2, ingestPublic: k.ingestPublic, factoryPrivate: k.factoryPrivate, clock: new VirtualClock(), profile: boardProfile('sim'), batch: 'B', prefix: 'S-', seed: 1, renewalPublic: k.renewalPublic! });
    const d = decodeDeviceFile(f.devices[0]!.files.get(DEVICE_FILE_NAME)!);
    expect(d.renewal?.fleetId).toEqual(k.renewalPublic!.fleetId);
    expect(d.renewal?.renewalPublicKey).toEqual(k.renewalPublic!.key);
    expect(d.renewal?.chain).not.toEqual(new Uint8Array(32));
  });

  it('refuses a broken key set, saying which file and what to do', async () => {
    const keys = join(dir, 'broken');
    expect((await sealpost('keys', 'init', '--dir', keys)).code).toBe(0);
    const pub = keyFiles(keys, /^renewal-.*\.pub$/)[0]!;
    const saved = readFileSync(pub);
    // A renewal key that cannot be read is not quietly dropped (that would give format 1).
    writeFileSync(pub, '{"kind":');
    expect(() => loadOrCreateKeys(keys)).toThrow(`${pub} is not a sealpost key file (no known "kind"); it is named as one`);
    unlinkSync(pub);
    mkdirSync(pub);
    expect(() => loadOrCreateKeys(keys)).toThrow(`${pub} cannot be read (not a regular file of at most 4096 bytes)`);
    rmSync(pub, { recursive: true });
    expect(() => loadOrCreateKeys(keys)).toThrow(/has a renewal private key .* but not its public key/);
    writeFileSync(pub, saved);
    // Two ingest public keys and no ANNOUNCE saying which is later.
    const extra = newIngestKey().publicFile;
    writeFileSync(join(keys, `ingest-${extra.id}.pub`), encodeKeyFile(extra));
    expect(() => loadOrCreateKeys(keys)).toThrow(/has 2 ingest public key files .* and no ANNOUNCE/);
    // An ANNOUNCE signed by another fleet's renewal key.
    const foreign = newRenewalKey().privateFile;
    writeFileSync(join(keys, 'announce-00000001.bin'), makeAnnounce(foreign, 1, extra.key));
    expect(() => loadOrCreateKeys(keys)).toThrow(/announce-00000001\.bin: .*must all be signed by its renewal key rk-/);
    // Through the command: exit 1 and the message, no devices.
    const r = await sealpost('sim', '--devices', '1', '--duration', '1s', '--server', 'http://127.0.0.1:9', '--keys', keys, '--wait', '0');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/announce-00000001\.bin/);
  });
});
