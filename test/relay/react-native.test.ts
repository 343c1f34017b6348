// The React Native adapter (relay/adapters/react-native.ts, `sealpost/relay/react-native`) on react-native-ble-plx's
// real JavaScript layer (its compiled BleManager, BleError parsing, transactions and subscriptions), bundled with
// esbuild and with the module 'react-native' replaced at the bridge boundary by test/helpers/react-native-bridge.ts,
// whose native module holds peripherals in memory. The checks: two devices scanned for the service and relayed at
// once, frames up and acks down through a scripted server, one GATT operation at a time; then one test per
// documented failure: device disconnected, operation cancelled, Android GATT error 133, Bluetooth powered off,
// unauthorized. And the key-value queue store: what a power cut at any write leaves loads, whole.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { QueuedFrame } from '../../relay/index.js';
import { KvQueueStore as KvStore, MemoryKeyValueStore as MemKv, type KeyValueStore } from '../../relay/adapters/kv-queue.js';
import { FakeServer, b64, counterOfAck, frame } from '../helpers/relay-fakes.js';

type Bundle = typeof import('./react-native-entry.js');
const ROOT = join(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let rn: Bundle;
const dir = mkdtempSync(join(tmpdir(), 'sealpost-rn-'));

beforeAll(async () => {
  const out = await build({
    entryPoints: [join(import.meta.dirname, 'react-native-entry.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'bridge',
        setup(b) {
          b.onResolve({ filter: /^react-native$/ }, () => ({ path: join(ROOT, 'test/helpers/react-native-bridge.ts') }));
          // The package's main is its Flow source; its compiled CommonJS is what Metro's Babel preset would give.
          b.onResolve({ filter: /^react-native-ble-plx$/ }, () => ({ path: join(ROOT, 'node_modules/react-native-ble-plx/lib/commonjs/index.js') }));
        },
      },
    ],
  });
  const file = join(dir, 'bundle.mjs');
  writeFileSync(file, out.outputFiles[0]!.text);
  rn = (await import(pathToFileURL(file).href)) as Bundle;
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('React Native adapter on react-native-ble-plx\'s JavaScript layer', () => {
  let server: FakeServer;
  let relay: Awaited<ReturnType<Bundle['Relay']['open']>>;
  let adapter: InstanceType<Bundle['ReactNativeRelay']>;
  const logs: string[] = [];

  async function until(what: string, cond: () => boolean, limitMs = 30_000): Promise<void> {
    const end = Date.now() + limitMs;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; devices: ${JSON.stringify(adapter.devices())}; calls: ${rn.bridge.calls.slice(-10).join(', ')}; log: ${logs.slice(-5).join(' | ')}`);
      await sleep(5);
    }
  }
  const dev = (id: string) => adapter.devices().find((d) => d.id === id)!;
  const relayed = (serial: string) => relay.status().devices.find((d) => d.serial === serial);
  const counterOfWrite = (w: string) => counterOfAck(Buffer.from(w, 'base64'));

  async function start(setup: () => void = () => undefined): Promise<void> {
    rn.bridge.reset();
    rn.bridge.add('AA:00:00:00:00:01', 'SP-RN-000001');
    rn.bridge.add('AA:00:00:00:00:02', 'SP-RN-000002');
    setup();
    server = new FakeServer();
    logs.length = 0;
    relay = await rn.Relay.open({
      relayId: 'rn-test',
      clock: { now: () => Date.now(), setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as number) },
      upload: server.upload,
      store: new rn.KvQueueStore(new rn.MemoryKeyValueStore()),
      flushDelayMs: 10,
      log: (level, message) => logs.push(`${level}: ${message}`),
    });
    adapter = new rn.ReactNativeRelay({ ble: new rn.BleManager(), relay, reconnectBaseMs: 40, reconnectCapMs: 320, log: (level, message) => logs.push(`${level}: ${message}`) });
    adapter.start();
    await sleep(5);
  }

  /** The device notifies frames from..to and the relay carries them up and their ack back. */
  async function relayFrames(id: string, serial: string, from: number, to: number): Promise<void> {
    // The library gives no signal when notifications are on (the CCCD write ends after monitor returns): the device
    // starts sending once it sees its subscription, as the firmware does.
    await until(`${serial} subscribed`, () => rn.bridge.peripherals.get(id)!.monitor !== undefined);
    for (let c = from; c <= to; c++) rn.bridge.notify(id, b64(frame(c)));
    await until(`${serial} acked to ${to}`, () => {
      const w = rn.bridge.peripherals.get(id)!.writes;
      return w.length > 0 && counterOfWrite(w.at(-1)!) === to;
    });
  }

  afterEach(async () => {
    await adapter?.stop();
    await relay?.close();
  });

  it('scans for the service and relays two devices at once: frames up, acks down, one GATT operation at a time', async () => {
    await start();
    await adapter.scan();
    expect(rn.bridge.calls[0]).toBe('startDeviceScan');
    await until('both relayed', () => adapter.devices().filter((d) => d.state === 'connected').length === 2);
    expect(adapter.devices().map((d) => d.serial).sort()).toEqual(['SP-RN-000001', 'SP-RN-000002']);
    await relayFrames('AA:00:00:00:00:01', 'SP-RN-000001', 1, 5);
    await relayFrames('AA:00:00:00:00:02', 'SP-RN-000002', 1, 3);
    expect(server.stored.get('SP-RN-000001')).toEqual(new Set([1, 2, 3, 4, 5]));
    expect(server.stored.get('SP-RN-000002')).toEqual(new Set([1, 2, 3]));
    // Each write is the 12-byte ack, with response (the bridge refuses anything else).
    for (const w of rn.bridge.peripherals.get('AA:00:00:00:00:01')!.writes) expect(Buffer.from(w, 'base64')).toHaveLength(12);
    expect(rn.bridge.maxInFlight).toBe(1);
    await adapter.stop();
    expect(rn.bridge.calls).toContain('stopDeviceScan');
    expect([...rn.bridge.peripherals.values()].map((p) => p.connected)).toEqual([false, false]);
  });

  it('device disconnected (201): the link ends, the relay shows it, and it is reconnected and relays again', async () => {
    await start();
    adapter.add({ id: 'AA:00:00:00:00:01' });
    await until('connected', () => dev('AA:00:00:00:00:01')?.state === 'connected');
    await relayFrames('AA:00:00:00:00:01', 'SP-RN-000001', 1, 2);
    rn.bridge.drop('AA:00:00:00:00:01', { errorCode: 201 });
    await until('seen as dropped', () => relayed('SP-RN-000001')?.state === 'disconnected');
    expect(dev('AA:00:00:00:00:01').state).not.toBe('connected');
    await until('reconnected', () => dev('AA:00:00:00:00:01').state === 'connected' && relayed('SP-RN-000001')!.connections === 2);
    await relayFrames('AA:00:00:00:00:01', 'SP-RN-000001', 3, 4);
    await adapter.stop();
  });

  it('operation cancelled (2): a cancelled connection attempt is retried, and a cancelled ack write is written on the next connection', async () => {
    await start(() => rn.bridge.fail('connectToDevice', { errorCode: 2 }));
    adapter.add({ id: 'AA:00:00:00:00:01' });
    await until('connected after the cancelled attempt', () => dev('AA:00:00:00:00:01')?.state === 'connected');
    expect(rn.bridge.calls.filter((c) => c.startsWith('connectToDevice'))).toHaveLength(2);
    rn.bridge.fail('write', { errorCode: 2 });
    // As in relayFrames: 'connected' comes before the library's monitor reaches the native side; a frame sent before it is lost.
    await until('subscribed', () => rn.bridge.peripherals.get('AA:00:00:00:00:01')!.monitor !== undefined);
    rn.bridge.notify('AA:00:00:00:00:01', b64(frame(1)));
    await until('the ack pending after the cancelled write', () => relayed('SP-RN-000001')?.ackPending === true && relayed('SP-RN-000001')!.ackN === 1);
    expect(logs.join('\n')).toMatch(/writing the ack \(N=1\) to SP-RN-000001 failed: Operation was cancelled \(code 2\)/);
    rn.bridge.drop('AA:00:00:00:00:01');
    await until('the ack written on the next connection', () => rn.bridge.peripherals.get('AA:00:00:00:00:01')!.writes.length === 1);
    expect(counterOfWrite(rn.bridge.peripherals.get('AA:00:00:00:00:01')!.writes[0]!)).toBe(1);
    await adapter.stop();
  });

  it('Android GATT error 133: connection failures are retried with growing backoff until the device connects', async () => {
    const gatt133 = { errorCode: 200, androidErrorCode: 133, reason: 'GATT_ERROR' };
    await start(() => rn.bridge.fail('connectToDevice', gatt133, gatt133, gatt133));
    adapter.add({ id: 'AA:00:00:00:00:01' });
    const delays: number[] = [];
    let seen = 0;
    await until('connected after three GATT errors', () => {
      const d = dev('AA:00:00:00:00:01');
      if (d?.state === 'waiting' && d.failures > seen) {
        seen = d.failures;
        delays.push(d.retryAt! - Date.now());
        expect(d.problem).toMatch(/Device AA:00:00:00:00:01 connection failed \(code 200, Android status 133 GATT_ERROR\)/);
      }
      return d?.state === 'connected';
    });
    expect(seen).toBe(3);
    // Equal jitter: the n-th wait is between half and all of 40·2^(n-1) ms.
    expect(delays[2]!).toBeGreaterThan(60);
    await relayFrames('AA:00:00:00:00:01', 'SP-RN-000001', 1, 2);
    await adapter.stop();
  });

  it('Bluetooth powered off (102): nothing is attempted while it is off, and every device is relayed again once it is on', async () => {
    await start();
    adapter.add({ id: 'AA:00:00:00:00:01' });
    adapter.add({ id: 'AA:00:00:00:00:02' });
    await until('both connected', () => adapter.devices().every((d) => d.state === 'connected'));
    rn.bridge.setState('PoweredOff');
    await until('both waiting', () => adapter.devices().every((d) => d.state === 'waiting'));
    expect(adapter.problem).toBe('Bluetooth is off');
    expect(adapter.devices().map((d) => [d.problem, d.retryAt])).toEqual([
      ['Bluetooth is off', null],
      ['Bluetooth is off', null],
    ]);
    const attempts = rn.bridge.calls.filter((c) => c.startsWith('connectToDevice')).length;
    await sleep(700); // longer than the backoff cap: a retry would have come
    expect(rn.bridge.calls.filter((c) => c.startsWith('connectToDevice')).length).toBe(attempts);
    rn.bridge.setState('PoweredOn');
    await until('both relayed again', () => adapter.devices().every((d) => d.state === 'connected'));
    expect(adapter.problem).toBeUndefined();
    await relayFrames('AA:00:00:00:00:02', 'SP-RN-000002', 1, 1);
    await adapter.stop();
  });

  it('unauthorized (101): the user is told to allow Bluetooth, nothing is retried until the manager reports PoweredOn', async () => {
    await start(() => {
      rn.bridge.state = 'Unauthorized';
    });
    adapter.add({ id: 'AA:00:00:00:00:01' });
    await until('held', () => dev('AA:00:00:00:00:01')?.state === 'waiting' && adapter.problem !== undefined);
    expect(adapter.problem).toBe('the app may not use Bluetooth: allow it in the settings');
    expect(adapter.bluetooth).toBe('Unauthorized');
    const attempts = rn.bridge.calls.filter((c) => c.startsWith('connectToDevice')).length;
    expect(attempts).toBeLessThanOrEqual(1);
    await sleep(700);
    expect(rn.bridge.calls.filter((c) => c.startsWith('connectToDevice')).length).toBe(attempts);
    // A scan refused for the same reason is started again once Bluetooth may be used.
    await expect(adapter.scan()).rejects.toThrow('Device is not authorized to use BluetoothLE (code 101)');
    rn.bridge.setState('PoweredOn');
    await until('connected once allowed', () => dev('AA:00:00:00:00:01').state === 'connected');
    await until('the scan restarted and found the other device', () => dev('AA:00:00:00:00:02')?.state === 'connected');
    expect(rn.bridge.calls.filter((c) => c === 'startDeviceScan')).toHaveLength(2);
    await relayFrames('AA:00:00:00:00:01', 'SP-RN-000001', 1, 1);
    await adapter.stop();
  });
});

describe('KvQueueStore: the React Native queue over a key-value store', () => {
  const frames = (from: number, n: number): QueuedFrame[] => Array.from({ length: n }, (_, i) => ({ id: from + i, serial: 'SP-KV', data: b64(frame(from + i)), rx: 1000 + from + i }));

  /** A store whose power goes after `limit` completed writes: the write in flight is lost, nothing after it happens. */
  class CutPower implements KeyValueStore {
    writes = 0;
    constructor(
      readonly inner: MemKv,
      readonly limit: number,
    ) {}
    getItem(key: string) {
      return this.inner.getItem(key);
    }
    async setItem(key: string, value: string) {
      if (this.writes++ >= this.limit) throw new Error('power cut');
      await this.inner.setItem(key, value);
    }
    async removeItem(key: string) {
      if (this.writes++ >= this.limit) throw new Error('power cut');
      await this.inner.removeItem(key);
    }
  }

  it('keeps what was appended and not removed across a restart', async () => {
    const kv = new MemKv();
    const a = new KvStore(kv);
    expect(await a.load()).toEqual([]);
    await a.append(frames(1, 3));
    await a.append(frames(4, 2));
    await a.remove([2, 4, 5, 99]);
    const b = new KvStore(kv);
    expect((await b.load()).map((f) => f.id).sort((x, y) => x - y)).toEqual([1, 3]);
    await b.remove([1, 3]);
    expect([...kv.map.keys()]).toEqual(['sealpost-relay:index']);
    expect(await new KvStore(kv).load()).toEqual([]);
  });

  it('a power cut at any write loses no frame that was durable and loads nothing it never held', async () => {
    // The same script, cut after 0, 1, 2, ... writes, until it runs through.
    for (let limit = 0; ; limit++) {
      const kv = new MemKv();
      const store = new KvStore(new CutPower(kv, limit));
      await store.load();
      const durable = new Set<number>();
      const removed = new Set<number>();
      const uncertain = new Set<number>();
      let finished = true;
      try {
        for (const [op, ids] of [['append', [1, 2, 3]], ['append', [4, 5]], ['remove', [1, 4]], ['append', [6]], ['remove', [2, 3, 5]], ['append', [7, 8]]] as const) {
          // While an operation is under way its frames may or may not be there after a cut.
          for (const id of ids) {
            uncertain.add(id);
            durable.delete(id);
          }
          if (op === 'append') await store.append(frames(ids[0], ids.length));
          else await store.remove([...ids]);
          for (const id of ids) {
            uncertain.delete(id);
            if (op === 'append') durable.add(id);
            else removed.add(id);
          }
        }
      } catch (e) {
        expect((e as Error).message).toBe('power cut');
        finished = false;
      }
      const loaded = await new KvStore(kv).load();
      const ids = new Set(loaded.map((f) => f.id));
      for (const id of durable) expect(ids.has(id), `cut after ${limit} writes: frame ${id} was durable`).toBe(true);
      for (const id of ids) expect(durable.has(id) || uncertain.has(id), `cut after ${limit} writes: frame ${id} loaded (removed: ${removed.has(id)})`).toBe(true);
      for (const f of loaded) expect(f).toEqual(frames(f.id, 1)[0]);
      if (finished) {
        expect([...ids].sort()).toEqual([6, 7, 8]);
        break;
      }
    }
  });

  it('an index that is not its own is refused with what to do', async () => {
    const kv = new MemKv(new Map([['sealpost-relay:index', '{"x":1}']]));
    await expect(new KvStore(kv).load()).rejects.toThrow(/the queue's index \(sealpost-relay:index\) is not a list of its batch keys: remove the key to start with an empty queue/);
  });
});
