// The real firmware (firmware/device.ts + firmware/renewal.ts on hal/sim) renewing against the real
// server in process: a fleet made by `keys init` / `keys renew` (test/helpers/renewal.ts), devices
// with format-2 device files on the sim board, and a minimal relay that carries each connection's
// frames to POST /v1/uplink and writes the answer's downlink (ack, RENEW_ACK, ANNOUNCE) back.
import { expect } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { NO_RATE_LIMIT, buildServer, importManifest, makeConfig, type Storage } from '../../server/index.js';
import { loadIngestKeys } from '../../server/keys.js';
import { boardProfile } from '../../boards/index.js';
import { encodeDeviceFile, type ProvisionedDevice } from '../../protocol/index.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { SimDevice, type SimDeviceOptions } from '../../sim/device.js';
import { body, testDb, type TestDb } from './server.js';
import { fromB64, makeRenewalFleet, type RenewalFleet } from './renewal.js';
import { manifestFor } from './server.js';

export const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);

/** A format-2 device file for a provisioned device of `fleet`. */
export function format2File(fleet: RenewalFleet, d: ProvisionedDevice, frameSize = 20): Uint8Array {
  return encodeDeviceFile({
    serial: d.serial,
    frameSize,
    sealKey: d.sealKey,
    nonceSalt: d.nonceSalt,
    renewal: { fleetId: fleet.renewalPublic.fleetId!, renewalPublicKey: fleet.renewalPublic.key, chain: d.chain },
  });
}

export interface RenewalWorld {
  fleet: RenewalFleet;
  db: TestDb;
  storage: Storage;
  app: FastifyInstance;
  clock: VirtualClock;
  /** Server time (ms since the epoch). */
  now: { t: number };
  close(): Promise<void>;
}

/** A renewal fleet of `count` sim-board devices imported into a fresh SQLite server, with epoch 1 announced. */
export async function renewalWorld(count: number, prefix = 'SP-SR', renewals = 1): Promise<RenewalWorld> {
  const fleet = makeRenewalFleet(count, prefix);
  fleet.manifest = manifestFor(fleet, fleet.devices, fleet.batch, 20, 'sim');
  const db = await testDb('sqlite');
  const storage = await db.open();
  await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
  for (let i = 0; i < renewals; i++) fleet.renew();
  const now = { t: T0 };
  const app = await buildServer({
    config: makeConfig({ logLevel: 'silent', rateLimit: NO_RATE_LIMIT, renewal: { publicKey: fleet.paths.renewalPublic, announce: [fleet.dir], graceMs: 7 * 86_400_000 } }),
    ingestKeys: loadIngestKeys(fleet.ingestKeyFiles),
    storage,
    now: () => now.t,
    logger: false,
  });
  return {
    fleet,
    db,
    storage,
    app,
    clock: new VirtualClock(),
    now,
    async close() {
      await app.close();
      await storage.close();
    },
  };
}

/** A server with more announced epochs, on the same storage (a later `keys renew`). */
export async function restartServer(w: RenewalWorld): Promise<void> {
  await w.app.close();
  w.app = await buildServer({
    config: makeConfig({ logLevel: 'silent', rateLimit: NO_RATE_LIMIT, renewal: { publicKey: w.fleet.paths.renewalPublic, announce: [w.fleet.dir], graceMs: 7 * 86_400_000 } }),
    ingestKeys: loadIngestKeys(w.fleet.ingestKeyFiles),
    storage: w.storage,
    now: () => w.now.t,
    logger: false,
  });
}

export function simRenewalDevice(w: RenewalWorld, i: number, opts: Partial<SimDeviceOptions> = {}): SimDevice {
  const d = w.fleet.devices[i]!;
  return new SimDevice({ clock: w.clock, profile: boardProfile('sim'), deviceFile: format2File(w.fleet, d), seed: 100 + i, ...opts });
}

export interface Session {
  /** Frames the relay carried to the server (as received over the air). */
  uploaded: Uint8Array[];
  /** Every write the server asked for, as written to the device. */
  written: Uint8Array[];
  /** Server answers per device. */
  answers: any[];
}

/**
 * One connection: subscribe, then every `stepMs` carry what arrived to the server and write its
 * downlink back; `writeFilter` may drop, reorder or add writes (attacks). Runs `ms` of device time.
 */
export async function session(
  w: RenewalWorld,
  sim: SimDevice,
  ms: number,
  opts: { stepMs?: number; writeFilter?: (writes: Uint8Array[]) => Uint8Array[]; upload?: boolean; stopIf?: () => boolean } = {},
): Promise<Session> {
  const got: Uint8Array[] = [];
  const s: Session = { uploaded: [], written: [], answers: [] };
  const link = sim.radio!.connect((f) => got.push(f));
  link.subscribe(true);
  const step = opts.stepMs ?? 200;
  const stop = opts.stopIf ?? (() => false);
  for (let t = 0; t < ms; t += step) {
    w.clock.advance(step);
    w.now.t += step;
    if (stop()) return s;
    if (got.length === 0 || opts.upload === false) continue;
    const frames = got.splice(0);
    s.uploaded.push(...frames);
    const payload = body('relay-sim', w.now.t, [{ serial: sim.device!.status().serial, frames: frames.map((frame) => ({ frame, rx: w.now.t })) }]);
    const r = await w.app.inject({ method: 'POST', url: '/v1/uplink', payload });
    expect(r.statusCode, r.body).toBe(200);
    const d = r.json().devices[0];
    s.answers.push(d);
    let writes: Uint8Array[] = (d.downlink ?? (d.ack ? [d.ack] : [])).map(fromB64);
    if (opts.writeFilter) writes = opts.writeFilter(writes);
    for (const x of writes) {
      if (!link.connected()) break;
      link.writeAck(x);
      s.written.push(x);
      if (stop()) return s;
    }
  }
  link.disconnect();
  return s;
}

/** (seal key, counter) pairs sealed more than once: a nonce reused under a key. */
export function reusedNonces(sim: SimDevice): string[] {
  const seen = new Set<string>();
  const reused: string[] = [];
  for (const f of sim.sealedLog) {
    const k = `${f.key}:${f.counter}`;
    if (seen.has(k)) reused.push(k);
    seen.add(k);
  }
  return reused;
}
