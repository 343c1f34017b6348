// The server's edge on the ingest path (issue #10, items 3 and 4; design
// brief, "Trust at the server's edge"): relay receive times are hints clamped
// into a window, device keys are derived once and stored wrapped, and
// addresses that keep sending frames that fail authentication are throttled
// without letting anyone silence a genuine device.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ANCHOR_BOOT, provisionDevice } from '../../protocol/index.js';
import { addressKey } from '../../server/edge/rate-limit.js';
import { checkConfig } from '../../server/config.js';
import { ConfigError } from '../../server/errors.js';
import { clampRx } from '../../server/ingest/uplink.js';
import { Keyring, REASON_UNWRAP, WRAPPED_LENGTH, registryKek, unwrapDeviceKeys } from '../../server/keys.js';
import { importManifest, openStorage, type Storage } from '../../server/index.js';
import { main } from '../../cli/main.js';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFleetFiles } from '../helpers/server-files.js';
import { BACKENDS, SealingDevice, b64, body, closeServerFixture, logCapture, makeFleet, manifestFor, testDb, testServer, type Fleet, type TestDb, type TestServer } from '../helpers/server.js';

const WINDOW_S = 3_600;
const WINDOW = WINDOW_S * 1000;
const YEAR_2026 = Date.UTC(2026, 0, 1);

/** Sets a row's keys_wrapped behind the server's back, as an attacker with write access to the database could. */
async function writeRow(db: TestDb, serial: string, blob: Uint8Array | null, node: Storage): Promise<void> {
  const value = blob === null ? null : Buffer.from(blob);
  if (db.backend === 'sqlite') {
    const raw = new Database(db.url);
    try {
      raw.prepare('UPDATE devices SET keys_wrapped = ? WHERE serial = ?').run(value, serial);
    } finally {
      raw.close();
    }
    return;
  }
  const u = new URL(db.url);
  const schema = u.searchParams.get('schema')!;
  u.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  try {
    await client.query(`UPDATE ${schema}.devices SET keys_wrapped = $1 WHERE serial = $2`, [value, serial]);
    // A PostgreSQL node keeps its own copy of a key row (its key directory, which such a write does not
    // reach; test/server/storage/key-directory.test.ts): told to forget it, as an operator would, the node
    // reads the row again, like the key cache the tests empty with keyring.forget.
    await client.query('SELECT pg_notify($1, $2)', ['sealpost_key_rows', `${schema} ${serial}`]);
  } finally {
    await client.end();
  }
  // The notification reaches the node's LISTEN connection a moment later.
  const written = (r: Uint8Array | null | undefined) => (r ? Buffer.from(r).equals(value ?? Buffer.alloc(0)) && value !== null : r === value);
  for (let waited = 0; !written((await node.deviceKeyRows([serial]))[0]?.keysWrapped); waited += 10) {
    if (waited > 10_000) throw new Error(`the node did not read ${serial}'s row again after the notification`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('relay times are hints: clampRx and max_relay_delay', () => {
  it('clamps rx into [now - window, now] and says when the claim was set aside', () => {
    const now = Date.UTC(2026, 10, 27, 12);
    expect(clampRx(now - 5, now, WINDOW)).toEqual({ bound: now - 5, source: 'relay' });
    expect(clampRx(now, now, WINDOW)).toEqual({ bound: now, source: 'relay' });
    expect(clampRx(now - WINDOW, now, WINDOW)).toEqual({ bound: now - WINDOW, source: 'relay' });
    expect(clampRx(now - WINDOW - 1, now, WINDOW)).toEqual({ bound: now - WINDOW, source: 'server' });
    expect(clampRx(0, now, WINDOW)).toEqual({ bound: now - WINDOW, source: 'server' });
    expect(clampRx(now + 1, now, WINDOW)).toEqual({ bound: now, source: 'server' });
    expect(clampRx(now - 1, now, 0)).toEqual({ bound: now, source: 'server' });
  });

  it('defaults to 7 days, in seconds, and names the setting when it is wrong', () => {
    expect(checkConfig({}).maxRelayDelay).toBe(604_800);
    expect(checkConfig({ max_relay_delay: 60 }).maxRelayDelay).toBe(60);
    expect(() => checkConfig({ max_relay_delay: -1 })).toThrow(ConfigError);
    expect(() => checkConfig({ max_relay_delay: '7d' })).toThrow(/^config: max_relay_delay \(seconds\) must be a whole number from 0 to 315360000, got "7d"$/);
    expect(() => checkConfig({ failed_auth: { ip: { per_second: 0, burst: 10 } } })).toThrow(/failed_auth\.ip\.per_second must be a whole number/);
    expect(() => checkConfig({ failed_auth: { address: null } })).toThrow(/failed_auth has an unknown setting "address" \(known: ip, serial\)/);
    expect(checkConfig({ failed_auth: false }).failedAuth).toEqual({ ip: null, serial: null });
  });
});

describe.each(BACKENDS)('the server edge on %s', (backend) => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let s: TestServer;
  let next = 0;
  const { lines: logs, stream } = logCapture((line) => JSON.parse(line) as Record<string, unknown>);
  const fresh = () => new SealingDevice(fleet.devices[next++]!);
  const at = (d: SealingDevice, frames: Uint8Array[], rx: number) => ({ serial: d.serial, frames: frames.map((frame) => ({ frame, rx })) });
  const post = (devices: ReturnType<typeof at>[]) => s.post(body('relay-a', s.clock.now, devices));
  const readings = async (serial: string) => (await s.app.inject({ url: `/v1/devices/${serial}/readings`, headers: s.auth })).json().readings as any[];

  beforeAll(async () => {
    db = await testDb(backend);
    storage = await db.open();
    fleet = makeFleet(24);
    s = await testServer(storage, fleet, { config: { maxRelayDelay: WINDOW_S, failedAuth: { ip: null, serial: null } }, logger: { level: 'info', stream } });
  });

  afterAll(() => closeServerFixture({ s, storage, db }));

  it('replays "rx": 0 on a genuine frame: the boot moves by at most the window and says its time rests on the server clock', async () => {
    const d = fresh();
    const honest = fresh();
    const S = s.clock.now;
    const boot = [d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 60, [{ channel: 1, value: 20 }]), d.sample(1, 90, [{ channel: 1, value: 21 }])];
    const hBoot = [honest.anchor(1, 0, ANCHOR_BOOT), honest.sample(1, 60, [{ channel: 1, value: 20 }])];
    s.clock.now = S + 100_000;
    await post([at(d, boot, S + 99_000), at(honest, hBoot, S + 99_000)]);
    const before = await readings(d.serial);
    expect(before.map((r) => [r.counter, r.time, r.time_source])).toEqual([
      [2, S + 69_000, 'relay'],
      [3, S + 99_000, 'relay'],
    ]);

    // The attack: the device's next genuine frame, relayed with rx 0 (1970).
    s.clock.now = S + 200_000;
    const attack = await post([at(d, [d.sample(1, 190, [{ channel: 1, value: 22 }])], 0), at(honest, [honest.sample(1, 190, [{ channel: 1, value: 22 }])], S + 199_000)]);
    expect(attack.status).toBe(200);
    expect(attack.json.devices.map((x: any) => x.accepted)).toEqual([1, 1]);
    const after = await readings(d.serial);
    // The estimate rests on the clamp: start = (now - window) - 190 s.
    const start = S + 200_000 - WINDOW - 190_000;
    expect(after.map((r) => [r.counter, r.time, r.time_source])).toEqual([
      [2, start + 60_000, 'server'],
      [3, start + 90_000, 'server'],
      [4, start + 190_000, 'server'],
    ]);
    for (const r of after.slice(0, 2)) {
      const old = before.find((b) => b.counter === r.counter)!;
      expect(old.time - r.time).toBeLessThanOrEqual(WINDOW);
      expect(r.time).toBeGreaterThan(YEAR_2026);
    }
    const stored = await storage.readings(d.serial, { limit: 10 });
    expect(stored.map((r) => r.timeSource)).toEqual(['server', 'server', 'server']);
    const csv = (await s.app.inject({ url: `/v1/devices/${d.serial}/readings?format=csv`, headers: s.auth })).body.trim().split('\n');
    expect(csv[0]!.endsWith(',time_source')).toBe(true);
    expect(csv.slice(1).every((l) => l.endsWith(',server'))).toBe(true);
    // The honest device of the same request keeps its relay-based times.
    expect((await readings(honest.serial)).map((r) => r.time_source)).toEqual(['relay', 'relay']);

    // Later honest frames cannot raise the estimate: it stays within the window, on the server's clock.
    s.clock.now = S + 300_000;
    await post([at(d, [d.sample(1, 290, [{ channel: 1, value: 23 }])], S + 299_500)]);
    const later = await readings(d.serial);
    expect(later.map((r) => r.time_source)).toEqual(['server', 'server', 'server', 'server']);
    expect(later[3].time).toBe(start + 290_000);
  });

  it('replays rx far in the future: an established boot stays put on the relay clock; a new boot gets the server clock, never later than received', async () => {
    const d = fresh();
    const S = s.clock.now;
    await post([at(d, [d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 30, [{ channel: 1, value: 1 }])], S - 1_000)]);
    const before = await readings(d.serial);
    // start = (S - 1 s) - 30 s from the sample, so its time is S - 1 s.
    expect(before.map((r) => [r.time, r.time_source])).toEqual([[S - 1_000, 'relay']]);

    const FAR = 8_640_000_000_000_000;
    s.clock.now = S + 60_000;
    await post([at(d, [d.sample(1, 59, [{ channel: 1, value: 2 }])], FAR)]);
    expect((await readings(d.serial)).map((r) => [r.time, r.time_source])).toEqual([
      [S - 1_000, 'relay'],
      [S + 28_000, 'relay'],
    ]);

    // A new boot seen only through a relay that claims the far future.
    s.clock.now = S + 120_000;
    await post([at(d, [d.anchor(2, 0, ANCHOR_BOOT), d.sample(2, 10, [{ channel: 1, value: 3 }])], FAR)]);
    const rows = await readings(d.serial);
    expect(rows[2]).toMatchObject({ boot: 2, time: S + 120_000, time_source: 'server' });
    const received = new Map((await storage.frames(d.serial)).map((f) => [f.counter, f.received]));
    for (const r of rows) expect(r.time).toBeLessThanOrEqual(received.get(r.counter)!);
  });

  it('keeps what a time rests on for samples stored before their anchor', async () => {
    const lying = fresh();
    const fair = fresh();
    const S = s.clock.now;
    const [la, ls] = [lying.anchor(1, 0, ANCHOR_BOOT), lying.sample(1, 30, [{ channel: 1, value: 1 }])];
    const [fa, fs] = [fair.anchor(1, 0, ANCHOR_BOOT), fair.sample(1, 30, [{ channel: 1, value: 1 }])];
    // Samples first: no anchor yet, so no time and no source.
    await post([at(lying, [ls], 0), at(fair, [fs], S - 500)]);
    expect((await readings(lying.serial)).map((r) => [r.time, r.time_source])).toEqual([[null, null]]);
    s.clock.now = S + 1_000;
    await post([at(lying, [la], S + 1_000), at(fair, [fa], S + 1_000)]);
    expect((await readings(lying.serial)).map((r) => [r.time, r.time_source])).toEqual([[S - WINDOW, 'server']]);
    expect((await readings(fair.serial)).map((r) => [r.time, r.time_source])).toEqual([[S - 500, 'relay']]);
  });

  it('stores every device key wrapped, opened only with the KEK from the ingest private key, and bound to its row', async () => {
    // testServer imported the fleet without the private key: the server wrapped every row before listening.
    expect(logs.some((l) => l.msg === 'device keys derived and wrapped for registry rows that had none' && l.wrapped === 24)).toBe(true);
    const kek = registryKek(fleet.ingest.privateFile.key, fleet.ingest.privateFile.id);
    for (const dev of fleet.devices) {
      const row = (await storage.device(dev.serial))!;
      expect(row.keysWrapped?.length).toBe(WRAPPED_LENGTH);
      expect(unwrapDeviceKeys(kek, row, row.keysWrapped!)).toEqual({ sealKey: dev.sealKey, nonceSalt: dev.nonceSalt });
      // Bound to serial, ingest key id and enc: the same blob under another row's identity opens nothing.
      const other = fleet.devices[(fleet.devices.indexOf(dev) + 1) % fleet.devices.length]!;
      expect(unwrapDeviceKeys(kek, { ...row, serial: other.serial }, row.keysWrapped!)).toBeUndefined();
      expect(unwrapDeviceKeys(kek, { ...row, enc: other.enc }, row.keysWrapped!)).toBeUndefined();
      expect(unwrapDeviceKeys(kek, { ...row, ingestKeyId: 'ik-0000000000000000' }, row.keysWrapped!)).toBeUndefined();
      for (let i = 0; i < WRAPPED_LENGTH; i++) {
        const flipped = row.keysWrapped!.slice();
        flipped[i]! ^= 0x01;
        expect(unwrapDeviceKeys(kek, row, flipped)).toBeUndefined();
      }
    }
    // Two wraps of the same keys differ (fresh nonce per row).
    const a = (await storage.device(fleet.devices[0]!.serial))!;
    const wrappedAgain = new Keyring([fleet.ingest.privateFile]).deriveAndWrap(a).wrapped;
    expect(Buffer.from(wrappedAgain).equals(Buffer.from(a.keysWrapped!))).toBe(false);
    expect(unwrapDeviceKeys(kek, a, wrappedAgain)).toEqual({ sealKey: fleet.devices[0]!.sealKey, nonceSalt: fleet.devices[0]!.nonceSalt });
  });

  it('wraps at import when the importer holds the private key; a row imported without it costs one derivation, on its first frame, stored in the same transaction', async () => {
    const withKey = Array.from({ length: 3 }, (_, i) => provisionDevice(fleet.ingest.publicFile.key, `SP-W${backend}${i}`));
    const o = await importManifest(storage, manifestFor(fleet, withKey, `B-W-${backend}`), {
      trusted: [fleet.factory.publicFile],
      ingestKeyIds: [fleet.ingest.publicFile.id],
      keyring: new Keyring([fleet.ingest.privateFile]),
    });
    expect(o).toMatchObject({ status: 'imported', added: 3, wrapped: 3 });
    for (const dev of withKey) expect((await storage.device(dev.serial))!.keysWrapped?.length).toBe(WRAPPED_LENGTH);

    // An operator machine with only the public key imports while the server runs.
    const late = Array.from({ length: 2 }, (_, i) => provisionDevice(fleet.ingest.publicFile.key, `SP-L${backend}${i}`));
    const o2 = await importManifest(storage, manifestFor(fleet, late, `B-L-${backend}`), { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.publicFile.id] });
    expect(o2).toMatchObject({ added: 2, wrapped: 0 });
    expect((await storage.device(late[0]!.serial))!.keysWrapped).toBeNull();

    const derive = vi.spyOn(s.app.keyring, 'deriveAndWrap');
    try {
      const d = new SealingDevice(late[0]!);
      const T = s.clock.now;
      const first = await post([at(d, [d.anchor(1, 0, ANCHOR_BOOT)], T)]);
      expect(first.json.devices[0]).toMatchObject({ accepted: 1, rejected: [] });
      expect(derive).toHaveBeenCalledTimes(1);
      const row = (await storage.device(d.serial))!;
      expect(unwrapDeviceKeys(registryKek(fleet.ingest.privateFile.key, fleet.ingest.privateFile.id), row, row.keysWrapped!)).toEqual({
        sealKey: late[0]!.sealKey,
        nonceSalt: late[0]!.nonceSalt,
      });
      // Out of the cache, the next frame is opened from the stored blob: no second derivation.
      s.app.keyring.forget(d.serial);
      const second = await post([at(d, [d.sample(1, 5, [{ channel: 1, value: 1 }])], T)]);
      expect(second.json.devices[0]).toMatchObject({ accepted: 1, rejected: [] });
      // Junk in the name of the other late device: one derivation for its row, then never again.
      const junk = { serial: late[1]!.serial, frames: [{ frame: new Uint8Array(randomBytes(20)), rx: T }] };
      await post([junk]);
      s.app.keyring.forget(late[1]!.serial);
      await post([junk]);
      expect(derive).toHaveBeenCalledTimes(2);
      expect((await storage.device(late[1]!.serial))!.keysWrapped?.length).toBe(WRAPPED_LENGTH);
    } finally {
      derive.mockRestore();
    }
  });

  it('rejects frames of a row whose wrapped keys were moved or altered, per frame with a reason and an error log without secrets, never a 5xx', async () => {
    const victim = fresh();
    const donor = fresh();
    const T = s.clock.now;
    const donorRow = (await storage.device(donor.serial))!;
    await writeRow(db, victim.serial, donorRow.keysWrapped, storage);
    s.app.keyring.forget(victim.serial);
    const moved = await post([at(victim, [victim.anchor(1, 0, ANCHOR_BOOT)], T)]);
    expect(moved.status).toBe(200);
    expect(moved.json.devices[0]).toEqual({ serial: victim.serial, ack: null, accepted: 0, duplicates: 0, rejected: [{ index: 0, reason: REASON_UNWRAP }] });

    const flipped = donorRow.keysWrapped!.slice();
    flipped[20]! ^= 0x80;
    await writeRow(db, donor.serial, flipped, storage);
    s.app.keyring.forget(donor.serial);
    const altered = await post([at(donor, [donor.anchor(1, 0, ANCHOR_BOOT)], T)]);
    expect(altered.status).toBe(200);
    expect(altered.json.devices[0].rejected).toEqual([{ index: 0, reason: REASON_UNWRAP }]);
    expect((await storage.frames(donor.serial)).length).toBe(0);

    // The attack the row binding stops: the donor's keys moved into the victim's row, and the donor's
    // genuine frames posted in the victim's name. They authenticate under the moved keys, so the
    // blob's tag is checked before anything is used: nothing stored, no ack.
    const donor2 = fresh();
    const donor2Row = (await storage.device(donor2.serial))!;
    const victim2 = fresh();
    await writeRow(db, victim2.serial, donor2Row.keysWrapped, storage);
    s.app.keyring.forget(victim2.serial);
    const forged = await post([{ serial: victim2.serial, frames: [donor2.anchor(1, 0, ANCHOR_BOOT), donor2.sample(1, 5, [{ channel: 1, value: 9 }])].map((frame) => ({ frame, rx: T })) }]);
    expect(forged.json.devices[0]).toEqual({
      serial: victim2.serial,
      ack: null,
      accepted: 0,
      duplicates: 0,
      rejected: [
        { index: 0, reason: REASON_UNWRAP },
        { index: 1, reason: REASON_UNWRAP },
      ],
    });
    expect(await storage.frames(victim2.serial)).toEqual([]);

    const errors = logs.filter((l) => l.msg === 'device keys unavailable: its frames are rejected');
    expect(errors.map((l) => l.serial)).toEqual(expect.arrayContaining([victim.serial, donor.serial]));
    const text = JSON.stringify(logs);
    const kek = registryKek(fleet.ingest.privateFile.key, fleet.ingest.privateFile.id);
    for (const secret of [kek, fleet.ingest.privateFile.key, donor.keys.sealKey, donor.keys.nonceSalt, victim.keys.sealKey, donorRow.keysWrapped!]) {
      expect(text).not.toContain(Buffer.from(secret).toString('hex'));
      expect(text).not.toContain(Buffer.from(secret).toString('base64'));
    }
  });
});

describe('sealpost registry import and wrapped keys', () => {
  it('wraps every device when given the private key file, older unwrapped rows included', async () => {
    const fleet = makeFleet(5);
    const first = { ...fleet, devices: fleet.devices.slice(0, 2) };
    const files = writeFleetFiles({ ...first, manifest: manifestFor(fleet, first.devices, 'B-0000') });
    const second = join(files.dir, 'B-0001.json');
    writeFileSync(second, manifestFor(fleet, fleet.devices.slice(2), 'B-0001'));
    const run = async (...args: string[]) => {
      const out: string[] = [];
      const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
      try {
        expect(await main(['registry', 'import', ...args, '--db', files.db, '--trust', files.factoryPub])).toBe(0);
      } finally {
        log.mockRestore();
      }
      return out;
    };
    // An operator machine with the public key only, then one with the private key.
    expect((await run(files.manifest, '--ingest-key', files.ingestPub))[1]).toMatch(/^2 of them are stored without wrapped keys/);
    expect(await run(second, '--ingest-key', files.ingestKey)).toEqual([
      `imported batch B-0001: 3 devices registered (board puckjs, frame size 20, ingest key ${fleet.ingest.publicFile.id}, signed by ${fleet.factory.publicFile.id})`,
      'also wrapped the keys of 2 registry rows imported earlier without them',
    ]);
    const storage = await openStorage(files.db);
    try {
      const kek = registryKek(fleet.ingest.privateFile.key, fleet.ingest.privateFile.id);
      for (const dev of fleet.devices) {
        const row = (await storage.device(dev.serial))!;
        expect(unwrapDeviceKeys(kek, row, row.keysWrapped!)).toEqual({ sealKey: dev.sealKey, nonceSalt: dev.nonceSalt });
      }
    } finally {
      await storage.close();
      rmSync(files.dir, { recursive: true, force: true });
    }
  });
});

describe('failed authentications', () => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let s: TestServer;
  const { lines: logs, stream } = logCapture((line) => JSON.parse(line) as Record<string, unknown>);
  const T = Date.UTC(2026, 10, 27, 12, 0, 0);
  const junkFor = (serial: string, n: number) => ({ serial, frames: Array.from({ length: n }, () => ({ data: b64(randomBytes(20)), rx: T })) });
  const send = (remoteAddress: string, devices: unknown[]) =>
    s.app.inject({ method: 'POST', url: '/v1/uplink', remoteAddress, payload: { relay: { id: 'relay-j', time: T }, devices } as object });

  beforeAll(async () => {
    db = await testDb('sqlite');
    storage = await db.open();
    fleet = makeFleet(4);
    s = await testServer(storage, fleet, {
      config: { failedAuth: { ip: { perSecond: 1, burst: 150 }, serial: { perSecond: 1, burst: 50 } } },
      logger: { level: 'warn', stream },
    });
  });

  afterAll(() => closeServerFixture({ s, storage, db }));

  it('answers an address that keeps sending junk with 429 and Retry-After before any database or crypto work', async () => {
    const victim = fleet.devices[0]!.serial;
    const first = await send('203.0.113.7', [junkFor(victim, 100)]);
    expect(first.statusCode).toBe(200);
    expect(first.json().devices[0].rejected.filter((r: any) => r.reason === 'frame authentication failed').length).toBe(100);
    expect((await send('203.0.113.7', [junkFor(victim, 100)])).statusCode).toBe(200);

    const transaction = vi.spyOn(storage, 'transaction');
    const keysFor = vi.spyOn(s.app.keyring, 'keysFor');
    try {
      const third = await send('203.0.113.7', [junkFor(victim, 100)]);
      expect(third.statusCode).toBe(429);
      expect(third.json().message).toMatch(/^rate limit for frames failing authentication from address 203\.0\.113\.7 exceeded; retry after \d+ s$/);
      // 150 tokens, 200 failed frames: 50 in debt at 1 per second.
      expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(50);
      expect(Number(third.headers['retry-after'])).toBeLessThanOrEqual(52);
      expect(transaction).not.toHaveBeenCalled();
      expect(keysFor).not.toHaveBeenCalled();
    } finally {
      transaction.mockRestore();
      keysFor.mockRestore();
    }
    // Other addresses are not affected.
    expect((await send('203.0.113.8', [junkFor(fleet.devices[1]!.serial, 1)])).statusCode).toBe(200);
  });

  it('never silences a genuine device whose serial is attacked: it alerts, and throttles only the failing sources', async () => {
    const victim = new SealingDevice(fleet.devices[2]!);
    // Many addresses, each under its own budget, all naming the victim's serial.
    for (let i = 1; i <= 3; i++) expect((await send(`198.51.100.${i}`, [junkFor(victim.serial, 40)])).statusCode).toBe(200);
    const alerts = logs.filter((l) => l.serial === victim.serial && String(l.msg).startsWith('frames naming this serial keep failing authentication'));
    expect(alerts.length).toBe(1);
    expect(alerts[0]).toMatchObject({ level: 40 });
    // The device's own relay still gets through, with an ack, many times over.
    for (let i = 0; i < 5; i++) {
      const r = await send('192.0.2.50', [{ serial: victim.serial, frames: [{ data: b64(victim.sample(0, i, [{ channel: 1, value: i }])), rx: T }] }]);
      expect(r.statusCode).toBe(200);
      expect(r.json().devices[0]).toMatchObject({ accepted: 1, rejected: [] });
    }
  });

  it('counts an IPv6 source by its /64', async () => {
    expect(addressKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
    const serial = fleet.devices[3]!.serial;
    expect((await send('2001:db8:1:2::1', [junkFor(serial, 160)])).statusCode).toBe(200);
    expect((await send('2001:db8:1:2::ffff', [junkFor(serial, 1)])).statusCode).toBe(429);
    expect((await send('2001:db8:1:3::1', [junkFor(serial, 1)])).statusCode).toBe(200);
  });
});
