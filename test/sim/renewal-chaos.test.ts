// Key renewal under chaos (issue #17 item 5(c)): simulated devices running the real firmware
// (firmware/device.ts + firmware/renewal.ts on hal/sim, format-2 device files from a key set made by
// `keys init`), relayed by sim/relay.ts + the relay core over real HTTP to a real ingest server on a
// SQLite file, while the relay drops links at random, 30% of uploads fail (before the server sees them
// or after it stored them) and devices lose power at random moments. Mid-run the operator runs
// `keys renew` and restarts the server with the new ingest key and the announce directory (epoch 1);
// later again (epoch 2). One device is switched off before the first renewal and comes back only
// after the second.
//
// Then, after a quiet period: no (key, counter) pair sealed twice; every frame a device sealed is
// stored exactly once or lies in a reported gap, never both, and nothing is stored that no device
// sealed; every acknowledged counter is stored or in a gap; every device is on epoch 2 (GET /v1/fleet
// and the epoch rows); the device that was away went from epoch 0 straight to epoch 2.
//
// SEALPOST_RENEWAL_CHAOS_SEED=<n> replays a run; a failure prints the seed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { boardProfile, withDevice } from '../../boards/index.js';
import type { BoardProfile } from '../../boards/types.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { seededRandom } from '../../hal/sim/random.js';
import { decodePlaintext, type Decoded } from '../../protocol/index.js';
import { MemoryQueueStore } from '../../relay/memory-queue.js';
import { sampleMoments } from '../../sim/fleet.js';
import { SimDevice } from '../../sim/device.js';
import { SimRelay } from '../../sim/relay.js';
import { NO_RATE_LIMIT, type GapRow, type ServerConfig, type StoredFrame } from '../../server/index.js';
import { IngestServer } from '../helpers/relay-server.js';
import { makeRenewalFleet } from '../helpers/renewal.js';
import { format2File, reusedNonces } from '../helpers/sim-renewal.js';
import { manifestFor, readToken } from '../helpers/server.js';
import { counterAt } from '../../firmware/outbox.js';

const SEED = Number(process.env.SEALPOST_RENEWAL_CHAOS_SEED ?? 20261208);
/** Four devices through the chaos, and one away across both renewals. */
const DEVICES = 5;
const AWAY = DEVICES - 1;
const SECOND = 1000;
const STEP_MS = 100;
/** The two renewals, in simulated time; the away device goes off before the first. */
const AWAY_OFF_AT = 30 * SECOND;
const RENEW_1_AT = 60 * SECOND;
const RENEW_2_AT = 150 * SECOND;
const CHAOS_END = 240 * SECOND;
const MEAN_ON_MS = 60_000;
const OFF_MS: [number, number] = [500, 10_000];
const QUIET_LIMIT_MS = 240_000;
/** The 'sim' board with two sensors, one sample a second: two sample records per sample. */
const PROFILE: BoardProfile = withDevice(boardProfile('sim'), { sensors: ['temperature', 'battery'], samplePeriodMs: 1000 });
/** Counters as runs, "1-60 81-96", for failure messages. */
function ranges(counters: number[]): string {
  const sorted = [...new Set(counters)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(' ');
}
const REKEY_TYPES = new Set([0x30, 0x31, 0x32, 0x33, 0x34]);

const dir = mkdtempSync(join(tmpdir(), 'sealpost-renewal-chaos-'));
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('key renewal under chaos: a relayed fleet renews twice through link drops, failed uploads and power cuts', () => {
  it(`every device ends on the latest epoch, nothing lost outside a gap, nothing doubled (seed ${SEED})`, { timeout: 300_000 }, async () => {
    const started = Date.now();
    const random = seededRandom(SEED);
    const clock = new VirtualClock();
    const fleet = makeRenewalFleet(DEVICES, 'SP-RC');
    cleanup.push(async () => rmSync(fleet.dir, { recursive: true, force: true }));
    fleet.manifest = manifestFor(fleet, fleet.devices, fleet.batch, PROFILE.frameSize, 'sim');
    const serials = fleet.devices.map((d) => d.serial);
    const sims = fleet.devices.map(
      (d, i) =>
        new SimDevice({
          clock,
          profile: PROFILE,
          deviceFile: format2File(fleet, d, PROFILE.frameSize),
          seed: SEED * 10_007 + i,
          radio: { lossRate: 0.01, random: seededRandom(SEED + 99 + i) },
          // Key renewal's hardware random source, seeded so a run replays.
          hwRand: ((r) => () => Math.floor(r() * 0x1_0000_0000))(seededRandom(SEED * 31 + i)),
        }),
    );
    const server = new IngestServer({ ingest: fleet.ingest, factory: fleet.factory }, dir);
    // What the operator's config says: the ingest keys of every epoch `keys renew` made so far and,
    // once there is an ANNOUNCE, the renewal section (server/config.ts "renewal").
    const config = (): Partial<ServerConfig> => ({
      rateLimit: NO_RATE_LIMIT,
      ingestKeys: [...fleet.ingestKeyFiles],
      renewal: fleet.ingestKeyFiles.length > 1 ? { publicKey: fleet.paths.renewalPublic, announce: [fleet.dir], graceMs: 7 * 86_400_000 } : null,
    });
    await server.start(config());
    cleanup.push(() => server.stop());
    await server.import(fleet.manifest);
    const logs: string[] = [];
    const relay = await SimRelay.start({
      clock,
      devices: () => sims,
      server: server.url,
      store: new MemoryQueueStore(),
      seed: SEED,
      chaos: { meanLinkMs: 30 * SECOND, failureRate: 0.3 },
      relay: { flushDelayMs: 500, maxFramesPerRequest: 200, requestTimeoutMs: 10 * SECOND, backoffBaseMs: 500, backoffCapMs: 30 * SECOND },
      log: (level, message) => {
        if (level !== 'info') logs.push(`${clock.now()} ${level}: ${message}`);
      },
    });
    cleanup.push(() => relay.stop());
    const failWith = (what: string) => new Error(`${what} (seed ${SEED}; rerun with SEALPOST_RENEWAL_CHAOS_SEED=${SEED})\nrelay log tail:\n${logs.slice(-10).join('\n')}`);
    const step = async (ms = STEP_MS) => {
      clock.advance(ms);
      await relay.settle();
    };
    // The epoch a device's firmware says it committed last (firmware/renewal.ts prints it).
    const committedEpoch = (i: number): number => {
      let e = 0;
      for (const l of sims[i]!.consoleLines) {
        const m = /renewal: epoch (\d+) committed/.exec(l);
        if (m) e = Number(m[1]);
      }
      return e;
    };

    // Power: cuts at random moments (exponential gaps), a random while off, then boot again.
    let chaos = true;
    let powerCuts = 0;
    const scheduleCut = (i: number) => {
      clock.setTimeout(
        () => {
          const sim = sims[i]!;
          if (!chaos || !sim.on) return;
          sim.powerOff();
          powerCuts++;
          clock.setTimeout(
            () => {
              if (!chaos) return;
              if (!sim.on) sim.boot();
              scheduleCut(i);
            },
            OFF_MS[0] + Math.round(random() * (OFF_MS[1] - OFF_MS[0])),
          );
        },
        Math.round(5 * SECOND - Math.log(1 - random()) * MEAN_ON_MS),
      );
    };
    sims.forEach((sim, i) => {
      clock.setTimeout(() => sim.boot(), Math.round(random() * 2000));
      if (i !== AWAY) scheduleCut(i);
    });
    clock.setTimeout(() => sims[AWAY]!.powerOff(), AWAY_OFF_AT);

    // `sealpost keys renew`, then the server restarted with the new ingest key and the announce directory.
    let renewals = 0;
    const renew = async () => {
      fleet.renew();
      renewals++;
      await server.stop();
      for (let t = 0; t < 2 * SECOND; t += STEP_MS) await step();
      await server.start(config());
    };

    // Phase 1: chaos, with two renewals announced on the way.
    let onEpoch1BeforeRenewal2 = 0;
    while (clock.now() < CHAOS_END) {
      await step();
      if (renewals === 0 && clock.now() >= RENEW_1_AT) await renew();
      if (renewals === 1 && clock.now() >= RENEW_2_AT) {
        // The first renewal reached the fleet under chaos before the second is announced.
        for (let i = 0; i < AWAY; i++) if (committedEpoch(i) === 1) onEpoch1BeforeRenewal2++;
        await renew();
      }
    }
    const awayLinesBefore = sims[AWAY]!.consoleLines.length;
    expect(sims[AWAY]!.on).toBe(false);

    // Phase 2: quiet. Every device on (the away one back after both renewals), links kept, uploads
    // succeed, until each device is on epoch 2 with its outbox empty and the relay's queue is empty.
    chaos = false;
    relay.setChaos({ meanLinkMs: 0, failureRate: 0 });
    for (const sim of sims) if (!sim.on) sim.boot();
    const quietStart = clock.now();
    // On epoch 2 at the server too: its row is committed once a frame under K_2 arrived.
    const serverOn2 = new Set<string>();
    const done = (i: number) => {
      const s = sims[i]!.device?.status();
      return committedEpoch(i) === 2 && serverOn2.has(serials[i]!) && !!s && s.connected && s.outbox === 0;
    };
    while (!sims.every((_, i) => done(i)) || relay.core.status().queue > 0) {
      relay.core.flush();
      await step();
      if (clock.now() % SECOND === 0) {
        for (const r of await server.running.app.storage.epochs.rows(serials)) if (r.epoch === 2 && r.state === 'committed') serverOn2.add(r.serial);
      }
      if (clock.now() - quietStart > QUIET_LIMIT_MS) {
        const storage = server.running.app.storage;
        const stuck: string[] = [];
        for (const [i, sim] of sims.entries()) {
          const row = await storage.device(serials[i]!);
          const ob = sim.device?.outbox;
          stuck.push(
            `${serials[i]}: epoch ${committedEpoch(i)} device ${JSON.stringify(sim.device?.status())} oldest ${ob && ob.count > 0 ? counterAt(ob, 0) : '-'}; ` +
              `server settled ${row?.settled} max ${row?.maxCounter}; epoch rows ${JSON.stringify((await storage.epochs.rows([serials[i]!])).map((r) => [r.epoch, r.fromEpoch, r.state, r.rekeyCounter, r.commitCounter, r.prevDroppedAt !== null]))}; ` +
              `gaps ${JSON.stringify((await storage.gaps(serials[i]!)).map((g) => [g.first, g.count, g.kind]))}; ` +
              `stored ${ranges((await storage.frames(serials[i]!)).map((f) => f.counter))}; sealed ${ranges(sim.sealedLog.map((f) => f.counter))}; ` +
              `renewal console ${JSON.stringify(sim.consoleLines.filter((l) => l.includes('renewal')))}`,
          );
        }
        throw failWith(`not on epoch 2 and settled after a quiet ${QUIET_LIMIT_MS / 1000} s:\n${stuck.join('\n')}`);
      }
    }
    const virtualMs = clock.now();
    const totals = relay.core.status().totals;
    const stats = { ...relay.stats, failed: { ...relay.stats.failed } };
    await relay.stop();

    // ---- what the database holds ----
    const storage = server.running.app.storage;
    const problems: string[] = [];
    const problem = (p: string) => {
      if (problems.length < 20) problems.push(p);
    };
    let sealedTotal = 0;
    let storedTotal = 0;
    let gapCounters = 0;
    let rekeyFrames = 0;
    for (const [i, sim] of sims.entries()) {
      const serial = serials[i]!;
      for (const k of reusedNonces(sim)) problem(`${serial}: nonce reused under a key (key:counter ${k})`);
      // Counters rise across epochs: one counter, one frame, whatever the key.
      const sealed = new Map<number, Uint8Array>();
      // The device's keys in the order it used them: epoch 0, then each epoch it committed.
      const epochs = [0, ...sim.consoleLines.flatMap((l) => /renewal: epoch (\d+) committed/.exec(l)?.[1] ?? []).map(Number)];
      const epochOfKey = new Map<string, number>();
      const sealedKey = new Map<number, string>();
      for (const f of sim.sealedLog) {
        if (!epochOfKey.has(f.key)) epochOfKey.set(f.key, epochs[epochOfKey.size]!);
        sealedKey.set(f.counter, f.key);
      }
      for (const f of sim.sealedLog) {
        if (sealed.has(f.counter)) problem(`${serial}: counter ${f.counter} sealed twice (power-ups ${f.power})`);
        sealed.set(f.counter, f.plaintext);
        if (REKEY_TYPES.has(f.plaintext[0]!)) rekeyFrames++;
      }
      sealedTotal += sealed.size;
      const stored: StoredFrame[] = await storage.frames(serial);
      const gaps: GapRow[] = await storage.gaps(serial);
      storedTotal += stored.length;
      for (const g of gaps) gapCounters += g.count;
      const inGap = (c: number) => gaps.some((g) => c >= g.first && c < g.first + g.count);
      const storedBy = new Map<number, StoredFrame>();
      for (const f of stored) {
        if (storedBy.has(f.counter)) problem(`${serial}: counter ${f.counter} stored twice`);
        storedBy.set(f.counter, f);
      }
      for (const [counter, pt] of sealed) {
        const s = storedBy.get(counter);
        const gap = inGap(counter);
        if (!s && !gap) problem(`${serial}: sealed counter ${counter} (type 0x${pt[0]!.toString(16)}) is neither stored nor in a gap`);
        if (s && gap) problem(`${serial}: counter ${counter} is stored and also inside a gap`);
      }
      for (const f of stored) {
        const pt = sealed.get(f.counter);
        if (!pt) {
          problem(`${serial}: stored counter ${f.counter} was never sealed`);
          continue;
        }
        // REKEY frames are stored as the server reads them: part, its 7 bytes, the epoch of the key that opened it.
        const d: Decoded | object = REKEY_TYPES.has(pt[0]!)
          ? { type: 'rekey', part: pt[0]! - 0x30, bytes: Buffer.from(pt.subarray(1, 8)).toString('hex'), key_epoch: epochOfKey.get(sealedKey.get(f.counter)!) }
          : decodePlaintext(pt);
        if (JSON.stringify(JSON.parse(f.content)) !== JSON.stringify(d)) problem(`${serial}: stored counter ${f.counter} content ${f.content} differs from sealed ${JSON.stringify(d)}`);
      }
      // Acknowledged: the server's watermark N promises every counter up to N is stored or in a gap.
      const row = await storage.device(serial);
      const sealedBelow = [...sealed.keys()].filter((c) => c <= (row?.settled ?? 0));
      for (const c of sealedBelow) if (!storedBy.has(c) && !inGap(c)) problem(`${serial}: counter ${c} acknowledged (N = ${row?.settled}) but neither stored nor in a gap`);
      const last = Math.max(0, ...sealed.keys());
      if ((row?.settled ?? 0) < last) problem(`${serial}: settled ${row?.settled}, below the last sealed counter ${last}`);
      // Epochs: committed on 2, the away device straight from 0.
      const rows = await storage.epochs.rows([serial]);
      const latest = rows.filter((r) => r.state === 'committed').map((r) => r.epoch);
      if (Math.max(0, ...latest) !== 2) problem(`${serial}: epoch rows ${JSON.stringify(rows)}, not committed on epoch 2`);
      if (rows.some((r) => r.state === 'frozen')) problem(`${serial}: frozen: ${JSON.stringify(rows)}`);
      // Frames sealed after COMMIT of epoch 2 were opened by the server (stored above c_2).
      const c2 = rows.find((r) => r.epoch === 2)?.commitCounter ?? Infinity;
      if (!stored.some((f) => f.counter >= c2)) problem(`${serial}: nothing stored at or above c_2 = ${c2}`);
      if (sampleMoments(sim) < 30) problem(`${serial}: only ${sampleMoments(sim)} samples sealed`);
    }
    // A frame the server refused: only a late copy of an old-key frame below c_e, delivered after the
    // watermark had passed it and the old key was dropped (design brief: K_{e-1} is kept until every
    // counter below c_e is settled). Its first copy is stored, or it lies in a gap (a visible loss).
    const refused = logs.flatMap((l) => {
      const m = /server rejected frame (\d+) of (\S+): (.*); dropped from the queue/.exec(l);
      return m ? [{ counter: Number(m[1]), serial: m[2]!, reason: m[3]! }] : [];
    });
    for (const r of refused) {
      const gaps = await storage.gaps(r.serial);
      const rows = await storage.epochs.rows([r.serial]);
      const i = serials.indexOf(r.serial);
      const key = sims[i]?.sealedLog.find((f) => f.counter === r.counter)?.key;
      const dropped = rows.filter((row) => row.state === 'committed' && row.prevDroppedAt !== null && row.commitCounter !== null && r.counter < row.commitCounter);
      const underOld = dropped.some((row) => sims[i]!.sealedLog.some((f) => f.key === key && f.counter < row.commitCounter!) && !sims[i]!.sealedLog.some((f) => f.key === key && f.counter >= row.commitCounter!));
      const stored = (await storage.frames(r.serial)).some((f) => f.counter === r.counter);
      const inGap = gaps.some((g) => r.counter >= g.first && r.counter < g.first + g.count);
      if (r.reason !== 'frame authentication failed' || !(stored || inGap) || !underOld) {
        problem(`${r.serial}: the server refused counter ${r.counter} (${r.reason}); not a late old-key copy of a stored frame or of one in a gap`);
      }
    }
    const others = (await storage.devices()).filter((d) => !serials.includes(d.serial));
    if (others.length > 0) problem(`devices in the database that are not in the fleet: ${others.map((d) => d.serial).join(', ')}`);

    // The away device: no epoch-1 row, its REKEY frames named epoch 2 only (epoch_lo16 after the type byte).
    const away = sims[AWAY]!;
    const awayRows = await storage.epochs.rows([serials[AWAY]!]);
    const awayRekeyEpochs = new Set(away.sealedLog.filter((f) => f.plaintext[0] === 0x30).map((f) => (f.plaintext[1]! << 8) | f.plaintext[2]!));
    const awayLines = away.consoleLines.slice(awayLinesBefore).filter((l) => l.includes('renewal:'));

    const token = await readToken(storage);
    const fleetStatus = await (await fetch(`${server.url}/v1/fleet`, { headers: token.auth })).json();
    const devicesApi = await Promise.all(serials.map(async (s) => (await (await fetch(`${server.url}/v1/devices/${s}`, { headers: token.auth })).json()) as { epoch: number; renewal: string }));

    console.log(
      'renewal chaos summary\n' +
        Object.entries({
          seed: SEED,
          devices: `${DEVICES} (one away across both renewals)`,
          'frames sealed': sealedTotal,
          'frames stored': storedTotal,
          'counters in gaps': gapCounters,
          'REKEY frames sealed': rekeyFrames,
          'on epoch 1 when epoch 2 was announced': `${onEpoch1BeforeRenewal2} of ${AWAY}`,
          'power cuts': powerCuts,
          'link drops (relay)': stats.drops,
          connections: stats.connects,
          uploads: stats.uploads,
          'failed uploads (simulated)': Object.entries(stats.failed)
            .map(([k, v]) => `${k} ${v}`)
            .join(', '),
          'duplicates (server)': totals.duplicates,
          'refused (late old-key copies)': refused.length,
          'server starts': server.starts,
          'GET /v1/fleet': JSON.stringify(fleetStatus),
          'virtual time': `${(virtualMs / 1000).toFixed(0)} s`,
          'wall time': `${((Date.now() - started) / 1000).toFixed(1)} s`,
        })
          .map(([k, v]) => `  ${k.padEnd(40)} ${v}`)
          .join('\n'),
    );
    await server.stop();

    if (problems.length > 0) throw failWith(`${problems.length} problem(s):\n${problems.join('\n')}`);
    expect(fleetStatus).toEqual({ latest_epoch: 2, epochs: [{ epoch: 2, devices: DEVICES }], pending: 0, frozen: 0 });
    expect(devicesApi.map((d) => [d.epoch, d.renewal])).toEqual(serials.map(() => [2, 'committed']));
    expect(awayRows.map((r) => [r.fromEpoch, r.epoch, r.state])).toEqual([[0, 2, 'committed']]);
    expect([...awayRekeyEpochs]).toEqual([2]);
    expect(awayLines.some((l) => l.endsWith('renewal: epoch 2 pending')), awayLines.join('\n')).toBe(true);
    expect(awayLines.some((l) => /epoch 1/.test(l)), awayLines.join('\n')).toBe(false);
    // The chaos happened, and the renewals went through it.
    expect(powerCuts).toBeGreaterThanOrEqual(AWAY);
    expect(stats.drops).toBeGreaterThan(0);
    for (const n of Object.values(stats.failed)) expect(n).toBeGreaterThan(0);
    expect(onEpoch1BeforeRenewal2).toBeGreaterThan(0);
    expect(server.starts).toBe(3);
    expect(totals.rejected).toBe(refused.length);
    expect(totals.dropped).toBe(0);
    // Five REKEY frames per renewal at least: 4 devices x 2 renewals + 1 x 1.
    expect(rekeyFrames).toBeGreaterThanOrEqual(5 * (2 * AWAY + 1));
  });
});
