// End to end, with everything going wrong at once (issue 6, "chaos test"):
// simulated devices running the real firmware on the sim HAL, relayed by
// sim/relay.ts + the relay core (relay/) over real HTTP to a real ingest
// server on a SQLite file, while the relay drops links at random, 30% of
// uploads fail (before the server sees them or after it stored them), the
// server is restarted once, the relay app is restarted once (its queue is a
// journal file), and every device loses power at random moments.
//
// Then, after a quiet period: (a) no counter was sealed twice by any device,
// (b) every frame a device sealed is stored exactly once or lies in a stored
// gap, every sample's readings are stored exactly once, and (c) the database
// holds nothing no device sealed.
//
// SEALPOST_CHAOS_SEED=<n> replays a run; a failure prints the seed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { boardProfile, withDevice } from '../../boards/index.js';
import type { BoardProfile } from '../../boards/types.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { seededRandom } from '../../hal/sim/random.js';
import { decodePlaintext, type Decoded } from '../../protocol/index.js';
import { FileQueueStore } from '../../relay/file-queue.js';
import { makeSimFleet, sampleMoments } from '../../sim/fleet.js';
import { SimRelay } from '../../sim/relay.js';
import { NO_RATE_LIMIT, type GapRow, type StoredFrame, type StoredReading } from '../../server/index.js';
import { IngestServer, newKeySet } from '../helpers/relay-server.js';
import { counterAt } from '../../firmware/outbox.js';

const SEED = Number(process.env.SEALPOST_CHAOS_SEED ?? 20261127);
const DEVICES = 20;
const MIN_SAMPLES = 500;
/**
 * The 'sim' board with two sensors instead of five: every sample is two
 * sample records (20-byte frames hold one reading each), and the whole run
 * stays well inside the time budget.
 */
const PROFILE: BoardProfile = withDevice(boardProfile('sim'), { sensors: ['temperature', 'battery'], samplePeriodMs: 1000 });
const STEP_MS = 100;
/** Mean time a device stays powered between cuts, and how long it stays off. */
const MEAN_ON_MS = 150_000;
const OFF_MS: [number, number] = [500, 20_000];
const SERVER_DOWN_MS = 20_000;
const QUIET_LIMIT_MS = 180_000;

const SECOND = 1000;
const dir = mkdtempSync(join(tmpdir(), 'sealpost-chaos-'));

/** Stops whatever a failed run left running. */
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

interface Summary {
  [k: string]: string | number;
}

describe('chaos: a relayed fleet under link drops, failed uploads, a server restart and power cuts', () => {
  it(`loses nothing, doubles nothing, invents nothing (seed ${SEED})`, { timeout: 170_000 }, async () => {
    const started = Date.now();
    const random = seededRandom(SEED);
    const clock = new VirtualClock();
    const keys = newKeySet();
    const server = new IngestServer(keys, dir);
    const fleet = makeSimFleet({
      count: DEVICES,
      ingestPublic: keys.ingest.publicFile,
      factoryPrivate: keys.factory.privateFile,
      clock,
      profile: PROFILE,
      batch: 'CHAOS-1',
      prefix: 'SP-CH',
      seed: SEED,
      // A little loss in the air on top of Espruino's silent queue drops.
      radio: { lossRate: 0.01, random: seededRandom(SEED + 99) },
    });
    // The server's rate limits refill in real time while the relay's clock
    // runs about 60 times faster, which would throttle the simulated fleet
    // to a fraction of what it seals: off here (429 has unit tests).
    const serverConfig = { rateLimit: NO_RATE_LIMIT };
    await server.start(serverConfig);
    await server.import(fleet.manifest);
    const logs: string[] = [];
    const queuePath = join(dir, 'relay.queue');
    // The relay app is restarted once too: a new core on the same journal.
    const relays: SimRelay[] = [];
    let store = await FileQueueStore.open(queuePath);
    const startRelay = async () => {
      const r = await SimRelay.start({
        clock,
        devices: () => fleet.devices,
        server: server.url,
        store,
        seed: SEED + relays.length,
        chaos: { meanLinkMs: 30 * SECOND, failureRate: 0.3 },
        relay: { flushDelayMs: 500, maxFramesPerRequest: 200, requestTimeoutMs: 10 * SECOND, backoffBaseMs: 500, backoffCapMs: 30 * SECOND },
        log: (level, message) => {
          if (level !== 'info') logs.push(`${clock.now()} ${level}: ${message}`);
        },
      });
      relays.push(r);
      return r;
    };
    let relay = await startRelay();
    cleanup.push(
      () => server.stop(),
      () => store.close(),
      () => relay.stop(),
    );
    const sum = <T,>(f: (r: SimRelay) => T, add: (a: T, b: T) => T) => relays.map(f).reduce(add);
    const uploads = () => sum((r) => r.stats.uploads, (a, b) => a + b);
    const failedByKind = () =>
      sum(
        (r) => ({ ...r.stats.failed }),
        (a, b) => {
          for (const k of Object.keys(a) as (keyof typeof a)[]) a[k] += b[k];
          return a;
        },
      );
    const simulatedFailures = () => Object.values(failedByKind()).reduce((a, b) => a + b, 0);

    const failWith = (what: string) => new Error(`${what} (seed ${SEED}; rerun with SEALPOST_CHAOS_SEED=${SEED})`);
    const step = async (ms = STEP_MS) => {
      clock.advance(ms);
      await relay.settle();
    };

    // Power: each device is cut at random moments (exponential gaps), stays
    // off a random while and boots again; the cuts fall at any millisecond,
    // inside sampling, sealing, notifying or an ack.
    let powerCuts = 0;
    let chaos = true;
    const cutsPerDevice = new Array<number>(DEVICES).fill(0);
    const scheduleCut = (i: number, first = false) => {
      // The first cut of every device falls inside the run; later ones come at random.
      const on = first ? 20 * SECOND + Math.round(random() * 0.7 * MIN_SAMPLES * SECOND) : Math.round(-Math.log(1 - random()) * MEAN_ON_MS);
      clock.setTimeout(() => {
        const sim = fleet.devices[i]!;
        if (!chaos || !sim.on) return;
        sim.powerOff();
        powerCuts++;
        cutsPerDevice[i]!++;
        const off = OFF_MS[0] + Math.round(random() * (OFF_MS[1] - OFF_MS[0]));
        clock.setTimeout(() => {
          // Once the quiet phase has begun it owns the power switches.
          if (!chaos) return;
          if (!sim.on) sim.boot();
          scheduleCut(i);
        }, off);
      }, on);
    };
    fleet.devices.forEach((sim, i) => {
      // Staggered power-up so the devices' sampling phases differ.
      clock.setTimeout(() => sim.boot(), Math.round(random() * 2000));
      scheduleCut(i, true);
    });

    // A sample is one sampling moment: its records share the power-up and uptime.
    const samplesOf = (i: number) => sampleMoments(fleet.devices[i]!);
    const fewestSamples = () => Math.min(...fleet.devices.map((_, i) => samplesOf(i)));

    // Phase 1: chaos until every device has sealed enough samples. The
    // server goes down once, somewhere in the middle; the relay app restarts
    // once, at another moment, with frames in its queue.
    const serverRestartAt = Math.round(MIN_SAMPLES * SECOND * (0.35 + random() * 0.2));
    const relayRestartAt = Math.round(MIN_SAMPLES * SECOND * (0.6 + random() * 0.2));
    let serverRestarted = false;
    let relayRestarted = false;
    let queuedAtRelayRestart = 0;
    while (fewestSamples() < MIN_SAMPLES + 10) {
      await step();
      if (!serverRestarted && clock.now() >= serverRestartAt) {
        serverRestarted = true;
        await server.stop();
        for (let t = 0; t < SERVER_DOWN_MS; t += STEP_MS) await step();
        await server.start(serverConfig);
      }
      if (!relayRestarted && clock.now() >= relayRestartAt && relay.core.status().queue > 0) {
        relayRestarted = true;
        queuedAtRelayRestart = relay.core.status().queue;
        await relay.stop();
        await store.close();
        for (let t = 0; t < 2 * SECOND; t += STEP_MS) clock.advance(STEP_MS);
        store = await FileQueueStore.open(queuePath);
        expect(store.size).toBe(queuedAtRelayRestart);
        relay = await startRelay();
      }
      if (clock.now() > 3 * MIN_SAMPLES * SECOND) throw failWith(`devices sealed too few samples by ${clock.now()} ms: ${fleet.devices.map((_, i) => samplesOf(i)).join(' ')}`);
    }
    const chaosEnd = clock.now();
    const chaosUploads = uploads();
    const chaosFailed = simulatedFailures();

    // Phase 2: quiet. Every device on, links kept, uploads succeed. A device
    // is switched off (on purpose, outbox empty: nothing outstanding) once
    // the server has acknowledged everything it sealed.
    chaos = false;
    relay.setChaos({ meanLinkMs: 0, failureRate: 0 });
    for (const sim of fleet.devices) if (!sim.on) sim.boot();
    const done = new Set<number>();
    while (done.size < DEVICES || relay.core.status().queue > 0) {
      relay.core.flush();
      await step();
      fleet.devices.forEach((sim, i) => {
        if (done.has(i) || !sim.device) return;
        const s = sim.device.status();
        if (s.connected && s.outbox === 0 && clock.now() - chaosEnd > 10 * SECOND) {
          sim.powerOff();
          done.add(i);
        }
      });
      if (clock.now() - chaosEnd > QUIET_LIMIT_MS) {
        const st = relay.core.status();
        const stuck: string[] = [];
        for (const [i, sim] of fleet.devices.entries()) {
          if (done.has(i)) continue;
          const row = await server.running.app.storage.device(fleet.serials[i]!);
          const ob = sim.device?.outbox;
          stuck.push(
            `${fleet.serials[i]}: device ${JSON.stringify(sim.device?.status())} oldest ${ob && ob.count > 0 ? counterAt(ob, 0) : '-'}; ` +
              `relay ${JSON.stringify(st.devices.find((d) => d.serial === fleet.serials[i]))}; server settled ${row?.settled} max ${row?.maxCounter}`,
          );
        }
        throw failWith(`not settled after a quiet ${QUIET_LIMIT_MS} ms:\n${stuck.join('\n')}\nrelay queue ${st.queue}, last upload ${JSON.stringify(st.lastUpload)}`);
      }
    }
    const virtualMs = clock.now();
    const status = relay.core.status();
    await relay.stop();
    const totals = sum(
      (r) => r.core.status().totals,
      (a, b) => {
        for (const k of Object.keys(a) as (keyof typeof a)[]) a[k] += b[k];
        return a;
      },
    );

    // ---- what the database holds ----
    const storage = server.running.app.storage;
    let frames = 0;
    let samples = 0;
    let gapRows = 0;
    let gapCounters = 0;
    const gapKinds = new Map<string, number>();
    let sealedTotal = 0;
    let samplesInGaps = 0;
    const problems: string[] = [];
    const problem = (p: string) => {
      if (problems.length < 20) problems.push(p);
    };
    for (const [i, sim] of fleet.devices.entries()) {
      const serial = fleet.serials[i]!;
      // (a) one counter, one frame: unique across every boot of the device.
      const sealed = new Map<number, Decoded>();
      for (const f of sim.sealedLog) {
        if (sealed.has(f.counter)) problem(`${serial}: counter ${f.counter} sealed twice (power-ups ${f.power})`);
        sealed.set(f.counter, decodePlaintext(f.plaintext));
      }
      sealedTotal += sealed.size;
      const stored: StoredFrame[] = await storage.frames(serial);
      const readings: StoredReading[] = await storage.readings(serial, { limit: 10_000_000 });
      const gaps: GapRow[] = await storage.gaps(serial);
      frames += stored.length;
      gapRows += gaps.length;
      for (const g of gaps) {
        gapCounters += g.count;
        gapKinds.set(g.kind, (gapKinds.get(g.kind) ?? 0) + g.count);
      }
      const inGap = (c: number) => gaps.some((g) => c >= g.first && c < g.first + g.count);
      const storedBy = new Map<number, StoredFrame>();
      for (const f of stored) {
        if (storedBy.has(f.counter)) problem(`${serial}: counter ${f.counter} stored twice`);
        storedBy.set(f.counter, f);
      }
      const readingsBy = new Map<number, StoredReading[]>();
      for (const r of readings) {
        const list = readingsBy.get(r.counter) ?? [];
        list.push(r);
        readingsBy.set(r.counter, list);
      }
      // (b) everything sealed is stored exactly once, or in a gap (never both).
      for (const [counter, decoded] of sealed) {
        const s = storedBy.get(counter);
        const gap = inGap(counter);
        if (decoded.type === 'sample') samples++;
        if (!s && !gap) problem(`${serial}: sealed counter ${counter} (${decoded.type}) is neither stored nor in a gap`);
        if (s && gap) problem(`${serial}: counter ${counter} is stored and also inside a gap`);
        if (!s && gap && decoded.type === 'sample') samplesInGaps++;
        if (s && decoded.type === 'sample') {
          const rs = readingsBy.get(counter) ?? [];
          if (rs.length !== decoded.readings.length) problem(`${serial}: counter ${counter} has ${rs.length} readings stored, sealed ${decoded.readings.length}`);
          rs.forEach((r, idx) => {
            const want = decoded.readings[idx];
            if (!want || r.idx !== idx || r.channel !== want.channel || r.value !== want.value) {
              problem(`${serial}: reading ${counter}/${idx} stored as ${JSON.stringify(r)}, sealed ${JSON.stringify(want)}`);
            }
          });
        }
      }
      // (c) nothing stored that the device did not seal, with the same content.
      for (const f of stored) {
        const d = sealed.get(f.counter);
        if (!d) problem(`${serial}: stored counter ${f.counter} was never sealed`);
        else if (JSON.stringify(JSON.parse(f.content)) !== JSON.stringify(d)) problem(`${serial}: stored counter ${f.counter} content ${f.content} differs from sealed ${JSON.stringify(d)}`);
      }
      for (const c of readingsBy.keys()) if (!sealed.has(c)) problem(`${serial}: readings for counter ${c}, never sealed`);
      const gapsOutside = gaps.filter((g) => g.first < 1 || g.first + g.count - 1 > Math.max(0, ...sealed.keys()));
      if (gapsOutside.length > 0) problem(`${serial}: gaps beyond the last counter ever sealed: ${JSON.stringify(gapsOutside)}`);
      if (samplesOf(i) < MIN_SAMPLES) problem(`${serial}: only ${samplesOf(i)} samples sealed`);
    }
    const others = (await storage.devices()).filter((d) => !fleet.serials.includes(d.serial));
    if (others.length > 0) problem(`devices in the database that are not in the fleet: ${others.map((d) => d.serial).join(', ')}`);

    const summary: Summary = {
      seed: SEED,
      devices: DEVICES,
      'samples sealed (moments)': fleet.devices.reduce((a, _, i) => a + samplesOf(i), 0),
      'sample records sealed': samples,
      'frames sealed': sealedTotal,
      'frames stored': frames,
      'sample records lost (in gaps)': samplesInGaps,
      'gap rows': gapRows,
      'counters in gaps': `${gapCounters} (${[...gapKinds].map(([k, v]) => `${k} ${v}`).join(', ')})`,
      'duplicates (server)': totals.duplicates,
      'power cuts': powerCuts,
      'link drops (relay)': sum((r) => r.stats.drops, (a, b) => a + b),
      'stall reconnects (relay)': totals.stalls,
      connections: sum((r) => r.stats.connects, (a, b) => a + b),
      uploads: uploads(),
      'failed uploads (simulated)': `${chaosFailed} of ${chaosUploads} during the chaos (${((100 * chaosFailed) / chaosUploads).toFixed(0)}%)`,
      'failed by kind': Object.entries(failedByKind())
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
      'failed requests (all, incl. server down)': totals.failedRequests,
      'server starts': server.starts,
      'relay restarts': `${relays.length - 1} (${queuedAtRelayRestart} frames queued at the restart)`,
      'virtual time': `${(virtualMs / 1000).toFixed(0)} s`,
      'wall time': `${((Date.now() - started) / 1000).toFixed(1)} s`,
    };
    console.log(
      'chaos summary\n' +
        Object.entries(summary)
          .map(([k, v]) => `  ${k.padEnd(42)} ${v}`)
          .join('\n'),
    );
    await store.close();
    await server.stop();

    if (problems.length > 0) throw failWith(`${problems.length} problem(s):\n${problems.join('\n')}\nrelay log tail:\n${logs.slice(-10).join('\n')}`);
    expect(powerCuts).toBeGreaterThanOrEqual(DEVICES);
    expect(cutsPerDevice.every((n) => n >= 1)).toBe(true);
    expect(sum((r) => r.stats.drops, (a, b) => a + b)).toBeGreaterThan(0);
    expect(totals.rejected).toBe(0);
    expect(totals.dropped).toBe(0);
    expect(status.queue).toBe(0);
    for (const n of Object.values(failedByKind())) expect(n).toBeGreaterThan(0);
    expect(chaosFailed / chaosUploads).toBeGreaterThan(0.2);
    expect(server.starts).toBe(2);
    expect(relays).toHaveLength(2);
    expect(queuedAtRelayRestart).toBeGreaterThan(0);
  });
});
