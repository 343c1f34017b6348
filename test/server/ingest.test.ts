// The ingest server against both storage backends: the same suite runs on
// SQLite and on PostgreSQL (a fresh schema per run, dropped afterwards).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import {
  ANCHOR_BOOT,
  ANCHOR_CONNECT,
  AuthenticationError,
  openFrame,
  recoverDeviceKeys,
  newFactoryKey,
  newIngestKey,
  provisionDevice,
  sealFrame,
  toHex,
  verifyAck,
  type DeviceKeys,
} from '../../protocol/index.js';
import { NO_RATE_LIMIT, buildServer, importManifest, makeConfig, revokeDevice, type ReadingEvent, type RetimeEvent, type Storage } from '../../server/index.js';
import { WRAPPED_LENGTH, registryKek, unwrapDeviceKeys } from '../../server/keys.js';
import { MIGRATIONS } from '../../server/storage/migrations.js';
import { BACKENDS, SealingDevice, b64, body, closeServerFixture, manifestFor, openServerFixture, type Fleet, type TestDb, type TestServer } from '../helpers/server.js';

const ackN = (keys: DeviceKeys, ack: string | null): number | null => (ack === null ? null : verifyAck(keys, new Uint8Array(Buffer.from(ack, 'base64'))));

describe.each(BACKENDS)('ingest server on %s', (backend) => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let s: TestServer;
  let next = 0;
  /** A device of the fleet nobody else in this file uses. */
  const fresh = (frameSize = 20) => new SealingDevice(fleet.devices[next++]!, frameSize);
  const post = (relayTime: number, devices: { serial: string; frames: { frame: Uint8Array; rx: number }[] }[]) => s.post(body('relay-a', relayTime, devices));
  const at = (d: SealingDevice, frames: Uint8Array[], rx: number) => ({ serial: d.serial, frames: frames.map((frame) => ({ frame, rx })) });

  beforeAll(async () => {
    ({ db, storage, fleet, s } = await openServerFixture(backend));
  });
  afterAll(() => closeServerFixture({ s, storage, db }));

  it('migrates to the latest version and imports the fleet', async () => {
    expect(await storage.migrations()).toEqual(MIGRATIONS.map((m) => m.version));
    expect((await storage.devices()).length).toBe(24);
    expect((await storage.batches())[0]).toMatchObject({ batch: 'B-0001', devices: 24, factoryKeyId: fleet.factory.publicFile.id });
  });

  it('stores frames, answers with an ack the device verifies, and counts replays as duplicates without storing twice', async () => {
    const d = fresh();
    const now = s.clock.now;
    const frames = [d.anchor(1, 5, ANCHOR_BOOT), d.sample(1, 10, [{ channel: 1, value: 21.5 }]), d.sample(1, 20, [{ channel: 2, value: 87.5 }])];
    const first = await post(now, [at(d, frames, now)]);
    expect(first.status).toBe(200);
    expect(first.json.devices[0]).toMatchObject({ serial: d.serial, accepted: 3, duplicates: 0, rejected: [] });
    expect(ackN(d.keys, first.json.devices[0].ack)).toBe(3);

    const again = await post(now, [at(d, [...frames, frames[1]!], now)]);
    expect(again.json.devices[0]).toMatchObject({ accepted: 0, duplicates: 4, rejected: [] });
    expect(ackN(d.keys, again.json.devices[0].ack)).toBe(3);
    expect((await storage.frames(d.serial)).map((f) => f.counter)).toEqual([1, 2, 3]);
    expect((await storage.readings(d.serial, { limit: 100 })).length).toBe(2);
    const [summary] = await storage.devices(d.serial);
    expect(summary).toMatchObject({ frames: 3, settled: 3, battery: 87.5 });

    const stored = (await storage.frames(d.serial))[1]!;
    expect(toHex(stored.frame)).toBe(toHex(frames[1]!));
    expect(stored).toMatchObject({ type: 1, relay: 'relay-a', rx: now, received: now });
    expect(JSON.parse(stored.content)).toMatchObject({ type: 'sample', boot8: 1, uptime24: 10 });
  });

  it('rejects every single-bit flip of a valid frame, per frame, with a 200 response', async () => {
    const d = fresh();
    const valid = [d.anchor(3, 1, ANCHOR_BOOT), d.sample(3, 2, [{ channel: 1, value: -4.25 }])];
    const flipped: Uint8Array[] = [];
    for (const f of valid) {
      for (let bit = 0; bit < f.length * 8; bit++) {
        const m = f.slice();
        m[bit >> 3]! ^= 0x80 >> (bit & 7);
        flipped.push(m);
      }
    }
    const r = await post(s.clock.now, [at(d, flipped, s.clock.now)]);
    expect(r.status).toBe(200);
    const dev = r.json.devices[0];
    expect(dev.accepted).toBe(0);
    expect(dev.duplicates).toBe(0);
    expect(dev.ack).toBeNull();
    expect(dev.rejected.length).toBe(flipped.length);
    for (const j of dev.rejected) expect(['frame authentication failed', 'counter 0 is invalid']).toContain(j.reason);
    expect(await storage.frames(d.serial)).toEqual([]);
    const ok = await post(s.clock.now, [at(d, valid, s.clock.now)]);
    expect(ok.json.devices[0].accepted).toBe(2);
  });

  it('rejects unknown serials, bad base64, wrong sizes, reused counters and revoked devices per frame, never with a 5xx', async () => {
    const d = fresh();
    const good = d.sample(0, 1, [{ channel: 1, value: 20 }]);
    const other = sealFrame(d.keys, 1, new Uint8Array(8).fill(7), 20);
    const now = s.clock.now;
    const r = await s.post({
      relay: { id: 'relay-a', time: now },
      devices: [
        { serial: d.serial, frames: [good, good.subarray(0, 19), new Uint8Array([...good, 0]), other].map((f) => ({ data: b64(f), rx: now })) },
        { serial: d.serial, frames: [{ data: '!!!!', rx: now }, { data: 'abc', rx: now }, { data: '', rx: now }] },
        { serial: 'NO-SUCH-DEVICE', frames: [{ data: b64(good), rx: now }] },
        { serial: 'not a serial ✓', frames: [{ data: b64(good), rx: now }] },
      ],
    });
    expect(r.status).toBe(200);
    const [a, b, c, e] = r.json.devices;
    expect(a.accepted).toBe(1);
    expect(a.rejected).toEqual([
      { index: 1, reason: 'wrong frame size: expected 20 bytes, got 19' },
      { index: 2, reason: 'wrong frame size: expected 20 bytes, got 21' },
      { index: 3, reason: 'counter reused with different content' },
    ]);
    expect(b.rejected).toEqual([
      { index: 0, reason: 'data is not valid base64' },
      { index: 1, reason: 'data is not valid base64' },
      { index: 2, reason: 'wrong frame size: expected 20 bytes, got 0' },
    ]);
    expect(a.ack).toBe(b.ack);
    expect(c).toEqual({ serial: 'NO-SUCH-DEVICE', ack: null, accepted: 0, duplicates: 0, rejected: [{ index: 0, reason: 'unknown serial' }] });
    expect(e.rejected).toEqual([{ index: 0, reason: 'unknown serial' }]);

    // Non-canonical base64 (bits set under the padding, protocol/base64.ts)
    // is refused with the same reason, though Buffer would decode it to the
    // stored frame's bytes.
    const text = b64(good);
    const sloppy = text.slice(0, -2) + String.fromCharCode(text.charCodeAt(text.length - 2) + 1) + '=';
    expect(Buffer.from(sloppy, 'base64')).toEqual(Buffer.from(good));
    const loose = await s.post({ relay: { id: 'relay-a', time: now }, devices: [{ serial: d.serial, frames: [{ data: sloppy, rx: now }] }] });
    expect(loose.json.devices[0]).toMatchObject({ accepted: 0, duplicates: 0, rejected: [{ index: 0, reason: 'data is not valid base64' }] });

    // A reused counter arriving in a later request is caught against the stored frame.
    const later = await post(now, [at(d, [other], now)]);
    expect(later.json.devices[0].rejected).toEqual([{ index: 0, reason: 'counter reused with different content' }]);

    expect(s.app.keyring.cached(d.serial)).toBe(true);
    expect(await revokeDevice(storage, d.serial)).toBe('revoked');
    expect(await revokeDevice(storage, d.serial)).toBe('already revoked');
    const revoked = await post(now, [at(d, [d.sample(0, 2, [])], now)]);
    expect(revoked.json.devices[0]).toEqual({ serial: d.serial, ack: null, accepted: 0, duplicates: 0, rejected: [{ index: 0, reason: 'device revoked' }] });
    expect(s.app.keyring.cached(d.serial)).toBe(false);
    expect((await storage.frames(d.serial)).length).toBe(1);
  });

  it('settles counters by stored frames, gap reports and boot anchors; late frames shrink gaps', async () => {
    const d = fresh();
    const now = s.clock.now;
    const f = [d.anchor(7, 1, ANCHOR_BOOT)]; // 1
    for (let i = 2; i <= 5; i++) f.push(d.sample(7, i, [{ channel: 1, value: i }])); // 2..5
    const send = async (counters: number[]) => {
      const r = await post(now, [at(d, counters.map((c) => f[c - 1]!), now)]);
      return ackN(d.keys, r.json.devices[0].ack);
    };
    expect(await send([1, 2, 3, 5])).toBe(3); // 4 missing
    f.push(d.gap(4, 1)); // 6: the device dropped 4
    expect(await send([6])).toBe(6);
    let gaps = await s.app.inject({ url: `/v1/devices/${d.serial}/gaps`, headers: s.auth });
    expect(gaps.json().gaps).toEqual([{ first: 4, last: 4, count: 1, kind: 'outbox-overflow', detected_at: now }]);

    // Frame 4 turns up after all (another relay had it): stored, and the gap closes.
    expect(await send([4])).toBe(6);
    gaps = await s.app.inject({ url: `/v1/devices/${d.serial}/gaps`, headers: s.auth });
    expect(gaps.json().gaps).toEqual([]);

    // Power loss: 7..9 never arrive; the boot anchor at 10 settles them.
    for (let i = 7; i <= 9; i++) f.push(d.sample(7, 10 + i, [{ channel: 1, value: i }]));
    f.push(d.anchor(8, 0, ANCHOR_BOOT)); // 10
    f.push(d.sample(8, 3, [{ channel: 1, value: 11 }])); // 11
    f.push(d.sample(8, 4, [{ channel: 1, value: 12 }])); // 12
    f.push(d.gap(14, 2)); // 13: a gap report ahead of the watermark
    expect(await send([8, 11, 13])).toBe(6);
    expect(await send([10])).toBe(11);
    gaps = await s.app.inject({ url: `/v1/devices/${d.serial}/gaps`, headers: s.auth });
    expect(gaps.json().gaps.map((g: any) => [g.first, g.last, g.kind])).toEqual([
      [7, 7, 'power-loss'],
      [9, 9, 'power-loss'],
      [14, 15, 'outbox-overflow'],
    ]);
    expect(await send([12])).toBe(15);
    f.push(d.sample(8, 20, [])); // 14, arrives although reported lost
    expect(await send([14])).toBe(15);
    gaps = await s.app.inject({ url: `/v1/devices/${d.serial}/gaps`, headers: s.auth });
    expect(gaps.json().gaps.map((g: any) => [g.first, g.last])).toEqual([
      [7, 7],
      [9, 9],
      [15, 15],
    ]);
    const [summary] = await storage.devices(d.serial);
    expect(summary).toMatchObject({ settled: 15, gaps: 3, lost: 3, frames: 12 });
  });

  it('maps uptime to wall time: unknown until an anchor arrives, improved by better bounds, never after the server received the frame', async () => {
    const d = fresh();
    const retimes: RetimeEvent[] = [];
    const readings: ReadingEvent[] = [];
    const onRetime = (e: RetimeEvent) => retimes.push(e);
    const onReading = (e: ReadingEvent) => readings.push(e);
    s.app.events.on('retime', onRetime);
    s.app.events.on('reading', onReading);
    try {
      const S = s.clock.now; // the boot's true start
      const anchor = d.anchor(2, 50, ANCHOR_BOOT); // 1
      const c2 = d.sample(2, 100, [{ channel: 1, value: 20 }]);
      const c3 = d.sample(2, 200, [{ channel: 8, value: 40.5 }]);
      const c4 = d.sample(2, 450, [{ channel: 1, value: 22 }]);

      // Samples first, relay clock 5 s fast: no anchor yet, so no time.
      s.clock.now = S + 300_000;
      await post(S, [at(d, [c2, c3], S + 305_000)]);
      let rows = await storage.readings(d.serial, { limit: 10 });
      expect(rows.map((r) => r.time)).toEqual([null, null]);
      expect(readings.map((r) => r.time)).toEqual([null, null]);

      // The anchor arrives: start = min over frames of min(rx, server time) - uptime.
      s.clock.now = S + 400_000;
      const ack = await post(S, [at(d, [anchor], S + 399_000)]);
      expect(ackN(d.keys, ack.json.devices[0].ack)).toBe(3);
      rows = await storage.readings(d.serial, { limit: 10 });
      expect(rows.map((r) => [r.counter, r.boot, r.uptime, r.time])).toEqual([
        [2, 2, 100, S + 200_000],
        [3, 2, 200, S + 300_000],
      ]);
      expect(retimes).toEqual([{ serial: d.serial, boot: 2, start: S + 100_000 }]);

      // A promptly relayed frame gives a better (smaller) estimate: the whole boot moves.
      s.clock.now = S + 500_000;
      await post(S, [at(d, [c4], S + 450_500)]);
      rows = await storage.readings(d.serial, { limit: 10 });
      expect(rows.map((r) => r.time)).toEqual([S + 100_500, S + 200_500, S + 450_500]);
      expect(retimes[1]).toEqual({ serial: d.serial, boot: 2, start: S + 500 });
      const received = new Map((await storage.frames(d.serial)).map((f) => [f.counter, f.received]));
      for (const r of rows) expect(r.time!).toBeLessThanOrEqual(received.get(r.counter)!);
      expect(readings.length).toBe(3);
      expect(readings[2]).toMatchObject({ serial: d.serial, counter: 4, name: 'temperature', unit: '°C', value: 22, time: S + 450_500, boot: 2, uptime: 450 });
    } finally {
      s.app.events.off('retime', onRetime);
      s.app.events.off('reading', onReading);
    }
  });

  it('places samples across reboots and uptime wraps by the latest anchor of their boot', async () => {
    const d = fresh();
    const T = s.clock.now;
    const frames = [
      d.anchor(1, 0, ANCHOR_BOOT),
      d.sample(1, 60, [{ channel: 1, value: 1 }]),
      d.anchor(2, 0, ANCHOR_BOOT),
      d.sample(2, 30, [{ channel: 1, value: 2 }]),
      d.anchor(2, 16_777_200, ANCHOR_CONNECT),
      d.sample(2, 16_777_230, [{ channel: 1, value: 3 }]), // uptime24 wraps to 14
    ];
    await post(T, [at(d, frames, T)]);
    const rows = await storage.readings(d.serial, { limit: 10 });
    expect(rows.map((r) => [r.boot, r.uptime])).toEqual([
      [1, 60],
      [2, 30],
      [2, 16_777_230],
    ]);
  });

  it('serves devices, readings (JSON and CSV, ISO or ms bounds) and gaps, with 400 and 404 that say why', async () => {
    const d = fresh();
    const T = s.clock.now;
    await post(T, [at(d, [d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 10, [{ channel: 2, value: 50 }]), d.sample(1, 20, [{ channel: 2, value: 49.5 }]), d.sample(1, 20, [{ channel: 3, value: 3.1 }])], T + 30_000)]);
    const list = (await s.app.inject({ url: '/v1/devices', headers: s.auth })).json().devices;
    expect(list.find((x: any) => x.serial === d.serial)).toMatchObject({ board: 'puckjs', status: 'active', battery: 49.5, frames: 4, settled: 4, gaps: 0, last_seen: T });
    const one = await s.app.inject({ url: `/v1/devices/${d.serial}`, headers: s.auth });
    expect(one.json()).toMatchObject({ serial: d.serial, frames: 4 });

    const all = (await s.app.inject({ url: `/v1/devices/${d.serial}/readings`, headers: s.auth })).json();
    expect(all.readings.map((r: any) => [r.counter, r.name, r.value, r.time])).toEqual([
      [2, 'battery', 50, T - 10_000],
      [3, 'battery', 49.5, T],
      [4, 'battery_voltage', 3.1, T],
    ]);
    const iso = new Date(T - 5_000).toISOString();
    const from = (await s.app.inject({ url: `/v1/devices/${d.serial}/readings?from=${iso}`, headers: s.auth })).json();
    expect(from.readings.length).toBe(2);
    expect(from.readings.every((r: any) => r.time >= T - 5_000)).toBe(true);
    const to = (await s.app.inject({ url: `/v1/devices/${d.serial}/readings?to=${T - 5_000}&limit=5`, headers: s.auth })).json();
    expect(to.readings.map((r: any) => r.counter)).toEqual([2]);
    const csv = await s.app.inject({ url: `/v1/devices/${d.serial}/readings?format=csv`, headers: s.auth });
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    const lines = csv.body.trim().split('\n');
    expect(lines[0]).toBe('serial,counter,idx,time,time_ms,boot,uptime,channel,name,unit,value,time_source');
    expect(lines[3]).toBe(`${d.serial},4,0,${new Date(T).toISOString()},${T},1,20,3,battery_voltage,V,3.1,server`);

    const bad = async (url: string) => (await s.app.inject({ url, headers: s.auth })).json();
    expect(await bad(`/v1/devices/${d.serial}/readings?from=yesterday`)).toMatchObject({ statusCode: 400, message: expect.stringMatching(/^querystring\/from must be an ISO 8601 time/) });
    expect((await bad(`/v1/devices/${d.serial}/readings?from=2026-11-27T10:00:00`)).statusCode).toBe(400);
    expect((await bad(`/v1/devices/${d.serial}/readings?from=${T}&to=${T - 1}`)).message).toBe('querystring/from must not be later than querystring/to');
    expect((await bad(`/v1/devices/${d.serial}/readings?format=xml`)).message).toBe('querystring/format must be "json" or "csv"');
    expect((await bad(`/v1/devices/${d.serial}/readings?limit=0`)).statusCode).toBe(400);
    expect(await bad('/v1/devices/NOPE/readings')).toEqual({ error: 'Not Found', message: 'no device with serial "NOPE" is registered', statusCode: 404 });
    expect((await bad('/v1/devices/NOPE/gaps')).statusCode).toBe(404);
    expect((await bad('/v1/devices/NOPE')).statusCode).toBe(404);
    expect((await bad('/v2/nothing')).statusCode).toBe(404);
  });

  it('refuses malformed bodies with 400 naming the field, oversized ones with 413', async () => {
    const d = fresh();
    const frame = { data: b64(d.sample(0, 1, [])), rx: 1 };
    const cases: [unknown, string][] = [
      [{ relay: { id: 'r', time: 1 }, devices: [{ serial: d.serial, frames: [frame, frame, frame, { data: 123, rx: 1 }] }] }, 'body/devices/0/frames/3/data must be a base64 string'],
      [{ devices: [] }, 'body/relay is required'],
      [{ relay: { id: 'r', time: 1 }, devices: [{ serial: d.serial, frames: [{ data: 'AAAA', rx: -1 }] }] }, 'body/devices/0/frames/0/rx must be a time in milliseconds since 1970 (an integer from 0 to 8640000000000000)'],
      [{ relay: { id: 'r', time: 1.5 }, devices: [] }, 'body/relay/time must be a time in milliseconds since 1970 (an integer from 0 to 8640000000000000)'],
      [{ relay: { id: 'two words', time: 1 }, devices: [] }, 'body/relay/id must be 1 to 64 printable ASCII characters without spaces'],
      [{ relay: { id: 'r', time: 1 }, devices: [{ frames: [] }] }, 'body/devices/0/serial is required'],
      [{ relay: { id: 'r', time: 1 }, devices: {} }, 'body/devices must be an array of devices'],
      [{ relay: { id: 'r', time: 1 }, devices: [{ serial: 'x', frames: [{ data: 'A'.repeat(404), rx: 1 }] }] }, 'body/devices/0/frames/0/data must be a base64 string of at most 400 characters (a frame is at most 244 bytes)'],
      [{ relay: { id: 'r', time: 1 }, devices: Array.from({ length: 101 }, () => ({ serial: 'x', frames: [] })) }, 'body/devices must hold at most 100 devices'],
      [[1, 2], 'body must be an object'],
    ];
    for (const [payload, message] of cases) {
      const r = await s.post(payload);
      expect(r.status, message).toBe(400);
      expect(r.json).toEqual({ error: 'Bad Request', message, statusCode: 400 });
    }
    const notJson = await s.app.inject({ method: 'POST', url: '/v1/uplink', headers: { 'content-type': 'application/json' }, payload: '{"relay":' });
    expect(notJson.statusCode).toBe(400);
    const huge = await s.app.inject({ method: 'POST', url: '/v1/uplink', headers: { 'content-type': 'application/json' }, payload: `{"pad":"${'x'.repeat(1_100_000)}"}` });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().statusCode).toBe(413);
  });

  it('limits frames per request (413) and rate-limits per address in requests and frames, whatever relay.id says (429 with Retry-After)', async () => {
    const limited = await buildServer({
      config: makeConfig({
        logLevel: 'silent',
        limits: { bodyBytes: 1_048_576, devicesPerRequest: 100, framesPerDevice: 500, framesPerRequest: 10, pageMax: 1000 },
        rateLimit: { address: { requests: { perSecond: 1, burst: 3 }, frames: { perSecond: 1, burst: 12 } }, relayKey: { requests: null, frames: null } },
      }),
      ingestKeys: [fleet.ingest.privateFile],
      storage,
      logger: false,
    });
    try {
      const d = fresh();
      const frames = Array.from({ length: 11 }, (_, i) => ({ data: b64(d.sample(0, i, [])), rx: 1 }));
      const req = (relay: string, n: number, ip = '10.0.0.1') =>
        limited.inject({ method: 'POST', url: '/v1/uplink', remoteAddress: ip, payload: { relay: { id: relay, time: 1 }, devices: [{ serial: d.serial, frames: frames.slice(0, n) }] } });
      const big = await req('relay-1', 11);
      expect(big.statusCode).toBe(413);
      expect(big.json().message).toBe('the request carries 11 frames; the limit is 10 per request');
      expect((await req('relay-1', 10)).statusCode).toBe(200);
      const slow = await req('relay-2', 10); // a new relay id: same address, same buckets
      expect(slow.statusCode).toBe(429);
      expect(slow.headers['retry-after']).toBe('8');
      expect(slow.json().message).toBe('rate limit for address 10.0.0.1 exceeded (1 frames per second, bursts of 12); retry after 8 s');
      const requests = await req('relay-3', 1); // the address has spent its 3 requests
      expect(requests.statusCode).toBe(429);
      expect(requests.json().message).toMatch(/^rate limit for address 10\.0\.0\.1 exceeded \(1 requests per second, bursts of 3\); retry after 1 s$/);
      const other = await req('relay-2', 1, '10.0.0.2');
      expect(other.statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('refuses tampered, unsigned, foreign-key and conflicting manifests without changing anything; re-import is a no-op', async () => {
    const before = JSON.stringify(await storage.devices());
    const trusted = [fleet.factory.publicFile];
    const ingestKeyIds = [fleet.ingest.privateFile.id];
    const extra = [provisionDevice(fleet.ingest.publicFile.key, 'SP-NEW-1'), provisionDevice(fleet.ingest.publicFile.key, 'SP-NEW-2')];
    const good = manifestFor(fleet, extra, 'B-0002');
    const doc = JSON.parse(good);
    const tampered = JSON.stringify({ ...doc, body: doc.body.replace('SP-NEW-2', 'SP-NEW-3') });
    const unsigned = JSON.stringify({ format: doc.format, body: doc.body });
    const otherIngest = newIngestKey();
    const foreign = manifestFor({ ...fleet, ingest: otherIngest }, [provisionDevice(otherIngest.publicFile.key, 'SP-NEW-4')], 'B-0003');
    const clash = manifestFor(fleet, [provisionDevice(fleet.ingest.publicFile.key, 'SP-NEW-5'), provisionDevice(fleet.ingest.publicFile.key, fleet.devices[0]!.serial)], 'B-0004');
    const untrusted = manifestFor({ ...fleet, factory: newFactoryKey() }, extra, 'B-0005');

    await expect(importManifest(storage, tampered, { trusted, ingestKeyIds })).rejects.toThrow(/manifest refused, nothing changed: .*signature does not verify/);
    await expect(importManifest(storage, unsigned, { trusted, ingestKeyIds })).rejects.toThrow(/unsigned or incomplete/);
    await expect(importManifest(storage, untrusted, { trusted, ingestKeyIds })).rejects.toThrow(/which this server does not trust/);
    await expect(importManifest(storage, foreign, { trusted, ingestKeyIds })).rejects.toThrow(
      new RegExp(`sealed to ingest key ${otherIngest.publicFile.id}, which this server does not hold`),
    );
    await expect(importManifest(storage, clash, { trusted, ingestKeyIds })).rejects.toThrow(
      `manifest refused, nothing changed: 1 serial(s) are already registered with a different enc: ${fleet.devices[0]!.serial} (batch B-0001)`,
    );
    await expect(importManifest(storage, '{"format":"sealpost-manifest/1"', { trusted, ingestKeyIds })).rejects.toThrow(/is not JSON/);
    expect(JSON.stringify(await storage.devices())).toBe(before);
    expect((await storage.batches()).map((b) => b.batch)).toEqual(['B-0001']);

    expect(await importManifest(storage, good, { trusted, ingestKeyIds })).toMatchObject({ status: 'imported', added: 2, present: 0 });
    expect(await importManifest(storage, good, { trusted, ingestKeyIds })).toMatchObject({ status: 'unchanged' });
    expect(await importManifest(storage, fleet.manifest, { trusted, ingestKeyIds })).toMatchObject({ status: 'unchanged' });
    const sameDevicesNewBatch = manifestFor(fleet, extra, 'B-0002');
    expect(await importManifest(storage, sameDevicesNewBatch, { trusted, ingestKeyIds })).toMatchObject({ status: 'unchanged' });
    expect((await storage.devices()).length).toBe(26);
  });

  it('holds no secret: the stored data and the manifest open no frame; the ingest private key does', async () => {
    const d = fresh();
    const T = s.clock.now;
    await post(T, [at(d, [d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 1, [{ channel: 1, value: 1 }])], T)]);
    const row = (await storage.device(d.serial))!;
    const frames = await storage.frames(d.serial);
    const everything = JSON.stringify({
      devices: await storage.devices(),
      row: { ...row, enc: toHex(row.enc), keysWrapped: toHex(row.keysWrapped!) },
      frames: frames.map((f) => ({ ...f, frame: toHex(f.frame) })),
      readings: await storage.readings(d.serial, { limit: 100 }),
      batches: await storage.batches(),
      manifest: fleet.manifest,
    }).toLowerCase();
    const secrets = [d.keys.sealKey, d.keys.nonceSalt, fleet.ingest.privateFile.key];
    for (const secret of secrets) {
      expect(everything).not.toContain(toHex(secret));
      expect(everything).not.toContain(Buffer.from(secret).toString('base64').toLowerCase());
    }
    if (backend === 'sqlite') {
      for (const file of [db.url, `${db.url}-wal`]) {
        if (!existsSync(file)) continue;
        const bytes = readFileSync(file);
        for (const secret of secrets) expect(bytes.indexOf(Buffer.from(secret))).toBe(-1);
      }
    }
    // Everything public, used every way it could stand in for a key: nothing opens.
    const guesses: DeviceKeys[] = [
      { sealKey: row.enc.slice(0, 16), nonceSalt: row.enc.slice(16, 24) },
      { sealKey: row.enc.slice(16, 32), nonceSalt: row.enc.slice(0, 8) },
      recoverDeviceKeys(fleet.ingest.publicFile.key, row.enc, d.serial),
      recoverDeviceKeys(newIngestKey().privateFile.key, row.enc, d.serial),
    ];
    // The wrapped keys (docs/server.md, "Wrapped device keys"): every public value as the
    // key-encryption key, or as its HKDF input, opens nothing; the blob itself is no key either.
    const wrapped = row.keysWrapped!;
    expect(wrapped.length).toBe(WRAPPED_LENGTH);
    const keyId = fleet.ingest.privateFile.id;
    const kekGuesses = [
      registryKek(fleet.ingest.publicFile.key, keyId),
      registryKek(row.enc, keyId),
      registryKek(newIngestKey().privateFile.key, keyId),
      registryKek(new Uint8Array(32), keyId),
      Buffer.from(fleet.ingest.publicFile.key),
      Buffer.from(row.enc),
      Buffer.from(wrapped.subarray(wrapped.length - 32)),
    ];
    for (const kek of kekGuesses) expect(unwrapDeviceKeys(kek, row, wrapped)).toBeUndefined();
    guesses.push({ sealKey: wrapped.slice(13, 29), nonceSalt: wrapped.slice(29, 37) }, { sealKey: wrapped.slice(1, 17), nonceSalt: wrapped.slice(17, 25) });
    for (const keys of guesses) {
      for (const f of frames) expect(() => openFrame(keys, f.frame, row.frameSize)).toThrow(AuthenticationError);
    }
    const keys = recoverDeviceKeys(fleet.ingest.privateFile.key, row.enc, d.serial);
    for (const f of frames) expect(openFrame(keys, f.frame, row.frameSize).counter).toBe(f.counter);
    // With the ingest private key, the wrapped keys open and are the device's.
    expect(unwrapDeviceKeys(registryKek(fleet.ingest.privateFile.key, keyId), row, wrapped)).toEqual(keys);
  });

  it('keeps the watermark right when two ingest nodes take the same device concurrently', async () => {
    const second = backend === 'postgres' ? await db.open() : storage;
    const node2 = await buildServer({ config: makeConfig({ logLevel: 'silent', rateLimit: NO_RATE_LIMIT }), ingestKeys: [fleet.ingest.privateFile], storage: second, logger: false });
    try {
      const d = fresh();
      const frames = Array.from({ length: 120 }, (_, i) => d.sample(0, i, [{ channel: 1, value: i }]));
      const chunks: Uint8Array[][] = [];
      for (let i = 0; i < 120; i += 10) chunks.push(frames.slice(i, i + 10));
      const T = s.clock.now;
      const payload = (c: Uint8Array[]) => body('relay-x', T, [at(d, c, T)]);
      // Every chunk goes to both nodes, newest first, all at once.
      const responses = await Promise.all(
        chunks
          .reverse()
          .flatMap((c) => [s.app.inject({ method: 'POST', url: '/v1/uplink', payload: payload(c) }), node2.inject({ method: 'POST', url: '/v1/uplink', payload: payload(c) })]),
      );
      let accepted = 0;
      for (const r of responses) {
        expect(r.statusCode).toBe(200);
        const dev = r.json().devices[0];
        accepted += dev.accepted;
        expect(dev.accepted + dev.duplicates).toBe(10);
        const n = ackN(d.keys, dev.ack);
        if (n !== null) expect(n).toBeLessThanOrEqual(120);
      }
      expect(accepted).toBe(120);
      const [summary] = await storage.devices(d.serial);
      expect(summary).toMatchObject({ frames: 120, settled: 120 });
      expect((await storage.frames(d.serial)).length).toBe(120);
      const final = await post(T, [at(d, [frames[0]!], T)]);
      expect(ackN(d.keys, final.json.devices[0].ack)).toBe(120);
    } finally {
      await node2.close();
      if (second !== storage) await second.close();
    }
  });
});
