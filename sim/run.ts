// `sealpost sim` as a library: a fleet of simulated devices (the real
// firmware on the sim HAL) relayed by sim/relay.ts to an ingest server over
// HTTP, in real time or faster. The CLI (sim/cli.ts) parses arguments and
// prints; everything here reports through `print` and returns a summary.
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { BoardProfile } from '../boards/types.js';
import { VirtualClock } from '../hal/sim/clock.js';
import { seededRandom } from '../hal/sim/random.js';
import type { QueueStore } from '../relay/index.js';
import { FileQueueStore } from '../relay/file-queue.js';
import { loadOrCreateKeys, makeSimFleet, sampleMoments } from './fleet.js';
import { toHex } from '../protocol/index.js';
import { MemoryQueueStore } from '../relay/memory-queue.js';
import { SimRelay, type SimChaos } from './relay.js';

export interface SimRunOptions {
  server: string;
  devices: number;
  /** Simulated time to run (ms). */
  durationMs: number;
  keysDir: string;
  manifestOut?: string;
  profile: BoardProfile;
  /** Simulated ms per real ms: 1 is real time. */
  speed: number;
  seed: number;
  /** A journal file for the relay's queue; in memory without one. */
  queueFile?: string;
  chaos: Pick<SimChaos, 'meanLinkMs' | 'failureRate'>;
  /** Real ms between status lines; 0 for none. */
  statusEveryMs: number;
  /** Real ms to wait for the manifest to be imported; 0 does not wait. */
  waitImportMs: number;
  /** Simulated ms, after the duration, for the last frames to be acknowledged. */
  drainMs: number;
  signal?: AbortSignal;
  print: (line: string) => void;
  fetch?: typeof fetch;
  /** A read API token (sealpost token create): lets the run wait for the import and report what the server stored. */
  token?: string;
  /** Sent with every upload as X-Sealpost-Relay-Key (a server with relay_keys needs it). */
  relayKey?: string;
  /** Called with the signed manifest once written, before the fleet waits for its import (the demo imports it here). */
  onManifest?: (path: string, text: string) => Promise<void>;
}

export interface DeviceSummary {
  serial: string;
  sealed: number;
  /** Sampling moments (each is one or more sample records). */
  samples: number;
  powerUps: number;
  /** From the server (GET /v1/devices/:serial), when it answered. */
  server?: { frames: number; settled: number; gaps: number; lost: number };
}

export interface SimRunSummary {
  batch: string;
  manifest: string;
  simulatedMs: number;
  realMs: number;
  devices: DeviceSummary[];
  uploads: number;
  failedUploads: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  /** Frames still in the relay queue at the end. */
  queued: number;
  /** Devices whose outbox still held frames at the end. */
  unacknowledged: number;
}

const show = (path: string): string => {
  const r = relative(process.cwd(), path);
  return r.startsWith('..') || r === '' ? path : r;
};

/** The longest real time the drain holds simulated time for one request at the server. */
const HOLD_MAX_MS = 30_000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

async function getJson(f: typeof fetch, url: string, token: string | undefined): Promise<{ status: number; body: unknown }> {
  const res = await f(url, { signal: AbortSignal.timeout(5000), ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

/** Polls GET /v1/devices/:serial until the server knows the fleet. */
async function waitForImport(o: SimRunOptions, serial: string, manifest: string, f: typeof fetch): Promise<boolean> {
  const url = `${o.server.replace(/\/+$/, '')}/v1/devices/${encodeURIComponent(serial)}`;
  const until = Date.now() + o.waitImportMs;
  let said = '';
  for (;;) {
    let state: string;
    try {
      const r = await getJson(f, url, o.token);
      if (r.status === 200) return true;
      if (r.status === 401) {
        // The server's reads need a token (docs/api.md, "Authentication"); without one the run cannot see the import.
        const why = o.token ? 'refused the token in SEALPOST_TOKEN' : 'needs a read token to say whether it knows the fleet (set SEALPOST_TOKEN to one from sealpost token create --role read --name sim)';
        o.print(`${o.server} ${why}; relaying without waiting for the import`);
        return true;
      }
      state = r.status === 404 ? 'not imported yet' : `answers ${r.status}`;
    } catch (e) {
      state = `not reachable (${(e as Error).message})`;
    }
    if (state !== said) {
      o.print(`waiting for ${o.server} to know the fleet: ${state}; import ${show(manifest)} (see above), Ctrl-C to stop`);
      said = state;
    }
    if (Date.now() >= until || o.signal?.aborted) return false;
    await sleep(1000, o.signal);
  }
}

export async function runSimFleet(o: SimRunOptions): Promise<SimRunSummary> {
  const f = o.fetch ?? globalThis.fetch;
  const keys = loadOrCreateKeys(o.keysDir);
  if (keys.created) {
    o.print(`new fleet keys in ${show(keys.dir)}:`);
    o.print(`  ingest private ${show(keys.created.ingestPrivate)} (mode 0600: for the server only)`);
    o.print(`  ingest public  ${show(keys.created.ingestPublic)}`);
    o.print(`  factory private ${show(keys.created.factoryPrivate)} (mode 0600)`);
    o.print(`  factory public ${show(keys.created.factoryPublic)} (the server trusts manifests signed by it)`);
  }
  const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const tag = Math.floor(seededRandom(o.seed ^ Date.now())() * 0xffffff)
    .toString(16)
    .padStart(6, '0');
  const batch = `SIM-${stamp}-${tag}`;
  const clock = new VirtualClock();
  const fleet = makeSimFleet({
    count: o.devices,
    ingestPublic: keys.ingestPublic,
    factoryPrivate: keys.factoryPrivate,
    clock,
    profile: o.profile,
    batch,
    prefix: `SIM${tag}-`,
    seed: o.seed,
    ...(keys.renewalPublic ? { renewalPublic: keys.renewalPublic } : {}),
  });
  const manifestPath = o.manifestOut ?? join(keys.dir, `${batch}.manifest.json`);
  writeFileSync(manifestPath, fleet.manifest);
  o.print(`provisioned ${o.devices} simulated ${o.profile.id} devices ${fleet.serials[0]} .. ${fleet.serials[fleet.serials.length - 1]}, batch ${batch}`);
  o.print(`signed manifest: ${show(manifestPath)}`);
  if (keys.renewalPublic) {
    const later = keys.announced.length ? `; epochs ${keys.announced.map((a) => `${a.epoch} (${a.ingestKeyId})`).join(', ')} announced in the key set, the server's renewal config decides what it hands out` : '';
    o.print(`device files format 2: the devices can renew (fleet ${toHex(keys.renewalPublic.fleetId!)}, renewal key ${keys.renewalPublic.id}), sealed under the epoch-0 ingest key ${keys.ingestPublic.id}${later}`);
  } else {
    o.print(`device files format 1: ${show(keys.dir)} has no renewal public key (renewal-rk-<id>.pub, from \`sealpost keys init\`), so these devices can never renew`);
  }
  if (o.onManifest) await o.onManifest(manifestPath, fleet.manifest);
  if (!o.onManifest) {
    const ingestKey = keys.ingestPrivatePath ? show(keys.ingestPrivatePath) : `<the ingest private key ${keys.ingestPublic.id}>`;
    const trust = keys.factoryPublicPath ? show(keys.factoryPublicPath) : `<the factory public key ${keys.factoryPrivate.id}>`;
    o.print('the server accepts frames only from devices in its registry; import the manifest into its database:');
    o.print(`  sealpost registry import ${show(manifestPath)} --db <the server's database> --trust ${trust} --ingest-key ${ingestKey}`);
    o.print(`  (a server for these keys: sealpost server --db sim.db --ingest-key ${ingestKey} --trust ${trust})`);
  }

  if (o.waitImportMs > 0) {
    const known = await waitForImport(o, fleet.serials[0]!, manifestPath, f);
    if (!known && !o.signal?.aborted) o.print('the server still does not know the fleet; running anyway (its frames are rejected until the import, the devices keep them)');
  }

  let store: QueueStore & { close?: () => Promise<void> };
  if (o.queueFile) {
    store = await FileQueueStore.open(o.queueFile, { log: (m) => o.print(`queue: ${m}`) });
  } else store = new MemoryQueueStore();
  const logs: string[] = [];
  const epoch = Date.now();
  const relay = await SimRelay.start({
    epochMs: epoch,
    clock,
    devices: () => fleet.devices,
    server: o.server,
    store,
    seed: o.seed,
    relayId: `sim-${tag}`,
    chaos: o.chaos,
    // Timeouts and backoff run on simulated time: at --speed 100 a request
    // that takes 200 ms of real time counts as 20 s, is abandoned and goes
    // again (the server keeps one copy), so keep the speed moderate.
    relay: { flushDelayMs: 1000 },
    log: (level, message) => {
      if (level !== 'info') logs.push(message);
    },
    ...(o.fetch ? { fetch: o.fetch } : {}),
    ...(o.relayKey !== undefined ? { relayKey: o.relayKey } : {}),
  });
  const boot = seededRandom(o.seed + 1);
  for (const sim of fleet.devices) clock.setTimeout(() => sim.boot(), Math.round(boot() * 1000));

  const started = Date.now();
  let lastStatus = started;
  let reported = 0;
  const statusLine = () => {
    const s = relay.core.status();
    const sealed = fleet.devices.reduce((a, d) => a + d.sealedLog.length, 0);
    const last = s.lastUpload;
    const ago = last ? ((epoch + clock.now() - last.at) / 1000).toFixed(1) : '';
    const lastText = last ? `last upload ${ago} s ago ${last.ok ? 'ok' : 'failed'} (${last.status ?? 'no answer'}: ${last.message.slice(0, 60)})` : 'no upload yet';
    o.print(
      `[sim ${(clock.now() / 1000).toFixed(0).padStart(5)} s] connected ${relay.connected()}/${fleet.devices.length}, sealed ${sealed}, ` +
        `relay queue ${s.queue}, stored ${s.totals.accepted} (+${s.totals.duplicates} dup, ${s.totals.rejected} rejected), ` +
        `uploads ${s.totals.requests - s.totals.failedRequests - (s.uploading ? 1 : 0)} ok ${s.totals.failedRequests} failed${s.uploading ? ' 1 in flight' : ''}, ${lastText}`,
    );
    for (const line of logs.slice(reported, reported + 3)) o.print(`  relay: ${line}`);
    if (logs.length - reported > 3) o.print(`  relay: ... and ${logs.length - reported - 3} more`);
    reported = logs.length;
  };

  // Real time drives simulated time: advance by what elapsed times the speed,
  // in small steps so device, radio and relay timers interleave finely.
  // While draining (`holdWhileUploading`), simulated time stands still as long
  // as a request is at the server, up to HOLD_MAX_MS of real time each: the
  // relay's timeouts are simulated time, so on a slow or loaded machine a
  // request that takes a real second would otherwise count as `speed` seconds,
  // be abandoned and sent again, and the drain would end before the last acks.
  const drive = async (untilSim: number, done?: () => boolean, holdWhileUploading = false) => {
    let real = Date.now();
    let heldSince: number | undefined;
    while (clock.now() < untilSim && !o.signal?.aborted && !(done?.() ?? false)) {
      await sleep(20, o.signal);
      const now = Date.now();
      if (holdWhileUploading && relay.core.status().uploading && now - (heldSince ??= now) < HOLD_MAX_MS) {
        real = now;
        continue;
      }
      if (!(holdWhileUploading && relay.core.status().uploading)) heldSince = undefined;
      let budget = Math.min((now - real) * o.speed, untilSim - clock.now());
      real = now;
      while (budget > 0) {
        const step = Math.min(budget, 100);
        clock.advance(step);
        budget -= step;
        await new Promise<void>((r) => setImmediate(r));
      }
      if (o.statusEveryMs > 0 && now - lastStatus >= o.statusEveryMs) {
        lastStatus = now;
        statusLine();
      }
    }
  };

  await drive(o.durationMs);
  const simulated = clock.now();
  // Drain: no more chaos; the last frames go up and their acks come back.
  relay.setChaos({ meanLinkMs: 0, failureRate: 0 });
  const settled = () => relay.core.status().queue === 0 && fleet.devices.every((d) => !d.device || d.device.status().outbox === 0);
  const off = new Set<number>();
  await drive(simulated + o.drainMs, () => {
    relay.core.flush();
    // A device whose outbox is empty is switched off, so it seals nothing new.
    fleet.devices.forEach((d, i) => {
      if (!off.has(i) && d.device && d.device.status().outbox === 0) {
        d.powerOff();
        off.add(i);
      }
    });
    return settled();
  }, true);
  const unacknowledged = fleet.devices.filter((d) => d.device && d.device.status().outbox > 0).length;
  for (const d of fleet.devices) if (d.on) d.powerOff();
  await relay.settle().catch(() => undefined);
  if (o.statusEveryMs > 0) statusLine();
  const status = relay.core.status();
  await relay.stop();
  await store.close?.();

  const devices: DeviceSummary[] = [];
  for (const [i, sim] of fleet.devices.entries()) {
    const serial = fleet.serials[i]!;
    const sum: DeviceSummary = {
      serial,
      sealed: sim.sealedLog.length,
      samples: sampleMoments(sim),
      powerUps: sim.boots,
    };
    try {
      const r = await getJson(f, `${o.server.replace(/\/+$/, '')}/v1/devices/${encodeURIComponent(serial)}`, o.token);
      const b = r.body as { frames?: number; settled?: number; gaps?: number; lost?: number };
      if (r.status === 200) sum.server = { frames: b.frames ?? 0, settled: b.settled ?? 0, gaps: b.gaps ?? 0, lost: b.lost ?? 0 };
    } catch {
      // The summary says "server did not answer".
    }
    devices.push(sum);
  }
  return {
    batch,
    manifest: manifestPath,
    simulatedMs: clock.now(),
    realMs: Date.now() - started,
    devices,
    uploads: status.totals.requests,
    failedUploads: status.totals.failedRequests,
    accepted: status.totals.accepted,
    duplicates: status.totals.duplicates,
    rejected: status.totals.rejected,
    queued: status.queue,
    unacknowledged,
  };
}

export function formatSummary(s: SimRunSummary): string {
  const head = ['serial', 'power-ups', 'sealed', 'samples', 'stored', 'settled', 'gaps', 'lost'];
  const rows = s.devices.map((d) => [
    d.serial,
    String(d.powerUps),
    String(d.sealed),
    String(d.samples),
    d.server ? String(d.server.frames) : '?',
    d.server ? String(d.server.settled) : '?',
    d.server ? String(d.server.gaps) : '?',
    d.server ? String(d.server.lost) : '?',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const sealed = s.devices.reduce((a, d) => a + d.sealed, 0);
  const stored = s.devices.reduce((a, d) => a + (d.server?.frames ?? 0), 0);
  const out = [
    line(head),
    ...rows.map(line),
    '',
    `${s.devices.length} devices, ${(s.simulatedMs / 1000).toFixed(0)} s simulated in ${(s.realMs / 1000).toFixed(1)} s: ` +
      `${sealed} frames sealed, ${stored} stored at the server (${s.duplicates} duplicate uploads, ${s.rejected} rejected)`,
    `uploads: ${s.uploads - s.failedUploads} ok, ${s.failedUploads} failed; relay queue at the end: ${s.queued}`,
  ];
  if (s.devices.some((d) => !d.server)) out.push('the server did not answer for some devices: their stored counts are unknown (?)');
  if (s.unacknowledged > 0) out.push(`${s.unacknowledged} device(s) still held unacknowledged frames at the end (increase --drain, or check the server)`);
  return out.join('\n');
}
