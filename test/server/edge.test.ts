// The server's edge (issue #10, items 1 (relay keys), 5, 6, 7): rate limits
// per source address and per relay key in requests and frames, trust_proxy,
// relay keys, response headers (HTTP and HTTPS), allowed_hosts, database file
// modes, and connection limits over real sockets from several 127.0.0.x
// source addresses. SQLite only: nothing here depends on the backend except
// file modes, which only SQLite has.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ANCHOR_BOOT } from '../../protocol/index.js';
import { boardProfile } from '../../boards/index.js';
import { fetchUploader } from '../../relay/index.js';
import { loadOrCreateKeys } from '../../sim/fleet.js';
import { runSimFleet } from '../../sim/run.js';
import {
  ConfigError,
  NO_RATE_LIMIT,
  buildServer,
  checkConfig,
  fileDescriptorLimit,
  hashRelayKey,
  importManifest,
  makeConfig,
  newRelayKey,
  openStorage,
  type ServerConfig,
  type Storage,
} from '../../server/index.js';
import { connectionCap } from '../../server/edge/connections.js';
import { addressKey } from '../../server/edge/rate-limit.js';
import { IngestServer } from '../helpers/relay-server.js';
import { SealingDevice, b64, body, logCapture, makeFleet, testServer, type Fleet } from '../helpers/server.js';
import { sealpost } from '../helpers/cli.js';
import { writeConfig, writeFleetFiles } from '../helpers/server-files.js';

const T = Date.UTC(2026, 10, 27, 12, 0, 0);

let dir: string;
let storage: Storage;
let fleet: Fleet;
let next = 0;
/** A device not used by another test (each starts at counter 1). */
const fresh = () => new SealingDevice(fleet.devices[next++]!);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealpost-edge-'));
  storage = await openStorage(join(dir, 'edge.db'));
  fleet = makeFleet(40);
  await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
});
afterAll(async () => {
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
});

const limits = (rateLimit: ServerConfig['rateLimit'], extra: Partial<ServerConfig> = {}) =>
  testServer(storage, fleet, { importFleet: false, config: { rateLimit, ...extra } });

describe('rate limits per source address and relay key, in requests and frames', () => {
  it('a new relay.id per request no longer escapes the limit: 3 of 10 pass, with Retry-After on the rest', async () => {
    const s = await limits({ ...NO_RATE_LIMIT, address: { requests: { perSecond: 1, burst: 3 }, frames: null } });
    try {
      const d = fresh();
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await s.app.inject({ method: 'POST', url: '/v1/uplink', payload: body(`phone-${i}`, T, [{ serial: d.serial, frames: [{ frame: d.sample(0, i, []), rx: T }] }]) });
        statuses.push(r.statusCode);
        if (r.statusCode === 429) {
          expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
          expect(r.json()).toEqual({
            error: 'Too Many Requests',
            message: expect.stringMatching(/^rate limit for address 127\.0\.0\.1 exceeded \(1 requests per second, bursts of 3\); retry after \d+ s$/),
            statusCode: 429,
          });
        }
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
    } finally {
      await s.close();
    }
  });

  it('counts frames, not just requests: one big request spends what many small ones would', async () => {
    const s = await limits({ ...NO_RATE_LIMIT, address: { requests: null, frames: { perSecond: 1, burst: 30 } } }, {
      limits: { bodyBytes: 1_048_576, devicesPerRequest: 100, framesPerDevice: 500, framesPerRequest: 25, pageMax: 1000 },
    });
    try {
      const d = fresh();
      const post = (n: number, ip = '10.1.0.1') =>
        s.app.inject({ method: 'POST', url: '/v1/uplink', remoteAddress: ip, payload: body('r', T, [{ serial: d.serial, frames: Array.from({ length: n }, (_, i) => ({ frame: d.sample(0, i, []), rx: T })) }]) });
      expect((await post(25)).statusCode).toBe(200);
      const over = await post(10); // 5 frames left
      expect(over.statusCode).toBe(429);
      expect(over.headers['retry-after']).toBe('5');
      expect(over.json().message).toBe('rate limit for address 10.1.0.1 exceeded (1 frames per second, bursts of 30); retry after 5 s');
      expect((await post(4)).statusCode).toBe(200); // a refused request took nothing
      expect((await post(10, '10.1.0.2')).statusCode).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('uses X-Forwarded-For only with trust_proxy: a spoofed header does not change the bucket without it, and does with it', async () => {
    const rateLimit = { ...NO_RATE_LIMIT, address: { requests: { perSecond: 1, burst: 2 }, frames: null } };
    const d = fresh();
    const send = (s: Awaited<ReturnType<typeof limits>>, xff: string, i: number) =>
      s.app.inject({
        method: 'POST',
        url: '/v1/uplink',
        remoteAddress: '10.2.0.1',
        headers: { 'x-forwarded-for': xff },
        payload: body('r', T, [{ serial: d.serial, frames: [{ frame: d.sample(0, i, []), rx: T }] }]),
      });
    const direct = await limits(rateLimit);
    try {
      const codes = [];
      for (let i = 0; i < 4; i++) codes.push((await send(direct, `203.0.113.${i + 1}`, i)).statusCode);
      expect(codes).toEqual([200, 200, 429, 429]);
      expect((await send(direct, '203.0.113.99', 9)).json().message).toContain('address 10.2.0.1 exceeded');
    } finally {
      await direct.close();
    }
    for (const trustProxy of [true, ['10.2.0.1'], ['10.0.0.0/8']] as const) {
      const proxied = await limits(rateLimit, { trustProxy: trustProxy as ServerConfig['trustProxy'] });
      try {
        const codes = [];
        for (let i = 0; i < 4; i++) codes.push((await send(proxied, `203.0.113.${i + 1}`, 10 + i)).statusCode);
        expect(codes, JSON.stringify(trustProxy)).toEqual([200, 200, 200, 200]);
        await send(proxied, '198.51.100.7', 20);
        await send(proxied, '198.51.100.7', 21);
        const third = await send(proxied, '198.51.100.7', 22);
        expect(third.statusCode).toBe(429);
        expect(third.json().message).toContain('address 198.51.100.7 exceeded');
      } finally {
        await proxied.close();
      }
    }
    // A proxy list that does not name the peer trusts no header.
    const elsewhere = await limits(rateLimit, { trustProxy: ['192.0.2.0/24'] });
    try {
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await send(elsewhere, `203.0.113.${i + 1}`, 30 + i)).statusCode);
      expect(codes).toEqual([200, 200, 429]);
    } finally {
      await elsewhere.close();
    }
    expect(checkConfig({ trust_proxy: ['10.0.0.0/8', '::1'] }).trustProxy).toEqual(['10.0.0.0/8', '::1']);
    expect(() => checkConfig({ trust_proxy: 1 })).toThrow("trust_proxy must be true, false, or a list of the proxies' addresses or CIDRs");
  });

  it('keys IPv6 clients by their /64 and IPv4-mapped addresses as IPv4', async () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    const s = await limits({ ...NO_RATE_LIMIT, address: { requests: { perSecond: 1, burst: 2 }, frames: null } });
    try {
      const d = fresh();
      const send = (ip: string, i: number) =>
        s.app.inject({ method: 'POST', url: '/v1/uplink', remoteAddress: ip, payload: body('r', T, [{ serial: d.serial, frames: [{ frame: d.sample(0, i, []), rx: T }] }]) });
      expect((await send('2001:db8:1:2::10', 0)).statusCode).toBe(200);
      expect((await send('2001:db8:1:2::11', 1)).statusCode).toBe(200);
      const third = await send('2001:db8:1:2:ffff::12', 2);
      expect(third.statusCode).toBe(429);
      expect(third.json().message).toContain('address 2001:db8:1:2::/64 exceeded');
      expect((await send('2001:db8:1:3::10', 3)).statusCode).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('refuses the old rate_limit settings with a message that names the new ones, and checks the new shape', () => {
    const bad = (raw: unknown) => () => checkConfig(raw, dir, 'sealpost.json');
    expect(bad({ rate_limit: { relay: { per_second: 2000, burst: 10000 } } })).toThrow(ConfigError);
    expect(bad({ rate_limit: { relay: { per_second: 2000, burst: 10000 } } })).toThrow(
      /^sealpost\.json: rate_limit\.relay is no longer a setting: limits are per source address and per relay key, in requests and frames per second\. Write "rate_limit": \{"address": \{"requests": .*"relay_key": /,
    );
    expect(bad({ rate_limit: { ip: { per_second: 100, burst: 200 } } })).toThrow('sealpost.json: rate_limit.ip is no longer a setting');
    expect(bad({ rate_limit: { address: { bytes: {} } } })).toThrow('sealpost.json: rate_limit.address has an unknown setting "bytes" (known: requests, frames)');
    expect(bad({ rate_limit: { relay_key: { frames: { per_second: 10, burst: 100 } } } })).toThrow(
      'sealpost.json: rate_limit.relay_key.frames.burst (100) must be at least limits.frames_per_request (5000)',
    );
    const c = checkConfig({ rate_limit: { address: { frames: null }, relay_key: false } });
    expect(c.rateLimit).toEqual({ address: { requests: { perSecond: 100, burst: 200 }, frames: null }, relayKey: { requests: null, frames: null } });
  });
});

describe('relay keys', () => {
  it('sealpost relay-key new prints a fresh key once and a config entry holding only its SHA-256', async () => {
    const a = await sealpost('relay-key', 'new', 'acme-app');
    expect(a.code).toBe(0);
    const key = /^ {2}(sprk_[A-Za-z0-9_-]{43})$/m.exec(a.out)?.[1];
    expect(key).toBeDefined();
    expect(Buffer.from(key!.slice(5), 'base64url').length).toBe(32); // 256 bits
    const entry = JSON.parse(/^ {2}(\{.*\})$/m.exec(a.out)![1]!);
    expect(entry).toEqual({ name: 'acme-app', sha256: createHash('sha256').update(key!).digest('hex') });
    expect(a.out).toContain('add this entry to "relay_keys"');
    const b = await sealpost('relay-key', 'new', 'acme-app');
    expect(b.out).not.toContain(key!);
    expect(checkConfig({ relay_keys: [entry] }).relayKeys).toEqual([entry]);
    const badName = await sealpost('relay-key', 'new', 'bad name');
    expect(badName.code).toBe(2);
    expect(badName.err).toBe(
      'sealpost relay-key: relay key name must be 1 to 64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit, got "bad name"\n' +
        'usage: sealpost relay-key new NAME',
    );
    const none = await sealpost('relay-key');
    expect(none.code).toBe(2);
    expect(none.err).toBe('sealpost relay-key: which action? only "new" exists\nusage: sealpost relay-key new NAME');
  });

  it('checks relay_keys: hashes only, names unique, never empty', () => {
    const bad = (raw: unknown) => () => checkConfig({ relay_keys: raw }, dir, 'sealpost.json');
    const { key, entry } = newRelayKey('app');
    expect(bad([{ name: 'app', sha256: key }])).toThrow("sealpost.json: relay_keys[0].sha256 must be the 64 lowercase hex digits of the key's SHA-256");
    expect(bad([{ name: 'app', key }])).toThrow('sealpost.json: relay_keys[0] has an unknown setting "key" (known: name, sha256)');
    expect(bad([entry, { ...entry, sha256: 'a'.repeat(64) }])).toThrow('sealpost.json: relay_keys names "app" twice');
    expect(bad([])).toThrow('sealpost.json: relay_keys must be a list of {"name", "sha256"} entries made by `sealpost relay-key new NAME`');
    expect(bad([{ name: '', sha256: 'a'.repeat(64) }])).toThrow('relay_keys[0].name must be 1 to 64 characters');
  });

  it('refuses uploads without a known key (401, usual error body), accepts a good one, limits per key name, and never logs the key', async () => {
    const acme = newRelayKey('acme-app');
    const other = newRelayKey('other-app');
    const { lines, stream } = logCapture();
    const s = await testServer(storage, fleet, {
      importFleet: false,
      logger: { level: 'trace', stream },
      // One token per 100 s: a loaded machine taking seconds between the requests refills nothing.
      config: { relayKeys: [acme.entry, other.entry], rateLimit: { ...NO_RATE_LIMIT, relayKey: { requests: { perSecond: 0.01, burst: 3 }, frames: null } } },
    });
    try {
      const d = fresh();
      let i = 0;
      const send = (headers: Record<string, string>, ip = '10.3.0.1') =>
        s.app.inject({ method: 'POST', url: '/v1/uplink', remoteAddress: ip, headers, payload: body('phone-1', T, [{ serial: d.serial, frames: [{ frame: d.sample(0, i++, []), rx: T }] }]) });

      const none = await send({});
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toBe('SealpostRelayKey realm="uplink"');
      expect(none.json()).toEqual({
        error: 'Unauthorized',
        message: 'uploads to this server need a relay key: send it in the X-Sealpost-Relay-Key header (the operator makes one with `sealpost relay-key new NAME`)',
        statusCode: 401,
      });
      // One character changed (a key already ending in A once in 64 runs made this the real key).
      const wrong = await send({ 'x-sealpost-relay-key': `${acme.key.slice(0, -1)}${acme.key.endsWith('A') ? 'B' : 'A'}` });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().message).toBe("the X-Sealpost-Relay-Key header holds no key this server knows; uploads need a relay key listed in the server's relay_keys");
      expect((await send({ 'x-sealpost-relay-key': acme.entry.sha256 })).statusCode).toBe(401); // the hash is not the key

      const good = await send({ 'x-sealpost-relay-key': acme.key });
      expect(good.statusCode).toBe(200);
      expect(good.json().devices[0].accepted).toBe(1);
      // The key's bucket follows it from address to address.
      expect((await send({ 'x-sealpost-relay-key': acme.key }, '10.3.0.2')).statusCode).toBe(200);
      expect((await send({ 'x-sealpost-relay-key': acme.key }, '10.3.0.3')).statusCode).toBe(200);
      const limited = await send({ 'x-sealpost-relay-key': acme.key }, '10.3.0.4');
      expect(limited.statusCode).toBe(429);
      expect(limited.json().message).toBe('rate limit for relay key acme-app exceeded (0.01 requests per second, bursts of 3); retry after 100 s');
      expect((await send({ 'x-sealpost-relay-key': other.key }, '10.3.0.4')).statusCode).toBe(200);
    } finally {
      await s.close();
    }
    const text = lines.join('\n');
    expect(lines.some((l) => l.includes('"relayKey":"acme-app"'))).toBe(true);
    expect(text).toContain('uploads to this server need a relay key');
    for (const secret of [acme.key, other.key, acme.key.slice(5), acme.key.slice(0, 20)]) expect(text).not.toContain(secret);
  });

  it('the relay sends the key: fetchUploader with relayKey gets 200 where one without gets 401', async () => {
    const k = newRelayKey('sim');
    const s = await testServer(storage, fleet, { importFleet: false, config: { relayKeys: [k.entry] } });
    try {
      const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
      const d = fresh();
      const req = { relay: { id: 'phone-1', time: T }, devices: [{ serial: d.serial, frames: [{ data: b64(d.anchor(1, 0, ANCHOR_BOOT)), rx: T }] }] };
      expect((await fetchUploader(url)(req)).status).toBe(401);
      const ok = await fetchUploader(url, { relayKey: k.key })(req);
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { devices: { accepted: number }[] }).devices[0]!.accepted).toBe(1);
    } finally {
      await s.close();
    }
    expect(hashRelayKey(k.key)).toBe(k.entry.sha256);
  });

  it('sealpost sim with a relay key uploads to a server that requires one; without it every upload is refused', { timeout: 60_000 }, async () => {
    const k = newRelayKey('sim-app');
    const keysDir = join(dir, 'sim-keys');
    const keys = loadOrCreateKeys(keysDir);
    const { parseKeyFile } = await import('../../protocol/index.js');
    const server = new IngestServer(
      {
        ingest: { privateFile: parseKeyFile(readFileSync(keys.created!.ingestPrivate, 'utf8'), 'ingest-private'), publicFile: keys.ingestPublic },
        factory: { privateFile: keys.factoryPrivate, publicFile: parseKeyFile(readFileSync(keys.created!.factoryPublic, 'utf8'), 'factory-public') },
      },
      mkdtempSync(join(dir, 'sim-server-')),
    );
    await server.start({ rateLimit: NO_RATE_LIMIT, relayKeys: [k.entry] });
    try {
      const run = (relayKey: string | undefined, seed: number) =>
        runSimFleet({
          server: server.url,
          devices: 1,
          durationMs: 8_000,
          keysDir,
          profile: boardProfile('sim'),
          speed: 20,
          seed,
          chaos: { meanLinkMs: 0, failureRate: 0 },
          statusEveryMs: 0,
          waitImportMs: 0,
          drainMs: 60_000,
          print: () => undefined,
          onManifest: async (_path, text) => server.import(text),
          ...(relayKey !== undefined ? { relayKey } : {}),
        });
      const withKey = await run(k.key, 1);
      expect(withKey.uploads).toBeGreaterThan(0);
      expect(withKey.failedUploads).toBe(0);
      expect(withKey.accepted).toBeGreaterThan(0);
      expect(withKey.unacknowledged).toBe(0);
      const without = await run(undefined, 2);
      expect(without.uploads).toBeGreaterThan(0);
      expect(without.failedUploads).toBe(without.uploads);
      expect(without.accepted).toBe(0);
    } finally {
      await server.stop();
    }
    // The CLI flag is checked like the others.
    const flag = await sealpost('sim', '--server', 'http://127.0.0.1:1', '--relay-key', 'has space');
    expect(flag.code).toBe(2);
    expect(flag.err).toContain('--relay-key must be the key `sealpost relay-key new NAME` printed');
  });
});

describe('headers and hosts', () => {
  it('sends nosniff and no-store on API answers (also errors), nosniff but no HSTS on plain HTTP pages', async () => {
    const s = await testServer(storage, fleet, { importFleet: false, config: { rateLimit: { ...NO_RATE_LIMIT, address: { requests: { perSecond: 1, burst: 1 }, frames: null } } } });
    try {
      const d = fresh();
      const ok = await s.post(body('r', T, [{ serial: d.serial, frames: [{ frame: d.sample(0, 1, []), rx: T }] }]));
      const limited = await s.post(body('r', T, [{ serial: d.serial, frames: [{ frame: d.sample(0, 2, []), rx: T }] }]));
      const missing = await s.app.inject({ url: '/v1/nothing-here', headers: s.auth });
      expect([ok.status, limited.status, missing.statusCode]).toEqual([200, 429, 404]);
      for (const h of [ok.headers, limited.headers, missing.headers]) {
        expect(h['x-content-type-options']).toBe('nosniff');
        expect(h['cache-control']).toBe('no-store');
        expect(h['strict-transport-security']).toBeUndefined();
      }
      const page = await s.app.inject({ url: '/relay' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['x-content-type-options']).toBe('nosniff');
      expect(page.headers['cache-control']).toBe('no-cache'); // pages keep their revalidation
    } finally {
      await s.close();
    }
  });

  it('refuses a Host not in allowed_hosts with 421 naming the host and the setting', async () => {
    const c = checkConfig({ allowed_hosts: ['Ingest.Example.org', '127.0.0.1', '[::1]'] });
    expect(c.allowedHosts).toEqual(['ingest.example.org', '127.0.0.1', '::1']);
    const s = await testServer(storage, fleet, { importFleet: false, config: { allowedHosts: c.allowedHosts } });
    try {
      const get = (host: string) => s.app.inject({ url: '/relay', headers: { host } });
      for (const host of ['ingest.example.org', 'INGEST.EXAMPLE.ORG:8443', '127.0.0.1:8080', '[::1]:8080', 'ingest.example.org.']) {
        expect((await get(host)).statusCode, host).toBe(200);
      }
      const evil = await get('rebind.attacker.example:8080');
      expect(evil.statusCode).toBe(421);
      expect(evil.json()).toEqual({
        error: 'Misdirected Request',
        message: 'host "rebind.attacker.example:8080" is not in allowed_hosts (the server\'s config); use one of its names, or add this one there if the server should answer to it',
        statusCode: 421,
      });
      const d = fresh();
      const upload = await s.app.inject({ method: 'POST', url: '/v1/uplink', headers: { host: '10.9.9.9' }, payload: body('r', T, [{ serial: d.serial, frames: [{ frame: d.sample(0, 1, []), rx: T }] }]) });
      expect(upload.statusCode).toBe(421);
      expect(upload.headers['cache-control']).toBe('no-store');
      expect((await s.storage.device(d.serial))?.frames).toBe(0);
    } finally {
      await s.close();
    }
    expect(() => checkConfig({ allowed_hosts: ['https://x.example'] }, dir, 'sealpost.json')).toThrow(
      'sealpost.json: allowed_hosts[0] must be a host name or address without scheme or port (e.g. "ingest.example.org", "127.0.0.1", "::1"), got "https://x.example"',
    );
    expect(() => checkConfig({ allowed_hosts: [] }, dir, 'sealpost.json')).toThrow('sealpost.json: allowed_hosts must be a list of host names');
  });

  it('under TLS sends Strict-Transport-Security, and a TCP connection that never starts the handshake is closed after the header timeout', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const app = await buildServer({
      config: makeConfig({ logLevel: 'silent', rateLimit: NO_RATE_LIMIT, timeouts: { headersMs: 1000, requestMs: 2000, keepAliveMs: 5000 } }),
      ingestKeys: [fleet.ingest.privateFile],
      storage,
      logger: false,
      https: { cert: readFileSync(cert), key: readFileSync(key) },
    });
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      expect(url).toMatch(/^https:/);
      const d = fresh();
      const payload = JSON.stringify(body('r', T, [{ serial: d.serial, frames: [{ frame: d.anchor(1, 0, ANCHOR_BOOT), rx: T }] }]));
      const res = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
        const req = httpsRequest(`${url}/v1/uplink`, { method: 'POST', ca: readFileSync(cert), headers: { 'content-type': 'application/json' } }, (r) => {
          r.resume();
          r.on('end', () => resolve({ status: r.statusCode!, headers: r.headers }));
        });
        req.on('error', reject);
        req.end(payload);
      });
      expect(res.status).toBe(200);
      expect(res.headers['strict-transport-security']).toBe('max-age=31536000');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-content-type-options']).toBe('nosniff');

      const started = performance.now();
      const silent = connect({ host: '127.0.0.1', port: Number(new URL(url).port) });
      silent.on('error', () => undefined);
      await new Promise((resolve) => silent.on('close', resolve));
      const held = performance.now() - started;
      expect(held).toBeGreaterThan(900);
      expect(held).toBeLessThan(4000); // tls.createServer's own handshake timeout is 120 s
    } finally {
      await app.close();
    }
  });
});

describe('database files', () => {
  it('creates the SQLite file and its -wal and -shm 0600, and restricts an existing loose file with a warning', async () => {
    const d = mkdtempSync(join(tmpdir(), 'sealpost-modes-'));
    const old = process.umask(0o022);
    try {
      const db = join(d, 'new.db');
      const s = await openStorage(db);
      await s.devices();
      await importManifest(s, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
      for (const f of [db, `${db}-wal`, `${db}-shm`]) {
        expect(existsSync(f), f).toBe(true);
        expect((statSync(f).mode & 0o777).toString(8), f).toBe('600');
      }
      await s.close();

      const loose = join(d, 'loose.db');
      writeFileSync(loose, '');
      const { chmodSync } = await import('node:fs');
      chmodSync(loose, 0o644);
      const warnings: string[] = [];
      const t = await openStorage(loose, { onWarning: (m) => warnings.push(m) });
      await t.close();
      expect((statSync(loose).mode & 0o777).toString(8)).toBe('600');
      expect(warnings).toEqual([`database file ${loose} was accessible to group or others (mode 0644); restricted it to the owner (chmod 600)`]);

      // The server logs the warning; `sealpost registry import` creates its database 0600 too.
      chmodSync(loose, 0o640);
      const { lines, stream } = logCapture();
      const app = await buildServer({ config: makeConfig({ db: loose, rateLimit: NO_RATE_LIMIT }), ingestKeys: [fleet.ingest.privateFile], logger: { level: 'info', stream } });
      await app.close();
      expect(lines.some((l) => l.includes('"level":40') && l.includes(`database file ${loose} was accessible to group or others (mode 0640)`))).toBe(true);
      const files = writeFleetFiles(fleet, mkdtempSync(join(d, 'ops-')));
      const r = await sealpost('registry', 'import', files.manifest, '--db', files.db, '--trust', files.factoryPub, '--ingest-key', files.ingestPub);
      expect(r.code).toBe(0);
      expect((statSync(files.db).mode & 0o777).toString(8)).toBe('600');
      const config = writeConfig(files.dir, { db: 'sealpost.db', trust: [files.factoryPub], ingest_keys: [files.ingestKey] });
      expect((await sealpost('registry', 'list', '--config', config)).code).toBe(0);
    } finally {
      process.umask(old);
      rmSync(d, { recursive: true, force: true });
    }
  });
});

// ---- connection limits over real sockets ----------------------------------

interface Attacker {
  socket: Socket;
  opened: number;
  /** What the server sent, and when the socket closed (ms after opened). */
  got: string;
  closedAfter: number | null;
}

function attack(port: number, localAddress: string, send: string | null): Promise<Attacker> {
  return new Promise((resolve, reject) => {
    const a: Attacker = { socket: connect({ host: '127.0.0.1', port, localAddress }), opened: performance.now(), got: '', closedAfter: null };
    a.socket.on('data', (c) => (a.got += String(c)));
    a.socket.on('close', () => (a.closedAfter = performance.now() - a.opened));
    a.socket.on('error', () => undefined);
    a.socket.once('connect', () => {
      a.opened = performance.now();
      if (send !== null) a.socket.write(send);
      resolve(a);
    });
    a.socket.once('error', reject);
  });
}

const until = async (what: () => boolean, ms: number) => {
  const end = performance.now() + ms;
  while (!what() && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
};

describe('connection limits', () => {
  it('keeps serving good uploads while 300 idle and half-sent connections from ten addresses are open; slow headers and slow bodies get 408 in time', { timeout: 30_000 }, async () => {
    const s = await testServer(storage, fleet, {
      importFleet: false,
      config: { timeouts: { headersMs: 1500, requestMs: 2500, keepAliveMs: 5000 }, connections: { max: null, perAddress: 40, requestsPerSocket: 1000 } },
    });
    const attackers: Attacker[] = [];
    try {
      const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
      const port = Number(new URL(url).port);
      const slowHeader = 'POST /v1/uplink HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n';
      const slowBody = 'POST /v1/uplink HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"relay":';
      const opening: Promise<Attacker>[] = [];
      for (let a = 0; a < 10; a++) {
        const kind = a < 4 ? null : a < 7 ? slowHeader : slowBody;
        for (let i = 0; i < 30; i++) opening.push(attack(port, `127.0.0.${10 + a}`, kind));
      }
      attackers.push(...(await Promise.all(opening)));
      const openCount = () => new Promise<number>((r) => s.app.server.getConnections((_e, n) => r(n)));
      let seen = 0;
      await until(() => (void openCount().then((n) => (seen = n)), seen === 300), 3000);
      expect(seen).toBe(300);

      // Good uploads from 127.0.0.1 (fetch: its own keep-alive connections) while all 300 are held.
      const d = fresh();
      const results = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const r = await fetch(`${url}/v1/uplink`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body('good', T, [{ serial: d.serial, frames: [{ frame: i === 0 ? d.anchor(1, 0, ANCHOR_BOOT) : d.sample(1, i, []), rx: T }] }])),
          });
          return { status: r.status, json: (await r.json()) as { devices: { accepted: number }[] } };
        }),
      );
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(results.reduce((n, r) => n + r.json.devices[0]!.accepted, 0)).toBe(10);
      expect(attackers.filter((a) => a.closedAfter !== null)).toHaveLength(0); // all still held meanwhile

      await until(() => attackers.every((a) => a.closedAfter !== null), 8000);
      for (const [kind, from, to, limit] of [
        ['idle', 0, 120, 1500],
        ['slow header', 120, 210, 1500],
        ['slow body', 210, 300, 2500],
      ] as const) {
        for (const a of attackers.slice(from, to)) {
          const [head, text] = a.got.split('\r\n\r\n');
          expect(head, kind).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application\/json\r\n/);
          expect(JSON.parse(text!), kind).toEqual({
            error: 'Request Timeout',
            message: 'the request was not received in time: its headers must arrive within 1.5 s (timeouts.headers_s) and all of it within 2.5 s (timeouts.request_s); send it again',
            statusCode: 408,
          });
          // Node checks every second at most (connectionsCheckingInterval), so well within a second and a bit of the limit.
          expect(a.closedAfter!, kind).toBeGreaterThan(limit - 100);
          expect(a.closedAfter!, kind).toBeLessThan(limit + 2000);
        }
      }
      expect(await openCount()).toBeLessThanOrEqual(10); // what is left is the good client's keep-alive pool
    } finally {
      for (const a of attackers) a.socket.destroy();
      await s.close();
    }
  });

  it('refuses connections beyond the per-address cap at once; at the global cap closes the connection with the oldest activity for a newcomer', { timeout: 20_000 }, async () => {
    const s = await testServer(storage, fleet, { importFleet: false, config: { connections: { max: 60, perAddress: 25, requestsPerSocket: 1000 } } });
    const held: Attacker[] = [];
    try {
      const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
      const port = Number(new URL(url).port);
      for (let i = 0; i < 30; i++) held.push(await attack(port, '127.0.0.77', null));
      await until(() => held.filter((a) => a.closedAfter !== null).length >= 5, 3000);
      const refused = held.filter((a) => a.closedAfter !== null);
      expect(refused).toHaveLength(5);
      for (const a of refused) {
        expect(a.got).toBe(''); // destroyed unanswered, before any parsing
        expect(a.closedAfter!).toBeLessThan(1000);
      }
      expect(held.slice(0, 25).every((a) => a.closedAfter === null)).toBe(true);
      expect(s.app.connections.count('127.0.0.77')).toBe(25);
      expect(s.app.connections.refused.perAddress).toBe(5);
      // Another address still gets in and is served.
      const d = fresh();
      const ok = await fetch(`${url}/v1/uplink`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body('ok', T, [{ serial: d.serial, frames: [{ frame: d.anchor(1, 0, ANCHOR_BOOT), rx: T }] }])) });
      expect(ok.status).toBe(200);

      // Global cap 60: 25 held + the good client's 1 + 25 + 12 more from other addresses is 63, so the three
      // oldest that never completed a request make room; the good client's connection, which did, stays.
      for (let i = 0; i < 25; i++) held.push(await attack(port, '127.0.0.78', null));
      for (let i = 0; i < 12; i++) held.push(await attack(port, '127.0.0.79', null));
      await until(() => s.app.connections.refused.evicted >= 3, 3000);
      await new Promise((r) => setTimeout(r, 100));
      expect(s.app.connections.refused.evicted).toBe(3);
      expect(s.app.connections.size).toBe(60);
      expect(held.slice(0, 3).every((a) => a.closedAfter !== null && a.got === '')).toBe(true);
      expect(held.slice(3, 25).every((a) => a.closedAfter === null)).toBe(true);
      expect(held.slice(30).every((a) => a.closedAfter === null)).toBe(true);
      const again = await fetch(`${url}/v1/uplink`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body('ok', T, [{ serial: d.serial, frames: [{ frame: d.sample(1, 5, []), rx: T }] }])) });
      expect(again.status).toBe(200);
      expect(s.app.connections.refused.total).toBe(0); // Node's own backstop never had to act
    } finally {
      for (const a of held) a.socket.destroy();
      await s.close();
    }
  });

  it('reads the descriptor limit and warns when connections.max would exhaust it', () => {
    const limitsFile = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                20000                files\n';
    expect(fileDescriptorLimit(() => limitsFile)).toBe(20000);
    expect(fileDescriptorLimit(() => { throw new Error('ENOENT'); })).toBeNull();
    expect(connectionCap(null, 20000)).toEqual({ max: 18000, fdLimit: 20000 });
    expect(connectionCap(null, 1024)).toEqual({ max: 768, fdLimit: 1024 });
    expect(connectionCap(null, 1_048_576)).toEqual({ max: 50_000, fdLimit: 1_048_576 });
    expect(connectionCap(30_000, 20000).warning).toMatch(/^connections\.max \(30000\) is above the file-descriptor limit \(20000\) minus 256/);
    expect(connectionCap(10_000, 20000).warning).toBeUndefined();
    expect(fileDescriptorLimit()).toBeGreaterThan(0); // this is Linux
    const bad = (raw: unknown) => () => checkConfig(raw, dir, 'sealpost.json');
    expect(bad({ timeouts: { headers_s: 40, request_s: 30 } })).toThrow('sealpost.json: timeouts.headers_s (40) must not exceed timeouts.request_s (30)');
    expect(bad({ timeouts: { header_s: 4 } })).toThrow('sealpost.json: timeouts has an unknown setting "header_s" (known: headers_s, request_s, keep_alive_s)');
    expect(bad({ connections: { per_address: 0 } })).toThrow('sealpost.json: connections.per_address must be a whole number from 1 to 10000000, got 0');
    const c = checkConfig({ timeouts: { headers_s: 10, request_s: 30, keep_alive_s: 65 }, connections: { max: 5000 } });
    expect(c.timeouts).toEqual({ headersMs: 10_000, requestMs: 30_000, keepAliveMs: 65_000 });
    expect(c.connections).toEqual({ max: 5000, perAddress: 256, requestsPerSocket: 1000 });
    // Behind a proxy every connection is the proxy's: the per-address cap is off unless set.
    expect(checkConfig({ trust_proxy: true }).connections.perAddress).toBeNull();
    expect(checkConfig({ trust_proxy: true, connections: { per_address: 5000 } }).connections.perAddress).toBe(5000);
  });
});
