// Many devices through one relay (issue #16, item 6): one Relay (the package's code, relay/index.ts) carrying N
// simulated links at once to a real server process, each link notifying frames sealed beforehand (the devices' work,
// not the relay's) at `rate` frames a second. Per N: frames per second stored end to end, the relay process's CPU
// per frame (and so how many devices at 1 frame/s one core carries), latency from notification to the ack covering
// it written back to the link (mostly the relay's 1 s flush delay, by design), and heap per connected device (after
// gc, run node with --expose-gc as below; meaningful from a few hundred devices: the heap moves by some 100 KiB alone).
//
//   node --expose-gc --import tsx bench/relay-many.ts [--devices 20,100,400] [--rate 1] [--seconds 20]
//
// The simulated links cost little (a timer per device), so the CPU is the relay's: queue, batching, JSON, HTTP
// client, answers, acks. A phone core is slower than this machine's: the README gives the figures with the load.
import { parseArgs } from 'node:util';
import { encodeSample, sealFrame } from '../protocol/index.js';
import { MemoryQueueStore, Relay, fetchUploader, type DeviceLink } from '../relay/index.js';
import { benchDb, freePort, importFleet, pct, startServer, stopServer, writeConfig } from './harness.js';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '20,100,400' }, rate: { type: 'string', default: '1' }, seconds: { type: 'string', default: '20' } } });
const counts = values.devices!.split(',').map(Number);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const gc = (globalThis as { gc?: () => void }).gc;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const bench = benchDb('sqlite');
const max = Math.max(...counts);
const fleet = await importFleet(bench, max, { serialPrefix: 'SP-RM' });
const port = await freePort();
const config = writeConfig(bench, { db: bench.db, listen: `127.0.0.1:${port}`, ingest_keys: [fleet.keyFile], rate_limit: false, log_level: 'warn' });
const server = await startServer(config, port);
const next = new Map<string, number>(); // the next counter of each device, across runs

function heap(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

try {
  console.log(`relay-many: rate ${rate} frame/s per device, ${seconds} s per run, gc ${gc ? 'on' : 'off (run node with --expose-gc)'}`);
  for (const n of counts) {
    const devices = fleet.devices.slice(0, n);
    const perDevice = Math.ceil(rate * seconds);
    // The devices' frames, sealed before the clock starts.
    const frames = new Map<string, { counter: number; bytes: Uint8Array }[]>();
    const pt = new Uint8Array(8);
    for (const d of devices) {
      const first = next.get(d.serial) ?? 1;
      const list = [];
      for (let i = 0; i < perDevice; i++) {
        encodeSample(pt, 1, (first + i) * 10, [{ channel: 1, value: 20 }], 0);
        list.push({ counter: first + i, bytes: sealFrame(d, first + i, pt, 20) });
      }
      frames.set(d.serial, list);
      next.set(d.serial, first + perDevice);
    }
    const relay = await Relay.open({
      relayId: `bench-${n}`,
      clock: { now: () => Date.now(), setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) },
      upload: fetchUploader(`http://127.0.0.1:${port}`),
      store: new MemoryQueueStore(),
      log: () => undefined,
      stallMs: 0,
    });
    const before = heap(); // the relay open, no device yet
    const sentAt = new Map<string, Map<number, number>>();
    const latencies: number[] = [];
    const senders: ((f: Uint8Array) => void)[] = [];
    for (const d of devices) {
      const sent = new Map<number, number>();
      sentAt.set(d.serial, sent);
      const link: DeviceLink = {
        info: () => JSON.stringify({ serial: d.serial, v: 1, f: 20, b: 'puckjs', fw: 'bench' }),
        onFrame: (cb) => void senders.push(cb),
        write: (writes) => {
          const ack = writes[0]!;
          const acked = new DataView(ack.buffer, ack.byteOffset).getUint32(0);
          const now = performance.now();
          for (const [c, t] of sent) if (c <= acked) {
            latencies.push(now - t);
            sent.delete(c);
          }
        },
        disconnect: () => undefined,
        connected: () => true,
      };
      await relay.connect(link);
    }
    const connected = heap();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    // Each device on its own phase, `rate` frames a second.
    const timers = devices.map((d, i) => {
      const list = frames.get(d.serial)!;
      let k = 0;
      const send = () => {
        const f = list[k++];
        if (!f) return;
        sentAt.get(d.serial)!.set(f.counter, performance.now());
        senders[i]!(f.bytes);
      };
      const start = setTimeout(() => {
        send();
        interval.ref();
      }, (i / n) * (1000 / rate));
      const interval = setInterval(send, 1000 / rate);
      return { start, interval };
    });
    const total = n * perDevice;
    const end = performance.now() + seconds * 1000 + 30_000;
    while (relay.status().totals.accepted < total && performance.now() < end) await sleep(50);
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    for (const t of timers) {
      clearTimeout(t.start);
      clearInterval(t.interval);
    }
    await sleep(1500); // the last answers' acks
    const s = relay.status();
    const cpuS = (cpu.user + cpu.system) / 1e6;
    console.log(
      [
        `${n} devices:`,
        `stored ${s.totals.accepted}/${total} in ${wall.toFixed(1)} s (${(s.totals.accepted / wall).toFixed(1)} frames/s),`,
        `${s.totals.requests} requests,`,
        `relay CPU ${cpuS.toFixed(2)} s = ${((cpuS / wall) * 100).toFixed(1)}% of a core, ${((cpuS * 1e6) / Math.max(1, s.totals.accepted)).toFixed(0)} µs per frame`,
        `(one core: ${Math.floor(s.totals.accepted / cpuS)} frames/s),`,
        `ack latency p50 ${pct(latencies, 0.5).toFixed(0)} ms p99 ${pct(latencies, 0.99).toFixed(0)} ms,`,
        `heap per device ${gc ? ((connected - before) / n / 1024).toFixed(1) + ' KiB' : '?'} connected idle`,
      ].join(' '),
    );
    await relay.close();
  }
} finally {
  await stopServer(server);
  await bench.drop();
}
