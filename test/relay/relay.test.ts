// The relay core (relay/relay.ts and its parts) on a virtual clock with stand-in links and a scripted server:
// batching and acks, many devices, the durable queue across restarts (file
// journal, torn writes, compaction), backoff, Retry-After, timeouts, answers
// that are wrong or hostile, rejected frames, reconnections and stalls.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../hal/sim/clock.js';
import { seededRandom } from '../../hal/sim/random.js';
import { fromBase64 } from '../../protocol/base64.js';
import { GattQueue, MAX_DOWNLINK_WRITE, Relay, RelayError, ackWrites, backoffDelay, checkDownlink, writeInOrder, parseDeviceInfo, parseRetryAfter, type QueueStore, type RelayOptions, type UploadResponse } from '../../relay/index.js';
import { FileQueueStore, JOURNAL_FORMAT } from '../../relay/file-queue.js';
import { MemoryQueueStore } from '../../relay/memory-queue.js';
import { FakeLink, FakeServer, ackFor, b64, counterOfAck, frame, response } from '../helpers/relay-fakes.js';

const dir = mkdtempSync(join(tmpdir(), 'sealpost-relay-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const queueFile = () => join(dir, `queue-${++fileNo}.journal`);

async function setup(options: Partial<RelayOptions> = {}, store: QueueStore = new MemoryQueueStore(), clock = new VirtualClock()) {
  const server = new FakeServer();
  const logs: string[] = [];
  const relay = await Relay.open({
    relayId: 'test-relay',
    clock,
    upload: server.upload,
    store,
    log: (level, message) => logs.push(`${level}: ${message}`),
    random: seededRandom(7),
    ...options,
  });
  /** Lets promises, store writes and answer handling run to completion. */
  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      await new Promise<void>((r) => setImmediate(r));
      await relay.idle();
    }
  };
  /** Advances the clock in small steps, settling in between. */
  const run = async (ms: number, step = 50) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await settle();
    }
  };
  const link = async (serial: string, size = 20) => {
    const l = new FakeLink(serial, size);
    await relay.connect(l);
    return l;
  };
  return { relay, server, clock, store, logs, settle, run, link };
}

describe('relay core: frames up, acks down', () => {
  it('queues each frame with its receive time, uploads per device after the flush delay and writes each ack back', async () => {
    const { relay, server, clock, run, link, settle } = await setup({ flushDelayMs: 1000 });
    const a = await link('SP-A');
    const b = await link('SP-B');
    clock.advance(100);
    a.send(frame(1), frame(2));
    clock.advance(100);
    b.send(frame(1));
    a.send(frame(3));
    await settle();
    expect(relay.status().queue).toBe(4);
    expect(server.requests).toHaveLength(0);
    await run(1000);
    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.relay.id).toBe('test-relay');
    expect(req.devices.map((d) => d.serial)).toEqual(['SP-A', 'SP-B']);
    expect(req.devices[0]!.frames).toEqual([
      { data: b64(frame(1)), rx: 100 },
      { data: b64(frame(2)), rx: 100 },
      { data: b64(frame(3)), rx: 200 },
    ]);
    expect(req.devices[1]!.frames).toEqual([{ data: b64(frame(1)), rx: 200 }]);
    expect(a.lastAck()).toBe(3);
    expect(b.lastAck()).toBe(1);
    const s = relay.status();
    expect(s.queue).toBe(0);
    expect(s.lastUpload).toMatchObject({ ok: true, status: 200, frames: 4 });
    expect(s.totals).toMatchObject({ received: 4, queued: 4, accepted: 4, acksWritten: 2 });
    expect(s.devices.find((d) => d.serial === 'SP-A')).toMatchObject({ state: 'connected', ackN: 3, ackWrittenN: 3, queued: 0, accepted: 3 });
  });

  it('never changes a byte: what goes up is what came in, base64', async () => {
    const { server, run, link } = await setup();
    const l = await link('SP-BYTES', 244);
    const f = new Uint8Array(244).map((_, i) => (i * 37 + 11) & 255);
    f.set([0, 0, 0, 9]);
    l.send(f);
    await run(1500);
    expect(fromBase64(server.requests[0]!.devices[0]!.frames[0]!.data)).toEqual(f);
  });

  it('does not queue a frame twice, nor frames at or below the last ack, nor frames of the wrong size or counter 0', async () => {
    const { relay, server, run, link, logs } = await setup();
    const l = await link('SP-DUP');
    l.send(frame(1), frame(2), frame(2), frame(1));
    await run(1500);
    expect(server.frames()).toBe(2);
    l.send(frame(1), frame(2), frame(3), frame(0), frame(4, 19), frame(5, 21));
    await run(1500);
    expect(server.frames()).toBe(3);
    const t = relay.status().totals;
    expect(t).toMatchObject({ repeats: 2, settledSkips: 2, malformed: 3 });
    expect(logs.filter((m) => m.includes('SP-DUP sent a frame of'))).toHaveLength(1);
    // 4 and 5 never came intact: N stays 3, but 6 is stored; resending 6 does
    // not go up again, a different frame under counter 6 (a device fault) does.
    l.send(frame(6));
    await run(1500);
    expect(l.lastAck()).toBe(3);
    const before = server.frames();
    l.send(frame(6));
    await run(1500);
    expect(server.frames()).toBe(before);
    l.send(frame(6, 20, 0xcd));
    await run(1500);
    expect(server.frames()).toBe(before + 1);
  });

  it('handles many devices at once: requests stay within the frame and device limits, every device gets its own ack', async () => {
    const { relay, server, run, link } = await setup({ maxFramesPerRequest: 200, maxDevicesPerRequest: 40, maxFramesPerDevice: 20 });
    const links: FakeLink[] = [];
    for (let i = 0; i < 60; i++) links.push(await link(`SP-M${String(i).padStart(3, '0')}`));
    for (let c = 1; c <= 25; c++) for (const l of links) l.send(frame(c));
    await run(5000);
    expect(relay.status().queue).toBe(0);
    for (const r of server.requests) {
      expect(r.devices.reduce((s, d) => s + d.frames.length, 0)).toBeLessThanOrEqual(200);
      expect(r.devices.length).toBeLessThanOrEqual(40);
      for (const d of r.devices) expect(d.frames.length).toBeLessThanOrEqual(20);
    }
    expect(server.frames()).toBe(60 * 25);
    for (const l of links) expect(l.lastAck()).toBe(25);
  });
});

describe('relay core: the queue survives a restart', () => {
  it('frames received before a crash go up after the restart, with their original receive times', async () => {
    const path = queueFile();
    const clock = new VirtualClock();
    const s1 = await FileQueueStore.open(path);
    const first = await setup({}, s1, clock);
    first.server.script = () => Promise.reject(new TypeError('fetch failed'));
    const l = await first.link('SP-DURABLE');
    clock.advance(5000);
    l.send(frame(1), frame(2), frame(3));
    await first.run(3000);
    expect(first.server.requests.length).toBeGreaterThan(0);
    // Crash: no close(); the journal is all there is.
    const s2 = await FileQueueStore.open(path);
    expect(s2.size).toBe(3);
    const second = await setup({}, s2, clock);
    expect(second.relay.status().queue).toBe(3);
    await second.run(1500);
    expect(second.server.requests[0]!.devices[0]!.frames.map((f) => f.rx)).toEqual([5000, 5000, 5000]);
    expect(second.relay.status().queue).toBe(0);
    const s3 = await FileQueueStore.open(path);
    expect(s3.size).toBe(0);
    // New frames get ids above the old ones.
    const l2 = await second.link('SP-DURABLE');
    l2.send(frame(4));
    await second.settle();
    const ids = (await s2.load()).map((f) => f.id);
    expect(Math.min(...ids)).toBeGreaterThan(3);
    await Promise.all([s1.close(), s2.close(), s3.close()]);
  });

  it("counts frames left from an earlier run as their device's once it connects, never below zero", async () => {
    const path = queueFile();
    const clock = new VirtualClock();
    const s1 = await FileQueueStore.open(path);
    const first = await setup({}, s1, clock);
    first.server.script = () => Promise.reject(new TypeError('fetch failed'));
    (await first.link('SP-LEFTOVER')).send(frame(1), frame(2), frame(3));
    await first.run(3000);
    // Crash; the device reconnects to the restarted relay while the server is still down.
    const s2 = await FileQueueStore.open(path);
    const second = await setup({}, s2, clock);
    second.server.script = () => Promise.reject(new TypeError('fetch failed'));
    await second.link('SP-LEFTOVER');
    const device = () => second.relay.status().devices.find((d) => d.serial === 'SP-LEFTOVER')!;
    expect(device().queued).toBe(3);
    second.server.script = undefined;
    await second.run(120_000);
    expect(second.relay.status().queue).toBe(0);
    expect(device().queued).toBe(0);
    await Promise.all([s1.close(), s2.close()]);
  });

  it('close() keeps what was received and abandons the request in flight', async () => {
    const path = queueFile();
    const store = await FileQueueStore.open(path);
    const { relay, server, link, run } = await setup({}, store);
    server.script = () => new Promise<UploadResponse>(() => undefined);
    const l = await link('SP-CLOSE');
    l.send(frame(1), frame(2));
    await run(1500);
    l.send(frame(3));
    await relay.close();
    expect(l.open).toBe(false);
    await store.close();
    const again = await FileQueueStore.open(path);
    expect(again.size).toBe(3);
    await again.close();
  });

  it('a torn last record (power loss mid-write) is skipped and the journal rewritten; damage elsewhere costs only that record', async () => {
    const path = queueFile();
    const store = await FileQueueStore.open(path);
    await store.append([
      { id: 1, serial: 'SP-T', data: b64(frame(1)), rx: 1 },
      { id: 2, serial: 'SP-T', data: b64(frame(2)), rx: 2 },
    ]);
    await store.append([{ id: 3, serial: 'SP-T', data: b64(frame(3)), rx: 3 }]);
    await store.remove([2]);
    await store.close();
    appendFileSync(path, '0badc0de {"a":[[4,"SP-T","AAAA');
    const reopened = await FileQueueStore.open(path);
    expect(reopened.skipped).toBe(1);
    expect((await reopened.load()).map((f) => f.id).sort()).toEqual([1, 3]);
    await reopened.close();
    const text = readFileSync(path, 'utf8');
    expect(text.split('\n')[0]).toContain(JOURNAL_FORMAT);
    expect(text).not.toContain('0badc0de');
    // A flipped byte inside a record: its checksum fails, the rest is read.
    const lines = text.trimEnd().split('\n');
    lines[1] = lines[1]!.replace('SP-T', 'SP-X');
    writeFileSync(path, lines.join('\n') + '\n');
    const damaged = await FileQueueStore.open(path);
    expect(damaged.skipped).toBe(1);
    await damaged.close();
  });

  it('refuses a file that is not a relay journal', async () => {
    const path = queueFile();
    writeFileSync(path, '{"kind":"sealpost-ingest-private-key"}\n');
    await expect(FileQueueStore.open(path)).rejects.toThrow(/not a sealpost relay queue/);
  });

  it('compacts: the journal stays small however many frames pass through it', async () => {
    const path = queueFile();
    const store = await FileQueueStore.open(path, { compactAfter: 500 });
    let id = 1;
    for (let round = 0; round < 40; round++) {
      const batch = Array.from({ length: 100 }, () => ({ id: id++, serial: 'SP-C', data: b64(frame(id)), rx: id }));
      await store.append(batch);
      await store.remove(batch.slice(0, 95).map((f) => f.id));
    }
    expect(store.compactions).toBeGreaterThan(3);
    expect(store.size).toBe(200);
    expect(statSync(path).size).toBeLessThan(120 * 1000);
    await store.close();
    const again = await FileQueueStore.open(path);
    expect(again.size).toBe(200);
    await again.close();
  });
});

describe('relay core: retries', () => {
  it('backs off exponentially with jitter up to the cap, then resets after a success', async () => {
    const { relay, server, clock, link, settle } = await setup({ backoffBaseMs: 1000, backoffCapMs: 30_000, flushDelayMs: 0 });
    const at: number[] = [];
    let fail = true;
    server.script = () => {
      at.push(clock.now());
      return fail ? Promise.reject(new TypeError('fetch failed')) : undefined;
    };
    const l = await link('SP-BACKOFF');
    l.send(frame(1));
    await settle();
    const waits: number[] = [];
    for (let i = 1; i <= 9; i++) {
      expect(at).toHaveLength(i);
      const s = relay.status();
      expect(s.failures).toBe(i);
      const wait = s.retryAt! - clock.now();
      waits.push(wait);
      const exp = Math.min(30_000, 1000 * 2 ** (i - 1));
      expect(wait).toBeGreaterThanOrEqual(exp / 2);
      expect(wait).toBeLessThanOrEqual(exp);
      clock.advance(wait - 1);
      await settle();
      expect(at).toHaveLength(i);
      if (i === 9) fail = false;
      clock.advance(1);
      await settle();
    }
    expect(Math.max(...waits)).toBeLessThanOrEqual(30_000);
    expect(relay.status()).toMatchObject({ failures: 0, retryAt: null, queue: 0 });
    expect(l.lastAck()).toBe(1);
    expect(backoffDelay(40, 1000, 30_000, () => 0.999)).toBeLessThanOrEqual(30_000);
  });

  it('honours Retry-After on 429, in seconds or as an HTTP date', async () => {
    const { relay, server, clock, link, settle } = await setup({ flushDelayMs: 0 });
    const at: number[] = [];
    server.script = (_b, n) => {
      at.push(clock.now());
      if (n === 1) return response(429, { message: 'slow down' }, { 'retry-after': '7' });
      if (n === 2) return response(429, {}, { 'retry-after': new Date(clock.now() + 120_000).toUTCString() });
      return undefined;
    };
    const l = await link('SP-429');
    l.send(frame(1));
    await settle();
    expect(at).toEqual([0]);
    expect(relay.status().lastUpload).toMatchObject({ ok: false, status: 429, message: 'slow down' });
    clock.advance(6999);
    await settle();
    expect(at).toHaveLength(1);
    clock.advance(1000);
    await settle();
    expect(at).toHaveLength(2);
    expect(at[1]).toBeGreaterThanOrEqual(7000);
    expect(at[1]).toBeLessThanOrEqual(7700);
    // HTTP-date: one second resolution, so 119..121 s.
    clock.advance(118_000);
    await settle();
    expect(at).toHaveLength(2);
    clock.advance(4000);
    await settle();
    expect(at).toHaveLength(3);
    expect(l.lastAck()).toBe(1);
    expect(parseRetryAfter('0', 0)).toBe(0);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
  });

  it('caps an absurd Retry-After and falls back to backoff when it is unreadable', async () => {
    const { relay, server, clock, link, settle } = await setup({ flushDelayMs: 0, maxRetryAfterMs: 60_000 });
    server.script = (_b, n) => (n === 1 ? response(429, {}, { 'retry-after': '999999999' }) : n === 2 ? response(429, {}, { 'retry-after': 'later' }) : undefined);
    const l = await link('SP-429B');
    l.send(frame(1));
    await settle();
    expect(relay.status().retryAt! - clock.now()).toBeLessThanOrEqual(66_000);
    clock.advance(66_000);
    await settle();
    expect(server.requests).toHaveLength(2);
    expect(relay.status().retryAt! - clock.now()).toBeLessThanOrEqual(2000);
  });

  it('abandons a request that never answers after the timeout, and retries it', async () => {
    const { relay, server, clock, link, settle, logs } = await setup({ flushDelayMs: 0, requestTimeoutMs: 5000 });
    server.script = (_b, n) => (n === 1 ? new Promise<UploadResponse>(() => undefined) : undefined);
    const l = await link('SP-HANG');
    l.send(frame(1));
    await settle();
    expect(relay.status().uploading).toBe(true);
    clock.advance(5000);
    await settle();
    expect(relay.status()).toMatchObject({ uploading: false, failures: 1 });
    expect(logs.some((m) => m.includes('no answer within 5000 ms'))).toBe(true);
    clock.advance(1000);
    await settle();
    expect(server.requests).toHaveLength(2);
    expect(l.lastAck()).toBe(1);
  });

  it('keeps frames through 5xx answers and network errors, and sends them when the server is back', async () => {
    const { relay, server, run, link } = await setup();
    let down = 6;
    server.script = () => (down-- > 0 ? (down % 2 ? response(503, { message: 'internal error' }) : Promise.reject(new TypeError('fetch failed'))) : undefined);
    const l = await link('SP-5XX');
    for (let c = 1; c <= 10; c++) l.send(frame(c));
    await run(120_000, 500);
    expect(relay.status().queue).toBe(0);
    expect(l.lastAck()).toBe(10);
    expect(relay.status().totals.failedRequests).toBe(6);
  });
});

describe('relay core: what the server refuses', () => {
  it('a frame rejected with a reason is dropped with a log line and does not block the rest', async () => {
    const { relay, server, run, link, logs } = await setup();
    server.script = (body) => {
      const ans = server.answer(body);
      const d = ans.devices[0]!;
      if (body.devices[0]!.frames.length > 1) d.rejected.push({ index: 1, reason: 'frame authentication failed' });
      return response(200, ans);
    };
    const l = await link('SP-REJ');
    l.send(frame(1), frame(2), frame(3));
    await run(1500);
    expect(relay.status().queue).toBe(0);
    expect(logs.some((m) => m.includes('rejected frame 2 of SP-REJ: frame authentication failed'))).toBe(true);
    l.send(frame(4));
    await run(1500);
    expect(server.requests).toHaveLength(2);
    expect(relay.status().totals).toMatchObject({ rejected: 1 });
  });

  it('400 naming a frame drops that frame only; 400 naming none halves the batch until the bad frame is alone, and ends', async () => {
    const { relay, server, run, link, logs } = await setup({ maxFramesPerRequest: 64 });
    const bad = b64(frame(13));
    server.script = (body) => {
      const i = body.devices[0]!.frames.findIndex((f) => f.data === bad);
      if (i < 0) return undefined;
      return body.devices[0]!.frames.length === 64
        ? response(400, { error: 'Bad Request', message: `body/devices/0/frames/${i}/data must be a base64 string`, statusCode: 400 })
        : response(400, { error: 'Bad Request', message: 'something is wrong' });
    };
    const l = await link('SP-400');
    for (let c = 1; c <= 64; c++) l.send(frame(c));
    await run(3000);
    expect(relay.status().queue).toBe(0);
    expect(relay.status().totals.dropped).toBe(1);
    expect(logs.some((m) => m.includes('refused frame 13 of SP-400 with 400'))).toBe(true);
    // Now a server that never names the frame.
    server.script = (body) => (body.devices[0]!.frames.some((f) => f.data === b64(frame(100))) ? response(400, { message: 'nope' }) : undefined);
    const before = server.requests.length;
    for (let c = 65; c <= 128; c++) l.send(frame(c === 100 ? 100 : c));
    await run(10_000);
    expect(relay.status().queue).toBe(0);
    expect(relay.status().totals.dropped).toBe(2);
    expect(server.requests.length - before).toBeLessThan(20);
  });

  it('413 halves the request size; a single frame still refused is dropped', async () => {
    const { relay, server, run, link } = await setup({ maxFramesPerRequest: 200 });
    server.script = (body) => (body.devices.reduce((s, d) => s + d.frames.length, 0) > 50 ? response(413, { message: 'too large' }) : undefined);
    const l = await link('SP-413');
    for (let c = 1; c <= 150; c++) l.send(frame(c));
    await run(5000);
    expect(relay.status().queue).toBe(0);
    expect(l.lastAck()).toBe(150);
    const sizes = server.requests.map((r) => r.devices[0]!.frames.length);
    // 150 and 75 are refused; then 37 at a time (for ten minutes).
    expect(sizes).toEqual([150, 75, 37, 37, 37, 37, 2]);
    expect(relay.status().totals.dropped).toBe(0);
    // Alone and still too large: dropped, the queue moves on.
    server.script = (body) => (body.devices[0]!.frames.some((f) => f.data === b64(frame(151))) ? response(413, { message: 'too large' }) : undefined);
    l.send(frame(151), frame(152));
    await run(5000);
    expect(relay.status().queue).toBe(0);
    expect(relay.status().totals.dropped).toBe(1);
  });

  it('answers that are malformed, hostile or huge do not crash it; the frames stay queued until a good answer', async () => {
    const hostile: (() => UploadResponse)[] = [
      () => response(200, 'not json at all {'),
      () => response(200, null),
      () => response(200, []),
      () => response(200, { devices: 'x' }),
      () => response(200, { devices: [null, 7, 'x', { serial: 5 }] }),
      () => response(200, { devices: [{ serial: 'SP-EVIL', ack: 12, accepted: 'x', duplicates: -1, rejected: 'no' }] }),
      () => ({ status: 200, json: () => Promise.reject(new Error('answer larger than 1048576 bytes')) }),
      () => ({ status: 200, headers: { get: () => { throw new Error('boom'); } }, json: async () => ({}) }),
      () => ({ status: Number.NaN, json: async () => ({}) }) as UploadResponse,
      () => response(204, ''),
      () => response(302, { location: 'elsewhere' }),
      () => response(500, 'x'.repeat(100_000)),
      () => ({ status: 200, json: async () => ({ devices: Array.from({ length: 200_000 }, () => ({ serial: 'SP-OTHER' })) }) }),
    ];
    const { relay, server, run, link, logs } = await setup({ backoffCapMs: 1000 });
    server.script = (_b, n) => hostile[n - 1]?.();
    const l = await link('SP-EVIL');
    l.send(frame(1), frame(2));
    await run(60_000, 250);
    expect(server.requests.length).toBe(hostile.length + 1);
    expect(relay.status().queue).toBe(0);
    expect(l.lastAck()).toBe(2);
    expect(logs.every((m) => m.length < 600)).toBe(true);
  });

  it('a well-formed answer with a bad ack stores the frames but writes nothing to the device', async () => {
    const { relay, server, run, link, logs } = await setup();
    const bad = [b64(new Uint8Array(11)), b64(new Uint8Array(13)), b64(ackFor(0)), 'AAAA!AAAAAAAAAAA', 'x'.repeat(5000)];
    server.script = (body, n) => response(200, { devices: [{ serial: body.devices[0]!.serial, ack: bad[n - 1], accepted: 1, duplicates: 0, rejected: [] }] });
    const l = await link('SP-BADACK');
    for (let c = 1; c <= bad.length; c++) {
      l.send(frame(c));
      await run(1500);
    }
    expect(server.requests).toHaveLength(bad.length);
    expect(relay.status().queue).toBe(0);
    expect(l.acks).toHaveLength(0);
    expect(logs.filter((m) => m.startsWith('error'))).toEqual([]);
  });

  it('an answer that leaves a device out keeps that device\'s frames', async () => {
    const { relay, server, run, link } = await setup();
    server.script = (body, n) => (n === 1 ? response(200, { devices: server.answer(body).devices.filter((d) => d.serial !== 'SP-LEFT') }) : undefined);
    const a = await link('SP-KEPT');
    const b = await link('SP-LEFT');
    a.send(frame(1));
    b.send(frame(1));
    await run(3000);
    expect(server.requests.map((r) => r.devices.map((d) => d.serial))).toEqual([['SP-KEPT', 'SP-LEFT'], ['SP-LEFT']]);
    expect(relay.status().queue).toBe(0);
    expect(a.lastAck()).toBe(1);
    expect(b.lastAck()).toBe(1);
  });
});

describe('relay core: the downlink, an ordered list of writes of at most 20 bytes', () => {
  it('hands a link one list at a time; answers that come while a write is slow are written afterwards as the latest ack only', async () => {
    const { relay, server, run } = await setup({ flushDelayMs: 100, stallMs: 0 });
    const calls: Uint8Array[][] = [];
    let busy = 0;
    let most = 0;
    let release: (() => void) | undefined;
    let deliver: ((f: Uint8Array) => void) | undefined;
    await relay.connect({
      info: () => '{"serial":"SP-SLOW","v":1,"f":20}',
      onFrame: (cb) => {
        deliver = cb;
      },
      write: (writes) => {
        calls.push(writes.map((w) => w.slice()));
        busy++;
        most = Math.max(most, busy);
        return new Promise<void>((r) => {
          release = () => {
            busy--;
            r();
          };
        });
      },
      disconnect: () => undefined,
      connected: () => true,
    });
    deliver!(frame(1));
    await run(200);
    expect(calls.map((c) => c.map(counterOfAck))).toEqual([[1]]);
    // Three more answers while the first write waits for its response.
    for (const n of [2, 3, 4]) {
      deliver!(frame(n));
      await run(200);
    }
    expect(server.requests).toHaveLength(4);
    expect(calls).toHaveLength(1);
    expect(relay.status().devices[0]).toMatchObject({ ackN: 4, ackPending: true, ackWrittenN: 0 });
    release!();
    await run(50);
    expect(calls.map((c) => c.map(counterOfAck))).toEqual([[1], [4]]);
    release!();
    await run(50);
    expect(most).toBe(1);
    expect(calls.every((c) => c.length === 1 && c[0]!.length === 12)).toBe(true);
    expect(relay.status().devices[0]).toMatchObject({ ackN: 4, ackPending: false, ackWrittenN: 4, acksWritten: 2 });
  });

  it('a list is 1..20-byte writes, written in order through the GATT queue, stopping at the first that fails', async () => {
    expect(MAX_DOWNLINK_WRITE).toBe(20);
    expect(ackWrites(ackFor(7)).map(counterOfAck)).toEqual([7]);
    expect(() => checkDownlink([new Uint8Array(20), new Uint8Array(21)])).toThrow(/downlink write 1 is 21 bytes; each write must be 1\.\.20 bytes/);
    expect(() => checkDownlink([new Uint8Array(0)])).toThrow(/downlink write 0 is 0 bytes/);
    expect(() => checkDownlink([])).toThrow(/at least one write/);
    const queue = new GattQueue();
    const log: string[] = [];
    const writes = [0xb0, 0xb1, 0xb2].map((h) => Uint8Array.of(h, ...new Uint8Array(19)));
    const one = async (w: Uint8Array) => {
      log.push(`start ${w[0]!.toString(16)}`);
      await new Promise((r) => setTimeout(r, 5));
      if (w[0] === 0xb1 && log.includes('fail')) throw new Error('GATT error 133');
      log.push(`done ${w[0]!.toString(16)}`);
    };
    // A read queued between the list's writes waits its turn and never splits a write.
    const listed = writeInOrder(queue, writes, one);
    await new Promise((r) => setTimeout(r, 1));
    const read = queue.run(async () => void log.push('read'));
    await Promise.all([listed, read]);
    expect(log).toEqual(['start b0', 'done b0', 'read', 'start b1', 'done b1', 'start b2', 'done b2']);
    log.length = 0;
    log.push('fail');
    await expect(writeInOrder(queue, writes, one)).rejects.toThrow('GATT error 133');
    expect(log).toEqual(['fail', 'start b0', 'done b0', 'start b1']);
    await expect(writeInOrder(queue, [new Uint8Array(21)], one)).rejects.toThrow(/21 bytes/);
  });
});

describe('relay core: connections', () => {
  it('keeps the latest ack of a device that left and writes it on its next connection', async () => {
    const { relay, server, run, link, clock } = await setup();
    let hold: (() => void) | undefined;
    server.script = (body) =>
      new Promise<UploadResponse>((resolve) => {
        hold = () => resolve(response(200, server.answer(body)));
      });
    const l1 = await link('SP-BACK');
    l1.send(frame(1), frame(2));
    await run(1500);
    l1.drop();
    hold!();
    await run(100);
    const d = relay.status().devices[0]!;
    expect(d).toMatchObject({ state: 'disconnected', ackN: 2, ackPending: true, ackWrittenN: 0 });
    expect(l1.acks).toHaveLength(0);
    clock.advance(60_000);
    const l2 = new FakeLink('SP-BACK');
    await relay.connect(l2);
    expect(l2.acks.map(counterOfAck)).toEqual([2]);
    expect(relay.status().devices[0]).toMatchObject({ state: 'connected', connections: 2, ackPending: false, ackWrittenN: 2 });
  });

  it('notices a link that went away without telling (polling), and a new link replaces an old one', async () => {
    const { relay, run } = await setup({ linkPollMs: 500 });
    let open = true;
    await relay.connect({
      info: () => '{"serial":"SP-POLL","v":1,"f":20}',
      onFrame: () => undefined,
      write: () => undefined,
      disconnect: () => undefined,
      connected: () => open,
    });
    expect(relay.status().devices[0]!.state).toBe('connected');
    open = false;
    await run(600);
    expect(relay.status().devices[0]!.state).toBe('disconnected');
    const a = new FakeLink('SP-TWICE');
    const b = new FakeLink('SP-TWICE');
    await relay.connect(a);
    await relay.connect(b);
    expect(a.open).toBe(false);
    expect(relay.status().devices.find((d) => d.serial === 'SP-TWICE')).toMatchObject({ state: 'connected', connections: 2 });
  });

  it('refuses a device with bad info and disconnects it', async () => {
    const { relay } = await setup();
    for (const info of ['not json', '[]', '{"serial":"bad serial!","v":1,"f":20}', '{"serial":"SP-1","v":2,"f":20}', '{"serial":"SP-1","v":1,"f":12}', '{"serial":"SP-1","v":1,"f":245}']) {
      const l = new FakeLink('SP-1', 20, info);
      await expect(relay.connect(l)).rejects.toBeInstanceOf(RelayError);
      expect(l.open).toBe(false);
    }
    expect(relay.status().devices).toEqual([]);
    expect(parseDeviceInfo(new TextEncoder().encode('{"serial":"SP-000001","v":1,"f":20,"b":"puckjs","fw":"0.1.0"}'))).toEqual({ serial: 'SP-000001', v: 1, f: 20, b: 'puckjs', fw: '0.1.0' });
  });

  it('reconnects a device whose ack stopped moving while newer frames arrive (a stalled resend)', async () => {
    const { relay, run, link, logs } = await setup({ stallMs: 10_000 });
    const l = await link('SP-STALL');
    l.send(frame(1));
    // Frame 2 never arrives; 3.. keep coming.
    for (let c = 3; c <= 30 && l.open; c++) {
      await run(1000);
      if (l.open) l.send(frame(c));
    }
    await run(1500);
    expect(l.open).toBe(false);
    expect(relay.status().devices[0]).toMatchObject({ state: 'disconnected', stalls: 1, ackN: 1 });
    expect(logs.some((m) => m.includes('SP-STALL: the server has had everything up to 1'))).toBe(true);
  });

  it('rejects bad options, naming them', async () => {
    await expect(setup({ relayId: 'has space' })).rejects.toThrow(/relayId/);
    await expect(setup({ maxFramesPerRequest: 0 })).rejects.toThrow(/maxFramesPerRequest/);
    await expect(setup({ backoffCapMs: Number.NaN })).rejects.toThrow(/backoffCapMs/);
  });
});
