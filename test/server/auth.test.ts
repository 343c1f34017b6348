// API tokens (docs/api.md, "Authentication"): the token store on both
// backends, the default-deny edge of the HTTP API (401, 403, 429 and the
// routes that stay open), logs that never hold a token, and the
// `sealpost token` command on SQLite.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ANCHOR_BOOT } from '../../protocol/index.js';
import { checkConfig, openStorage, type Storage } from '../../server/index.js';
import { TokenError } from '../../server/errors.js';
import { TOKEN_SHAPE, TOUCH_EVERY_MS, TokenVerifier, createToken, listTokens, revokeToken } from '../../server/auth/tokens.js';
import { BACKENDS, SealingDevice, body, closeServerFixture, logCapture, makeFleet, readToken, testDb, testServer, type Fleet, type TestDb, type TestServer } from '../helpers/server.js';
import { sealpost } from '../helpers/cli.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** Every stored api_tokens row, read past the Storage interface. */
async function rawRows(db: TestDb): Promise<Record<string, unknown>[]> {
  if (db.backend === 'sqlite') {
    const d = new Database(db.url, { readonly: true });
    try {
      return d.prepare('SELECT * FROM api_tokens').all() as Record<string, unknown>[];
    } finally {
      d.close();
    }
  }
  const u = new URL(db.url);
  const schema = u.searchParams.get('schema')!;
  u.searchParams.delete('schema');
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    return (await c.query(`SELECT * FROM ${schema}.api_tokens`)).rows;
  } finally {
    await c.end();
  }
}

describe.each(BACKENDS)('token store on %s', (backend) => {
  let db: TestDb;
  let storage: Storage;

  beforeAll(async () => {
    db = await testDb(backend);
    storage = await db.open();
  });
  afterAll(() => closeServerFixture({ storage, db }));

  it('creates a 256-bit token, returns it once and stores only its SHA-256', async () => {
    const t = await createToken(storage, 'dashboard-alice', 'read', 1_000);
    expect(t.token).toMatch(TOKEN_SHAPE);
    expect(Buffer.from(t.token.slice(4), 'base64url')).toHaveLength(32);
    expect(t).toMatchObject({ name: 'dashboard-alice', role: 'read', createdAt: 1_000, lastUsed: null });
    const other = await createToken(storage, 'ops.admin_1', 'admin', 2_000);
    expect(other.token).not.toBe(t.token);

    const rows = await rawRows(db);
    expect(rows).toHaveLength(2);
    const alice = rows.find((r) => r.name === 'dashboard-alice')!;
    expect(Buffer.from(alice.hash as Buffer).equals(sha256(t.token))).toBe(true);
    // The token itself is nowhere in the database.
    expect(JSON.stringify(rows.map((r) => ({ ...r, hash: Buffer.from(r.hash as Buffer).toString('base64url') })))).not.toContain(t.token.slice(4));

    expect(await listTokens(storage)).toEqual([
      { name: 'dashboard-alice', role: 'read', createdAt: 1_000, lastUsed: null },
      { name: 'ops.admin_1', role: 'admin', createdAt: 2_000, lastUsed: null },
    ]);
  });

  it('refuses a duplicate name, a bad name and a bad role with what to do, changing nothing', async () => {
    await expect(createToken(storage, 'dashboard-alice', 'admin')).rejects.toThrow(
      'a token named dashboard-alice already exists: revoke it first (sealpost token revoke dashboard-alice) or pick another name',
    );
    await expect(createToken(storage, 'has space', 'read')).rejects.toThrow('token name "has space" must be 1 to 64 of A-Z a-z 0-9 . _ -');
    await expect(createToken(storage, '', 'read')).rejects.toThrow(TokenError);
    await expect(createToken(storage, 'x'.repeat(65), 'read')).rejects.toThrow('must be 1 to 64');
    await expect(createToken(storage, 'bob', 'write')).rejects.toThrow('role must be read or admin, got "write"');
    expect((await listTokens(storage)).map((t) => `${t.name}:${t.role}`)).toEqual(['dashboard-alice:read', 'ops.admin_1:admin']);
  });

  it('verifies by hash, forgets a revoked token, and names an unknown one on revoke', async () => {
    const t = await createToken(storage, 'short-lived', 'read');
    const v = new TokenVerifier(storage);
    expect(await v.verify(t.token)).toEqual({ name: 'short-lived', role: 'read' });
    expect(await v.verify(t.token.slice(0, -1) + (t.token.endsWith('A') ? 'B' : 'A'))).toBeUndefined();
    expect(await v.verify('not a token')).toBeUndefined();
    expect(await v.verify(`Bearer ${t.token}`)).toBeUndefined();
    await revokeToken(storage, 'short-lived');
    expect(await v.verify(t.token)).toBeUndefined();
    await expect(revokeToken(storage, 'short-lived')).rejects.toThrow('no token named short-lived (sealpost token list shows the names)');
  });

  it('records last use at most once a minute per token, and never moves it back', async () => {
    const t = await createToken(storage, 'poller', 'read');
    let now = 5_000_000;
    const touch = vi.spyOn(storage, 'touchToken');
    const v = new TokenVerifier(storage, () => now);
    const settle = async () => {
      for (const p of touch.mock.results) await p.value;
    };
    for (let i = 0; i < 20; i++) {
      expect(await v.verify(t.token)).toBeDefined();
      now += 1_000;
    }
    await settle();
    expect(touch).toHaveBeenCalledTimes(1);
    expect((await listTokens(storage)).find((x) => x.name === 'poller')!.lastUsed).toBe(5_000_000);
    now = 5_000_000 + TOUCH_EVERY_MS;
    await v.verify(t.token);
    await settle();
    expect(touch).toHaveBeenCalledTimes(2);
    // A second node whose clock is behind reads the newer last_used and writes nothing.
    const behind = new TokenVerifier(storage, () => 5_000_000 + 30_000);
    await behind.verify(t.token);
    await settle();
    expect(touch).toHaveBeenCalledTimes(2);
    await storage.touchToken('poller', 1);
    expect((await listTokens(storage)).find((x) => x.name === 'poller')!.lastUsed).toBe(5_000_000 + TOUCH_EVERY_MS);
    touch.mockRestore();
  });
});

describe.each(BACKENDS)('the API edge on %s', (backend) => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let s: TestServer;
  let serial: string;
  const mqtt = checkConfig({ mqtt: { url: 'mqtt://127.0.0.1:1' } }).sections;

  beforeAll(async () => {
    db = await testDb(backend);
    storage = await db.open();
    fleet = makeFleet(3);
    // Failed attempts are not limited here: this suite makes many on purpose (the limit has its own test below).
    s = await testServer(storage, fleet, { config: { sections: mqtt, auth: { read: { perSecond: 50, burst: 500 }, failuresPerMinute: null } } });
    const d = new SealingDevice(fleet.devices[0]!);
    serial = d.serial;
    const T = s.clock.now;
    const r = await s.post(body('relay-auth', T, [{ serial, frames: [d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 5, [{ channel: 1, value: 20.5 }])].map((frame) => ({ frame, rx: T })) }]));
    expect(r.json.devices[0].accepted).toBe(2);
  });
  afterAll(() => closeServerFixture({ s, storage, db }));

  const reads = () => [
    '/v1/devices',
    `/v1/devices/${serial}`,
    `/v1/devices/${serial}/readings`,
    `/v1/devices/${serial}/readings?format=csv`,
    `/v1/devices/${serial}/gaps`,
    '/v1/mqtt',
    '/v1/session',
  ];
  const get = (url: string, headers: Record<string, string> = {}) => s.app.inject({ url, headers });

  it('answers 200 on every read route with a read token, CSV included', async () => {
    for (const url of reads()) expect((await get(url, s.auth)).statusCode, url).toBe(200);
    const csv = await get(`/v1/devices/${serial}/readings?format=csv`, s.auth);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.body.split('\n')[1]).toMatch(new RegExp(`^${serial},2,0,.*,temperature,°C,20.5,(relay|server)$`));
    expect((await get('/v1/devices', s.auth)).json().devices.map((d: { serial: string }) => d.serial)).toContain(serial);
  });

  it('answers 401 with the usual body and WWW-Authenticate without a token, with a wrong one and with a revoked one', async () => {
    const revoked = await readToken(storage);
    expect((await get('/v1/devices', revoked.auth)).statusCode).toBe(200);
    await revokeToken(storage, revoked.name);
    const wrong = `spt_${'A'.repeat(43)}`;
    for (const url of reads()) {
      const none = await get(url);
      expect(none.statusCode, url).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer realm="sealpost"');
      expect(none.json()).toEqual({
        error: 'Unauthorized',
        message: 'this route needs an API token: send "Authorization: Bearer TOKEN"; an operator creates one with: sealpost token create --role read --name NAME',
        statusCode: 401,
      });
      for (const headers of [{ authorization: `Bearer ${wrong}` }, revoked.auth, { authorization: `Bearer ${s.token}x` }]) {
        const r = await get(url, headers);
        expect(r.statusCode, url).toBe(401);
        expect(r.headers['www-authenticate']).toBe('Bearer realm="sealpost", error="invalid_token"');
        expect(r.json().message).toMatch(/^the token is not valid \(revoked, mistyped, or made for another server's database\); an operator creates one with/);
      }
      const basic = await get(url, { authorization: `Basic ${Buffer.from(`x:${s.token}`).toString('base64')}` });
      expect(basic.statusCode).toBe(401);
      expect(basic.json().message).toMatch(/^the Authorization header must be "Bearer TOKEN"/);
    }
    // Default deny: an unknown path says nothing about itself without a token.
    expect((await get('/v1/nothing-here')).statusCode).toBe(401);
    expect((await get('/v1/nothing-here', s.auth)).statusCode).toBe(404);
    // A read token answers to any spelling of the scheme (RFC 7235 section 2.1: case-insensitive).
    expect((await get('/v1/devices', { authorization: `bearer ${s.token}` })).statusCode).toBe(200);
  });

  it('tells who is signed in, and refuses an admin route to a read token with 403', async () => {
    expect((await get('/v1/session', s.auth)).json()).toEqual({ name: expect.stringMatching(/^test-read-/), role: 'read' });
    const admin = await readToken(storage, 'admin');
    expect((await get('/v1/session', admin.auth)).json()).toEqual({ name: admin.name, role: 'admin' });
    // Admin > read: an admin token reads.
    expect((await get('/v1/devices', admin.auth)).statusCode).toBe(200);

    const target = fleet.devices[2]!.serial;
    const revoke = (headers: Record<string, string>) => s.app.inject({ method: 'POST', url: `/v1/devices/${target}/revoke`, headers });
    expect((await revoke({})).statusCode).toBe(401);
    const denied = await revoke(s.auth);
    expect(denied.statusCode).toBe(403);
    expect(denied.headers['www-authenticate']).toBe('Bearer realm="sealpost", error="insufficient_scope"');
    expect(denied.json()).toEqual({
      error: 'Forbidden',
      message: expect.stringMatching(/^token test-read-\w+ has role read; POST \/v1\/devices\/:serial\/revoke needs an admin token$/),
      statusCode: 403,
    });
    expect((await storage.device(target))!.status).toBe('active');
    const ok = await revoke(admin.auth);
    expect(ok.json()).toEqual({ serial: target, status: 'revoked', changed: true });
    expect((await storage.device(target))!.status).toBe('revoked');
    expect((await revoke(admin.auth)).json()).toEqual({ serial: target, status: 'revoked', changed: false });
    expect((await s.app.inject({ method: 'POST', url: '/v1/devices/SP-NOPE/revoke', headers: admin.auth })).statusCode).toBe(404);
  });

  it('keeps the uplink, the relay page and the dashboard page open', async () => {
    const d = new SealingDevice(fleet.devices[1]!);
    const r = await s.post(body('relay-open', s.clock.now, [{ serial: d.serial, frames: [{ frame: d.anchor(1, 0, ANCHOR_BOOT), rx: s.clock.now }] }]));
    expect(r.status).toBe(200);
    expect(r.json.devices[0].accepted).toBe(1);
    for (const url of ['/', '/dashboard/app.js', '/dashboard/style.css', '/dashboard/icon.svg', '/relay', '/relay/app.js']) {
      expect((await get(url)).statusCode, url).toBe(200);
    }
    expect((await get('/relay/')).statusCode).toBe(301);
    expect((await s.app.inject({ method: 'HEAD', url: '/' })).statusCode).toBe(200);
  });
});

describe('rate limits of the API edge', () => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;

  beforeAll(async () => {
    db = await testDb('sqlite');
    storage = await db.open();
    fleet = makeFleet(1);
  });
  afterAll(() => closeServerFixture({ storage, db }));

  it('limits reads per token with 429 and Retry-After, each token on its own', async () => {
    const s = await testServer(storage, fleet, { config: { auth: { read: { perSecond: 0.1, burst: 3 }, failuresPerMinute: 30 } } });
    // One token back every 10 s: the five requests below cannot earn one back however slow the machine is.
    try {
      const other = await readToken(storage);
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) codes.push((await s.app.inject({ url: '/v1/devices', headers: s.auth })).statusCode);
      expect(codes).toEqual([200, 200, 200, 429, 429]);
      const r = await s.app.inject({ url: '/v1/devices', headers: s.auth });
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(10);
      expect(r.json()).toEqual({ error: 'Too Many Requests', message: expect.stringMatching(/^rate limit for token test-read-\w+ exceeded; retry after ([1-9]|10) s$/), statusCode: 429 });
      expect((await s.app.inject({ url: '/v1/devices', headers: other.auth })).statusCode).toBe(200);
      // The uplink is not counted against reads.
      expect((await s.post(body('r', 1, []))).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('answers 429 to an address after too many 401s a minute, without looking tokens up', async () => {
    const s = await testServer(storage, fleet, { config: { auth: { read: null, failuresPerMinute: 5 } }, importFleet: false });
    try {
      const lookups = vi.spyOn(storage, 'tokenByHash');
      const codes: number[] = [];
      for (let i = 0; i < 8; i++) codes.push((await s.app.inject({ url: '/v1/devices', headers: { authorization: `Bearer spt_${String(i).padStart(43, 'x')}` } })).statusCode);
      expect(codes).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
      expect(lookups).toHaveBeenCalledTimes(5);
      const r = await s.app.inject({ url: '/v1/devices', headers: s.auth });
      expect(r.statusCode).toBe(429);
      expect(Number(r.headers['retry-after'])).toBe(60);
      expect(r.json().message).toBe('too many requests without a valid token from address 127.0.0.1; retry after 60 s');
      // Another address is not affected; after the minute the address may try again.
      expect((await s.app.inject({ url: '/v1/devices', headers: s.auth, remoteAddress: '127.0.0.2' })).statusCode).toBe(200);
      s.clock.now += 60_000;
      expect((await s.app.inject({ url: '/v1/devices', headers: s.auth })).statusCode).toBe(200);
      // The uplink never counts or is refused for it.
      expect((await s.post(body('r', 1, []))).status).toBe(200);
      lookups.mockRestore();
    } finally {
      await s.close();
    }
  });
});

describe('tokens in logs', () => {
  it('never writes a token to the log: good, bad, in a header or in the URL, on success and refusal', async () => {
    const db = await testDb('sqlite');
    const storage = await db.open();
    const { lines, stream } = logCapture();
    const fleet = makeFleet(1);
    const s = await testServer(storage, fleet, { logger: { level: 'trace', stream } });
    try {
      const admin = await readToken(storage, 'admin');
      const bad = `spt_${'Q'.repeat(43)}`;
      const serial = fleet.devices[0]!.serial;
      const urls = ['/v1/devices', `/v1/devices/${serial}/readings?format=csv`, '/v1/session', '/v1/nothing'];
      for (const url of urls) {
        for (const headers of [s.auth, admin.auth, { authorization: `Bearer ${bad}` }, { authorization: `Basic ${s.token}` }, { authorization: s.token }]) {
          await s.app.inject({ url, headers });
        }
      }
      await s.app.inject({ method: 'POST', url: `/v1/devices/${serial}/revoke`, headers: s.auth });
      await s.app.inject({ method: 'POST', url: `/v1/devices/${serial}/revoke`, headers: admin.auth });
      // A client that puts its token in the URL: the URL is logged, the token is not.
      await s.app.inject({ url: `/v1/devices?token=${s.token}` });
      await s.app.inject({ url: `/v1/devices?access_token=${bad}`, headers: s.auth });
      const text = lines.join('\n');
      expect(lines.length).toBeGreaterThan(40);
      expect(text).toContain('request refused');
      expect(text).toContain('spt_(redacted)');
      for (const t of [s.token, admin.token, bad]) {
        expect(text).not.toContain(t);
        expect(text).not.toContain(t.slice(4, 30));
        expect(text).not.toContain(sha256(t).toString('hex'));
      }
    } finally {
      await s.close();
      await storage.close();
      await db.drop();
    }
  });
});

describe('sealpost token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-token-'));
  const dbPath = join(dir, 'sealpost.db');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a token, prints it once with how to use it, and the server accepts it', async () => {
    const r = await sealpost('token', 'create', '--role', 'read', '--name', 'dashboard-alice', '--db', dbPath);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const token = /^ {2}(spt_[A-Za-z0-9_-]{43})$/m.exec(r.out)![1]!;
    expect(r.out).toBe(
      [
        'created read token dashboard-alice:',
        '',
        `  ${token}`,
        '',
        'It will not be shown again: only its hash is stored. Send it as',
        `  Authorization: Bearer ${token}`,
        "or paste it into the dashboard's sign-in form.",
      ].join('\n'),
    );
    const storage = await openStorage(dbPath);
    try {
      expect(await new TokenVerifier(storage).verify(token)).toEqual({ name: 'dashboard-alice', role: 'read' });
    } finally {
      await storage.close();
    }
  });

  it('lists names, roles, creation and last use, as a table or JSON, never the token', async () => {
    expect((await sealpost('token', 'create', '--role', 'admin', '--name', 'ops', '--db', dbPath)).code).toBe(0);
    const list = await sealpost('token', 'list', '--db', dbPath);
    const lines = list.out.split('\n');
    expect(lines[0]).toMatch(/^name +role +created +last used$/);
    // dashboard-alice was used once by the verifier above; ops never.
    expect(lines[1]).toMatch(/^dashboard-alice +read +\d{4}-\d\d-\d\dT[\d:.]+Z +\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    expect(lines[2]).toMatch(/^ops +admin +\d{4}-\d\d-\d\dT[\d:.]+Z +never$/);
    expect(list.out).not.toContain('spt_');
    const json = JSON.parse((await sealpost('token', 'list', '--json', '--db', dbPath)).out);
    expect(json).toEqual([
      { name: 'dashboard-alice', role: 'read', created: expect.any(String), last_used: expect.stringMatching(/^\d{4}-/) },
      { name: 'ops', role: 'admin', created: expect.any(String), last_used: null },
    ]);
  });

  it('revokes by name; refuses duplicates, unknown names and bad arguments with the fix', async () => {
    const dup = await sealpost('token', 'create', '--role', 'read', '--name', 'ops', '--db', dbPath);
    expect(dup.code).toBe(1);
    expect(dup.err).toBe('sealpost token: a token named ops already exists: revoke it first (sealpost token revoke ops) or pick another name');
    expect(dup.out).toBe('');
    expect((await sealpost('token', 'revoke', 'ops', '--db', dbPath)).out).toBe('revoked token ops: requests with it get 401 from now on');
    expect((await sealpost('token', 'revoke', 'ops', '--db', dbPath)).err).toBe('sealpost token: no token named ops (sealpost token list shows the names)');
    expect((await sealpost('token', 'list', '--json', '--db', dbPath)).out).not.toContain('"ops"');

    const err = async (...args: string[]) => (await sealpost('token', ...args)).err;
    expect(await err('create', '--name', 'x', '--db', dbPath)).toContain('say which role: --role read');
    expect(await err('create', '--role', 'read', '--db', dbPath)).toContain('say whose token it is: --name NAME');
    expect(await err('create', '--role', 'owner', '--name', 'x', '--db', dbPath)).toMatch(/^sealpost token: role must be read or admin, got "owner"\nusage: sealpost token create /);
    expect(await err('create', '--role', 'read', '--name', 'a b', '--db', dbPath)).toContain('must be 1 to 64 of A-Z a-z 0-9 . _ -');
    expect(await err('create', '--role', 'read', '--name', 'x')).toContain("say which database: --config FILE (the server's config) or --db PATH|postgres://URL");
    expect(await err('revoke', '--db', dbPath)).toContain('say which token: sealpost token revoke NAME');
    expect(await err('list', '--db', join(dir, 'nope.db'))).toContain('does not exist');
    expect(await err('frobnicate', '--db', dbPath)).toContain('usage: sealpost token create --role read|admin --name NAME');
    expect(await err()).toContain('usage: sealpost token create');
    expect(await err('list', '--role', 'read', '--db', dbPath)).toContain('--role and --name belong to token create');
  });

  it('is in the command table: sealpost help token', async () => {
    const help = await sealpost('help', 'token');
    expect(help.out).toMatch(/^usage: sealpost token create --role read\|admin --name NAME \(--config FILE \| --db PATH\|URL\)/);
    expect(help.out).toContain('sealpost token revoke NAME');
    expect((await sealpost('help')).out).toMatch(/\n {2}token +create, list and revoke API tokens/);
  });
});
