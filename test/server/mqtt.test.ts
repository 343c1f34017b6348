// MQTT publishing against the Mosquitto broker at SEALPOST_TEST_MQTT_URL: a
// subscriber on a topic prefix of this run's own sees every new reading, the
// retime notices and the republished readings that got a time late; ingest
// is never held up by a broker that refuses, hangs or goes away, and what
// queued meanwhile is delivered after reconnecting. The config section is
// checked at boot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import { ANCHOR_BOOT } from '../../protocol/index.js';
import { checkConfig, type Storage } from '../../server/index.js';
import { BoundedQueue } from '../../server/mqtt/queue.js';
import { SealingDevice, body, makeFleet, testDb, testServer, type Fleet, type TestDb } from '../helpers/server.js';

const BROKER = process.env.SEALPOST_TEST_MQTT_URL!;

interface Received {
  topic: string;
  json: Record<string, unknown>;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP forwarder to the broker that can be cut and restored, to make the connection drop. */
class Proxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;
  async start(): Promise<void> {
    const target = new URL(BROKER);
    this.server = createServer((client) => {
      const upstream = tcpConnect(Number(target.port || 1883), target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }
  async cut(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const x of this.sockets) x.destroy();
    if (s) await new Promise((r) => s.close(r));
  }
}

describe('MQTT publishing', () => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let sub: MqttClient;
  const prefix = `sealpost-test/${randomBytes(4).toString('hex')}`;
  const received: Received[] = [];
  let next = 0;
  const fresh = () => new SealingDevice(fleet.devices[next++]!, fleet.frameSize);
  const mqttServer = (mqtt: Record<string, unknown>) => testServer(storage, fleet, { config: { sections: checkConfig({ mqtt }).sections }, importFleet: false });
  const on = (serial: string, name?: string) => received.filter((m) => m.topic === `${prefix}/${serial}/${name ?? m.topic.split('/').pop()}`);

  beforeAll(async () => {
    db = await testDb('sqlite');
    storage = await db.open();
    fleet = makeFleet(8, { frameSize: 32 });
    // Imported once; each server below is built on the same storage.
    await (await testServer(storage, fleet)).close();
    sub = await connectAsync(BROKER, { clientId: `sealpost-test-sub-${randomBytes(4).toString('hex')}`, reconnectPeriod: 0 });
    sub.on('message', (topic, payload) => received.push({ topic, json: JSON.parse(payload.toString()) }));
    await sub.subscribeAsync(`${prefix}/#`, { qos: 1 });
  });

  afterAll(async () => {
    await sub?.endAsync();
    await storage?.close();
    await db?.drop();
  });

  it('publishes every new reading to <prefix>/<serial>/<name>, and nothing for replays', async () => {
    const s = await mqttServer({ url: BROKER, topic_prefix: prefix, qos: 1 });
    try {
      const d = fresh();
      const now = s.clock.now;
      const frames = [d.anchor(1, 100, ANCHOR_BOOT), d.sample(1, 160, [{ channel: 1, value: 21.5 }, { channel: 2, value: 87.5 }])];
      const r = await s.post(body('relay-m', now, [{ serial: d.serial, frames: frames.map((frame) => ({ frame, rx: now })) }]));
      expect(r.json.devices[0].accepted).toBe(2);
      await waitFor('two readings', () => on(d.serial).length >= 2);
      // start = min(rx - uptime) over the boot's frames = now - 160 s; the sample was taken at uptime 160.
      expect(on(d.serial, 'temperature').map((m) => m.json)).toEqual([
        { serial: d.serial, channel: 1, name: 'temperature', unit: '°C', value: 21.5, time: now, counter: 2, uptime: 160, boot: 1 },
      ]);
      expect(on(d.serial, 'battery').map((m) => m.json)).toEqual([
        { serial: d.serial, channel: 2, name: 'battery', unit: '%', value: 87.5, time: now, counter: 2, uptime: 160, boot: 1 },
      ]);

      const again = await s.post(body('relay-m', now, [{ serial: d.serial, frames: frames.map((frame) => ({ frame, rx: now })) }]));
      expect(again.json.devices[0].duplicates).toBe(2);
      await waitFor('both acknowledged', () => s.app.mqtt.stats().published === 2);
      const status = await s.app.inject({ url: '/v1/mqtt', headers: s.auth });
      expect(status.json()).toMatchObject({ connected: true, topic_prefix: prefix, qos: 1, queued: 0, inflight: 0, dropped: 0, published: 2 });
      expect(on(d.serial).length).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('on retime publishes the boot start, and republishes readings that were published without a time', async () => {
    const s = await mqttServer({ url: BROKER, topic_prefix: prefix, qos: 0 });
    try {
      const d = fresh();
      const now = s.clock.now;
      const anchor = d.anchor(2, 50, ANCHOR_BOOT);
      const early = d.sample(2, 80, [{ channel: 1, value: 19.25 }]);
      const post = (frame: Uint8Array, rx: number) => s.post(body('relay-m', s.clock.now, [{ serial: d.serial, frames: [{ frame, rx }] }]));

      // The sample arrives before its boot's anchor: published with no time.
      await post(early, now);
      await waitFor('the unplaced reading', () => on(d.serial, 'temperature').length === 1);
      expect(on(d.serial, 'temperature')[0]!.json).toMatchObject({ counter: 2, value: 19.25, time: null, boot: null, uptime: null });

      // The anchor places it: a retime notice, then the reading again with its time.
      await post(anchor, now);
      await waitFor('the republished reading', () => on(d.serial, 'temperature').length === 2);
      expect(on(d.serial, 'retime').map((m) => m.json)).toEqual([{ serial: d.serial, boot: 2, start: now - 80_000 }]);
      expect(on(d.serial, 'temperature')[1]!.json).toEqual({
        serial: d.serial, channel: 1, name: 'temperature', unit: '°C', value: 19.25, time: now, counter: 2, uptime: 80, boot: 2,
      });

      // A frame that bounds the boot's start lower moves every reading of the boot earlier: one notice says so.
      s.clock.now = now + 300_000;
      await post(d.sample(2, 300, [{ channel: 1, value: 19.5 }]), now + 200_000);
      await waitFor('the second retime', () => on(d.serial, 'retime').length === 2);
      expect(on(d.serial, 'retime')[1]!.json).toEqual({ serial: d.serial, boot: 2, start: now - 100_000 });
      expect(on(d.serial, 'temperature')[2]!.json).toMatchObject({ counter: 3, value: 19.5, time: now + 200_000, uptime: 300, boot: 2 });
    } finally {
      await s.close();
    }
  });

  it('never holds up ingest when the broker refuses or hangs; a full buffer drops the oldest and counts them', async () => {
    const silent = createServer(() => undefined); // accepts TCP and never answers CONNECT
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as { port: number }).port;
    try {
      for (const url of ['mqtt://127.0.0.1:1', `mqtt://127.0.0.1:${silentPort}`]) {
        const s = await mqttServer({ url, topic_prefix: prefix, buffer: 3 });
        const address = await s.app.listen({ host: '127.0.0.1', port: 0 });
        try {
          const d = fresh();
          const now = s.clock.now;
          const frames = [d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 10, [{ channel: 1, value: 20 }, { channel: 2, value: 90 }]), d.sample(1, 20, [{ channel: 1, value: 21 }, { channel: 2, value: 89 }]), d.sample(1, 30, [{ channel: 1, value: 22 }])];
          const t0 = performance.now();
          const r = await fetch(`${address}/v1/uplink`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body('relay-m', now, [{ serial: d.serial, frames: frames.map((frame) => ({ frame, rx: now })) }])),
          });
          const ms = performance.now() - t0;
          expect(r.status).toBe(200);
          expect(((await r.json()) as { devices: { accepted: number }[] }).devices[0]!.accepted).toBe(4);
          expect(ms).toBeLessThan(1000);
          const status = await (await fetch(`${address}/v1/mqtt`, { headers: s.auth })).json();
          expect(status).toMatchObject({ connected: false, queued: 3, dropped: 2, published: 0 });
        } finally {
          const t1 = performance.now();
          await s.close();
          expect(performance.now() - t1).toBeLessThan(3000);
        }
      }
    } finally {
      silent.close();
    }
  });

  it('reconnects with backoff after the connection drops and delivers what queued meanwhile, in order', async () => {
    const proxy = new Proxy();
    await proxy.start();
    const s = await mqttServer({ url: `mqtt://127.0.0.1:${proxy.port}`, topic_prefix: prefix, qos: 1 });
    try {
      const d = fresh();
      const now = s.clock.now;
      const post = (frames: Uint8Array[]) => s.post(body('relay-m', now, [{ serial: d.serial, frames: frames.map((frame) => ({ frame, rx: now })) }]));
      await waitFor('the first connection', () => s.app.mqtt.stats().connected);
      await post([d.anchor(1, 0, ANCHOR_BOOT), d.sample(1, 10, [{ channel: 1, value: 10 }])]);
      await waitFor('the first reading', () => on(d.serial, 'temperature').length === 1);

      await proxy.cut();
      await waitFor('the publisher to notice', () => s.app.mqtt.stats().connected === false);
      for (let k = 2; k <= 6; k++) expect((await post([d.sample(1, k * 10, [{ channel: 1, value: k * 10 }])])).status).toBe(200);
      // Five readings, and five retime notices: each sample has a larger uptime and the same rx, so a lower start.
      expect(s.app.mqtt.stats()).toMatchObject({ connected: false, queued: 10, dropped: 0 });

      await proxy.start();
      await waitFor('the queued readings', () => on(d.serial, 'temperature').length >= 6, 15_000);
      const values = [...new Set(on(d.serial, 'temperature').map((m) => m.json.value))];
      expect(values).toEqual([10, 20, 30, 40, 50, 60]);
      expect(s.app.mqtt.stats()).toMatchObject({ connected: true, queued: 0, dropped: 0 });
      expect(s.app.mqtt.stats().failures).toBeGreaterThanOrEqual(1);
    } finally {
      await s.close();
      await proxy.cut();
    }
  });

  it('checks the mqtt section at boot with messages that name the setting', () => {
    const check = (mqtt: unknown) => () => checkConfig({ mqtt }, '/', 'sealpost.json');
    expect(check({ url: 'mqtt://127.0.0.1:1883' })().sections.mqtt).toEqual({
      url: 'mqtt://127.0.0.1:1883', topicPrefix: 'sealpost', qos: 1, retain: false, clientId: null, username: null, password: null, buffer: 10_000,
    });
    expect(check({})).toThrow('sealpost.json: mqtt.url is required: a broker URL such as mqtt://127.0.0.1:1883 (schemes: mqtt, mqtts, ws, wss)');
    expect(check({ url: '127.0.0.1:1883' })).toThrow('sealpost.json: mqtt.url must be a broker URL such as mqtt://127.0.0.1:1883 (schemes: mqtt, mqtts, ws, wss), got "127.0.0.1:1883"');
    expect(check({ url: 'broker' })).toThrow('sealpost.json: mqtt.url must be a broker URL such as mqtt://127.0.0.1:1883 (schemes: mqtt, mqtts, ws, wss), got "broker"');
    expect(check({ url: 'http://user:hunter2@broker' })).toThrow(/got scheme "http"$/);
    expect(check({ url: 'mqtt://h', qso: 1 })).toThrow(
      'sealpost.json: mqtt has an unknown setting "qso" (known: url, topic_prefix, qos, retain, client_id, username, password, buffer)',
    );
    expect(check({ url: 'mqtt://h', qos: 2 })).toThrow('sealpost.json: mqtt.qos must be 0 or 1 (QoS 2 is not supported), got 2');
    for (const p of ['#', 'a/+/b', '/a', 'a/', 'a//b', '$SYS', '', 7]) expect(check({ url: 'mqtt://h', topic_prefix: p })).toThrow('sealpost.json: mqtt.topic_prefix must be topic levels');
    expect(check({ url: 'mqtt://h', buffer: 0 })).toThrow('sealpost.json: mqtt.buffer must be a whole number of messages from 1 to 1000000, got 0');
    expect(check('mqtt://h')).toThrow('sealpost.json: mqtt must be an object such as {"url": "mqtt://127.0.0.1:1883"}');
    expect(() => checkConfig({ mqtt: { url: 'wss://u:hunter2@[::1' } }, '/', 'x')).toThrow(/^(?!.*hunter2)/);
  });

  it('keeps a bounded FIFO: the oldest go first when full, and requeued messages return to the front', () => {
    const q = new BoundedQueue<number>(3);
    expect([1, 2, 3, 4].map((n) => q.push(n))).toEqual([0, 0, 0, 1]);
    expect(q.shift()).toBe(2);
    expect(q.unshiftAll([0, 1])).toBe(1);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([1, 3, 4, undefined]);
    expect(q.length).toBe(0);
  });
});
