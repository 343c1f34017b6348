// Operating the server: the registry and server commands, configuration
// checked at boot, key file permissions, HTTPS, logs without key material,
// and the 5xx handler that hides internals. SQLite only (the storage suite
// runs on both backends in server-ingest.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { request } from 'node:https';
import { join } from 'node:path';
import { ANCHOR_BOOT, encodeKeyFile, newIngestKey } from '../../protocol/index.js';
import { ConfigError, NO_RATE_LIMIT, SqliteStorage, buildServer, checkConfig, loadConfig, makeConfig, openStorage, startServer, type Storage } from '../../server/index.js';
import { createToken } from '../../server/auth/tokens.js';
import { SealingDevice, b64, body, logCapture, makeFleet, manifestFor, testServer, type Fleet } from '../helpers/server.js';
import { sealpost } from '../helpers/cli.js';
import { writeConfig, writeFleetFiles, type FleetFiles } from '../helpers/server-files.js';

describe('sealpost registry and server commands', () => {
  let fleet: Fleet;
  let files: FleetFiles;

  beforeAll(() => {
    fleet = makeFleet(3);
    files = writeFleetFiles(fleet);
  });
  afterAll(() => rmSync(files.dir, { recursive: true, force: true }));

  it('imports a signed manifest once, says so on re-import, refuses a tampered one, lists and revokes', async () => {
    const flags = ['--db', files.db, '--trust', files.factoryPub, '--ingest-key', files.ingestPub];
    const first = await sealpost('registry', 'import', files.manifest, ...flags);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toBe(
      `imported batch B-0001: 3 devices registered (board puckjs, frame size 20, ingest key ${fleet.ingest.publicFile.id}, signed by ${fleet.factory.publicFile.id})\n` +
        `3 of them are stored without wrapped keys: this machine holds only the public key of ${fleet.ingest.publicFile.id}. ` +
        "The server derives and wraps them when it next starts (or, at the latest, on each device's first frame); " +
        'to do it now, import with --ingest-key naming the private key file.',
    );
    const again = await sealpost('registry', 'import', files.manifest, ...flags);
    expect(again.out).toBe('batch B-0001 was already imported from this manifest: nothing changed');

    const doc = JSON.parse(fleet.manifest);
    const tamperedFile = join(files.dir, 'tampered.json');
    writeFileSync(tamperedFile, JSON.stringify({ ...doc, body: doc.body.replace('"frame_size":20', '"frame_size":50') }));
    const tampered = await sealpost('registry', 'import', tamperedFile, ...flags);
    expect(tampered.code).toBe(1);
    expect(tampered.err).toMatch(/^sealpost registry: manifest refused, nothing changed: manifest signature does not verify with factory key fk-/);

    const noTrust = await sealpost('registry', 'import', files.manifest, '--db', files.db, '--ingest-key', files.ingestPub);
    expect(noTrust.err).toContain('no trusted factory key');
    const noDb = await sealpost('registry', 'list');
    expect(noDb.err).toContain('say which database: --config FILE');
    const missing = await sealpost('registry', 'list', '--db', join(files.dir, 'nope.db'));
    expect(missing.err).toContain('does not exist');

    const list = await sealpost('registry', 'list', '--db', files.db);
    const lines = list.out.split('\n');
    expect(lines[0]).toMatch(/^serial\s+board\s+batch\s+status\s+frames\s+last seen\s+epoch$/);
    expect(lines[1]).toMatch(/^SP-T00001\s+puckjs\s+B-0001\s+active\s+0\s+never\s+0$/);
    expect(lines.length).toBe(4);

    const config = writeConfig(files.dir, { db: 'sealpost.db', trust: [files.factoryPub], ingest_keys: [files.ingestKey] });
    const revoke = await sealpost('registry', 'revoke', 'SP-T00002', '--config', config);
    expect(revoke.out).toBe('revoked SP-T00002: its frames are rejected from now on');
    expect((await sealpost('registry', 'revoke', 'SP-T00002', '--config', config)).out).toBe('SP-T00002 was already revoked: nothing changed');
    expect((await sealpost('registry', 'revoke', 'SP-NOPE', '--config', config)).err).toBe('sealpost registry: no device with serial SP-NOPE is registered (sealpost registry list shows the serials)');
    expect((await sealpost('registry', 'list', '--config', config)).out).toMatch(/SP-T00002\s+puckjs\s+B-0001\s+revoked/);
    expect((await sealpost('registry', 'frobnicate', '--config', config)).err).toContain('usage: sealpost registry import MANIFEST');
  });

  it('refuses to start with a private key file others can read, saying chmod 600', async () => {
    const loose = join(files.dir, 'loose.key');
    writeFileSync(loose, encodeKeyFile(newIngestKey().privateFile));
    chmodSync(loose, 0o644);
    const r = await sealpost('server', '--db', join(files.dir, 'x.db'), '--ingest-key', loose, '--listen', '127.0.0.1:0');
    expect(r.code).toBe(1);
    expect(r.err).toBe(`sealpost server: private key file ${loose} is accessible to group or others (mode 0644); restrict it with: chmod 600 ${loose}`);
    chmodSync(loose, 0o640);
    await expect(startServer(loadConfig({ db: join(files.dir, 'x.db'), ingestKey: [loose] }))).rejects.toThrow('chmod 600');
    expect(existsSync(join(files.dir, 'x.db'))).toBe(false);
  });

  it('checks the configuration at boot with messages that name the setting', async () => {
    const bad = (raw: unknown) => () => checkConfig(raw, files.dir, 'sealpost.json');
    expect(bad({ lisen: '1' })).toThrow(/^sealpost.json has an unknown setting "lisen" \(known: db, listen, /);
    expect(bad({ listen: 'localhost' })).toThrow('sealpost.json: listen must be HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got "localhost"');
    expect(bad({ listen: '[::1]:99999' })).toThrow('port must be 0..65535');
    expect(bad({ limits: { frames_per_device: 0 } })).toThrow('sealpost.json: limits.frames_per_device must be a whole number from 1 to 100000, got 0');
    expect(bad({ rate_limit: { address: { frames: { per_second: 10, burst: 100 } } } })).toThrow(
      'sealpost.json: rate_limit.address.frames.burst (100) must be at least limits.frames_per_request (5000), or a full request could never pass',
    );
    expect(bad({ ingest_keys: 'k.key' })).toThrow('sealpost.json: ingest_keys must be a list of file paths');
    expect(bad({ log_level: 'loud' })).toThrow('log_level must be one of fatal, error, warn, info, debug, trace, silent');
    const c = checkConfig({ db: 'data/sp.db', listen: '[::1]:8443', ingest_keys: ['k.key'], rate_limit: false }, '/etc/sealpost');
    expect(c).toMatchObject({ db: '/etc/sealpost/data/sp.db', listen: { host: '::1', port: 8443 }, ingestKeys: ['/etc/sealpost/k.key'], rateLimit: NO_RATE_LIMIT });
    expect(() => loadConfig({ tlsCert: 'c.pem' })).toThrow('--tls-cert and --tls-key go together');
    await expect(buildServer({ config: makeConfig({ db: join(files.dir, 'y.db') }), ingestKeys: [], logger: false })).rejects.toThrow(ConfigError);
    const noKey = await sealpost('server', '--db', join(files.dir, 'y.db'), '--listen', '127.0.0.1:0');
    expect(noKey.err).toContain('no ingest key: give --ingest-key FILE');
    const missingKey = await sealpost('server', '--db', join(files.dir, 'y.db'), '--ingest-key', join(files.dir, 'none.key'));
    expect(missingKey.err).toBe(`sealpost server: cannot read key file ${join(files.dir, 'none.key')}: ENOENT`);
    const noDir = await sealpost('server', '--db', '/nonexistent/dir/x.db', '--ingest-key', files.ingestKey, '--log-level', 'silent');
    expect(noDir.err).toBe('sealpost server: cannot open the database /nonexistent/dir/x.db: Cannot open database because the directory does not exist');
    const noPg = await sealpost('server', '--db', 'postgres://sealpost:hunter2@127.0.0.1:1/x', '--ingest-key', files.ingestKey, '--log-level', 'silent');
    expect(noPg.err).toMatch(/^sealpost server: cannot open the database postgres:\/\/sealpost:\*\*\*@127\.0\.0\.1:1\/x: /);
    expect(noPg.err).not.toContain('hunter2');
  });

  it('serves HTTPS when given a certificate and key', async () => {
    const cert = join(files.dir, 'cert.pem');
    const key = join(files.dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const config = loadConfig({ db: join(files.dir, 'tls.db'), listen: '127.0.0.1:0', ingestKey: [files.ingestKey], tlsCert: cert, tlsKey: key, logLevel: 'silent' });
    const server = await startServer(config);
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const { token } = await createToken(server.app.storage, 'tls-check', 'read');
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(`${server.url}/v1/devices`, { ca: readFileSync(cert), headers: { authorization: `Bearer ${token}` } }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      expect(JSON.parse(text)).toEqual({ next_cursor: null, devices: [] });
      await expect(fetch(server.url.replace('https:', 'http:') + '/v1/devices')).rejects.toThrow();
    } finally {
      await server.close();
    }
  });
});

describe('logs and errors', () => {
  let storage: Storage;
  let dir: string;
  beforeAll(async () => {
    dir = writeFleetFiles(makeFleet(1)).dir;
    storage = await openStorage(join(dir, 'logs.db'));
  });
  afterAll(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs a full ingest as JSON lines without any key material, and hides internals on 5xx', async () => {
    const { lines, stream } = logCapture();
    const fleet = makeFleet(2);
    const s = await testServer(storage, fleet, { logger: { level: 'trace', stream } });
    const d = new SealingDevice(fleet.devices[0]!);
    const T = s.clock.now;
    const frames = [d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 5, [{ channel: 1, value: 20 }]), d.gap(9, 2), d.sample(1, 6, [{ channel: 2, value: 80 }])];
    const bad = frames[1]!.slice();
    bad[7]! ^= 1;
    expect((await s.post(body('relay-log', T, [{ serial: d.serial, frames: [...frames, bad].map((frame) => ({ frame, rx: T })) }]))).status).toBe(200);
    expect((await s.post(body('relay-log', T, [{ serial: d.serial, frames: frames.map((frame) => ({ frame, rx: T })) }]))).status).toBe(200);
    expect((await s.post({ relay: { id: 'x', time: 1 }, devices: [{ serial: d.serial, frames: [{ data: 7, rx: 1 }] }] })).status).toBe(400);
    await s.app.inject({ url: `/v1/devices/${d.serial}/readings?format=csv`, headers: s.auth });
    await s.app.inject({ url: '/v1/devices/NOPE/gaps', headers: s.auth });
    await s.close();

    // A storage failure: the client learns nothing about it, the log has it.
    const broken = Object.create(storage) as Storage;
    broken.transaction = async () => {
      throw new Error('SQLITE_IOERR: disk I/O error in /var/lib/sealpost/secret-path.db');
    };
    const b = await testServer(broken, fleet, { logger: { level: 'trace', stream }, importFleet: false, token: false });
    const r = await b.post(body('relay-log', T, [{ serial: d.serial, frames: [{ frame: frames[0]!, rx: T }] }]));
    expect(r.status).toBe(500);
    expect(r.json).toEqual({ error: 'Internal Server Error', message: expect.stringMatching(/^internal error \(request [\w-]+\); the server log has the details$/), statusCode: 500 });
    expect(JSON.stringify(r.json)).not.toMatch(/SQLITE|secret-path/);
    await b.close();

    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.some((x) => x.msg === 'request failed' && JSON.stringify(x).includes('SQLITE_IOERR'))).toBe(true);
    expect(records.some((x) => x.msg === 'ingest keys loaded')).toBe(true);
    expect(records.some((x) => x.msg === 'uplink stored')).toBe(true);
    expect(records.length).toBeGreaterThan(20);

    const text = lines.join('\n');
    const secrets = [fleet.ingest.privateFile.key, ...fleet.devices.flatMap((x) => [x.sealKey, x.nonceSalt])];
    for (const secret of secrets) {
      const buf = Buffer.from(secret);
      for (const form of [buf.toString('hex'), buf.toString('hex').toUpperCase(), buf.toString('base64'), buf.toString('base64url'), b64(secret).slice(0, 16)]) {
        expect(text).not.toContain(form);
      }
    }
    // And not the manifest's factory key either: the server never loads it.
    expect(text).not.toContain(Buffer.from(fleet.factory.privateFile.key).toString('hex'));
  });

  it('announces committed readings on app.events for plugins', async () => {
    const fleet = makeFleet(1, { prefix: 'SP-EV', batch: 'B-EV' });
    const s = await testServer(storage, fleet);
    const seen: string[] = [];
    s.app.events.on('reading', (r) => seen.push(`${r.serial}:${r.counter}:${r.name}=${r.value}`));
    s.app.events.on('uplink', (u) => seen.push(`uplink ${u.serial} +${u.accepted} N=${u.settled}`));
    const d = new SealingDevice(fleet.devices[0]!);
    await s.post(body('r', s.clock.now, [{ serial: d.serial, frames: [d.anchor(1, 0, 0), d.sample(1, 1, [{ channel: 9, value: 1013.2 }])].map((frame) => ({ frame, rx: 1 })) }]));
    expect(seen).toEqual([`${d.serial}:2:pressure=1013.2`, `uplink ${d.serial} +2 N=2`]);
    await s.close();
  });
});

// A second batch under a second ingest key: both keys loaded at once.
describe('several ingest keys at once', () => {
  it('opens frames of batches sealed to different ingest keys', async () => {
    const a = makeFleet(1, { prefix: 'SP-A' });
    const b = makeFleet(1, { prefix: 'SP-B', batch: 'B-0002' });
    const fb = { ...b, factory: a.factory };
    fb.manifest = manifestFor(fb, b.devices, 'B-0002');
    const files = writeFleetFiles(a);
    const storage = await openStorage(join(files.dir, 'two.db'));
    try {
      const s = await testServer(storage, a);
      await s.close();
      const { importManifest } = await import('../../server/index.js');
      await importManifest(storage, fb.manifest, { trusted: [a.factory.publicFile], ingestKeyIds: [a.ingest.privateFile.id, b.ingest.privateFile.id] });
      const app = await buildServer({ config: makeConfig({ logLevel: 'silent' }), ingestKeys: [a.ingest.privateFile, b.ingest.privateFile], storage, logger: false });
      const da = new SealingDevice(a.devices[0]!);
      const db = new SealingDevice(b.devices[0]!);
      const r = await app.inject({
        method: 'POST',
        url: '/v1/uplink',
        payload: body('r', 1, [
          { serial: da.serial, frames: [{ frame: da.sample(0, 1, []), rx: 1 }] },
          { serial: db.serial, frames: [{ frame: db.sample(0, 1, []), rx: 1 }] },
        ]),
      });
      expect(r.json().devices.map((x: any) => x.accepted)).toEqual([1, 1]);
      await app.close();
      const only = await buildServer({ config: makeConfig({ logLevel: 'silent' }), ingestKeys: [a.ingest.privateFile], storage, logger: false });
      const r2 = await only.inject({ method: 'POST', url: '/v1/uplink', payload: body('r', 1, [{ serial: db.serial, frames: [{ frame: db.sample(0, 2, []), rx: 1 }] }]) });
      expect(r2.json().devices[0].rejected).toEqual([{ index: 0, reason: `ingest key ${b.ingest.privateFile.id} is not loaded on this server` }]);
      await only.close();
    } finally {
      await storage.close();
      rmSync(files.dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite group commit', () => {
  it('commits transactions of one event-loop turn together, rolling back only the one that failed', async () => {
    const fleet = makeFleet(3, { prefix: 'SP-GC' });
    const files = writeFleetFiles(fleet);
    const storage = await openStorage(files.db);
    try {
      const { importManifest } = await import('../../server/index.js');
      await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
      const [a, b, c] = fleet.devices.map((d) => d.serial);
      const p1 = storage.transaction((tx) => tx.setStatus(a!, 'revoked', 1));
      const p2 = storage.transaction(async (tx) => {
        await tx.setStatus(b!, 'revoked', 1);
        throw new Error('boom');
      });
      const p3 = storage.transaction((tx) => tx.setStatus(c!, 'revoked', 1));
      await expect(p2).rejects.toThrow('boom');
      await Promise.all([p1, p3]);
      expect((await storage.devices()).map((d) => d.status)).toEqual(['revoked', 'active', 'revoked']);
    } finally {
      await storage.close();
      rmSync(files.dir, { recursive: true, force: true });
    }
  });

  it('writes the transactions that arrive while the WAL syncs together, in one transaction and one more fsync, answering none of them before it', async () => {
    const fleet = makeFleet(6, { prefix: 'SP-WG' });
    const files = writeFleetFiles(fleet);
    const storage = (await openStorage(files.db)) as SqliteStorage;
    try {
      const { importManifest } = await import('../../server/index.js');
      await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
      const held: (() => void)[] = [];
      const sync = storage.walSync as unknown as { sync: () => Promise<void> };
      sync.sync = () => new Promise<void>((resolve) => held.push(resolve));
      const stats = { ...storage.walSync!.stats };
      const [first, ...rest] = fleet.devices.map((d) => d.serial);
      const done: string[] = [];
      const revoke = (serial: string) => storage.transaction((tx) => tx.setStatus(serial, 'revoked', 1)).then(() => done.push(serial));
      const p1 = revoke(first!);
      while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
      // These arrive in different turns of the event loop while the first commit's fsync runs.
      const others: Promise<number>[] = [];
      for (const serial of rest) {
        others.push(revoke(serial));
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(done).toEqual([]);
      held[0]!();
      await p1;
      while (held.length === 1) await new Promise((r) => setTimeout(r, 5));
      expect(done).toEqual([first]);
      // All five were committed in one group, waiting for the second fsync.
      expect((await storage.devices()).filter((d) => d.status === 'revoked').length).toBe(6);
      expect(storage.walSync!.stats.waits - stats.waits).toBe(2);
      held[1]!();
      await Promise.all(others);
      expect(done.slice(1).sort()).toEqual([...rest].sort());
      expect(storage.walSync!.stats.syncs - stats.syncs).toBe(2);
    } finally {
      await storage.close();
      rmSync(files.dir, { recursive: true, force: true });
    }
  });

  it('acks an upload only after the fsync of the WAL that followed its COMMIT; a failed fsync answers 500 with no ack, then and after', async () => {
    const fleet = makeFleet(2, { prefix: 'SP-WS' });
    const files = writeFleetFiles(fleet);
    const storage = (await openStorage(files.db)) as SqliteStorage;
    const s = await testServer(storage, fleet);
    try {
      expect(storage.walSync).not.toBeNull();
      const held: { resolve: () => void; reject: (e: Error) => void }[] = [];
      const sync = storage.walSync as unknown as { sync: () => Promise<void> };
      const real = sync.sync;
      sync.sync = () => new Promise<void>((resolve, reject) => held.push({ resolve, reject }));
      const d = new SealingDevice(fleet.devices[0]!);
      const now = s.clock.now;
      const upload = (frames: Uint8Array[]) => s.post(body('relay-w', now, [{ serial: d.serial, frames: frames.map((frame) => ({ frame, rx: now })) }]));

      let answered = false;
      const first = upload([d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 5, [{ channel: 1, value: 20 }])]).then((r) => ((answered = true), r));
      while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
      // Committed (another reader sees it), but not yet on disk: no answer, so no ack.
      expect(await storage.devices(d.serial)).toMatchObject([{ frames: 2, settled: 2 }]);
      await new Promise((r) => setTimeout(r, 50));
      expect(answered).toBe(false);
      held[0]!.resolve();
      const r = await first;
      expect(r.status).toBe(200);
      expect(r.json.devices[0]).toMatchObject({ accepted: 2 });
      expect(r.json.devices[0].ack).not.toBeNull();

      // The disk fails: this upload and every later one get a 500 and no ack.
      const failing = upload([d.sample(1, 10, [{ channel: 1, value: 21 }])]);
      while (held.length === 1) await new Promise((r) => setTimeout(r, 5));
      held[1]!.reject(new Error('could not sync sealpost.db-wal to disk (EIO)'));
      const f = await failing;
      expect(f.status).toBe(500);
      expect(JSON.stringify(f.json)).not.toContain('ack');
      sync.sync = real;
      const later = await upload([d.sample(1, 15, [{ channel: 1, value: 22 }])]);
      expect(later.status).toBe(500);
    } finally {
      await s.close();
      await storage.close();
      rmSync(files.dir, { recursive: true, force: true });
    }
  });
});
