// Key renewal on the server (issue #17 item 4; docs/server.md, "Key renewal"): a device side driven by
// protocol/renewal.ts renews through the server (ANNOUNCE in the downlink, REKEY, RENEW_ACK, commit,
// old-key frames below c_e, grace), and the attacks: REKEY replayed, a revoked device, a second enc,
// REKEY parts of two sets mixed by a relay, and a registry dump. In-process on both backends, and
// through a real `sealpost server` over HTTP.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { NO_RATE_LIMIT, buildServer, importManifest, makeConfig, type Storage } from '../../server/index.js';
import { revokeDevice } from '../../server/registry.js';
import { loadIngestKeys, registryKek, unwrapDeviceKeys } from '../../server/keys.js';
import { BACKENDS, body, testDb, logCapture, type TestDb } from '../helpers/server.js';
import { BLOCK, RenewingDevice, fromB64, makeRenewalFleet, type RenewalFleet } from '../helpers/renewal.js';

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);

interface Harness {
  post(devices: { serial: string; frames: Uint8Array[] }[]): Promise<any[]>;
}

async function inProcess(storage: Storage, fleet: RenewalFleet, clock: { now: number }, graceDays = 7, log?: ReturnType<typeof logCapture<any>>): Promise<{ app: FastifyInstance; h: Harness }> {
  const app = await buildServer({
    config: makeConfig({
      logLevel: log ? 'info' : 'silent',
      rateLimit: NO_RATE_LIMIT,
      renewal: { publicKey: fleet.paths.renewalPublic, announce: [fleet.dir], graceMs: graceDays * 86_400_000 },
    }),
    ingestKeys: loadIngestKeys(fleet.ingestKeyFiles),
    storage,
    now: () => clock.now,
    logger: log ? { level: 'info', stream: log.stream } : false,
  });
  return { app, h: { post: (devices) => postInject(app, devices, clock.now) } };
}


async function postInject(app: FastifyInstance, devices: { serial: string; frames: Uint8Array[] }[], now: number): Promise<any[]> {
  const payload = body('relay-1', now, devices.map((d) => ({ serial: d.serial, frames: d.frames.map((frame) => ({ frame, rx: now })) })));
  const r = await app.inject({ method: 'POST', url: '/v1/uplink', payload });
  expect(r.statusCode, r.body).toBe(200);
  return r.json().devices;
}

const writesOf = (d: any): Uint8Array[] => (d.downlink ?? (d.ack ? [d.ack] : [])).map(fromB64);

/** A full renewal of `dev` through `h`; returns the response of the first frames under the new key. */
async function renew(h: Harness, dev: RenewingDevice): Promise<any> {
  const [first] = await h.post([{ serial: dev.serial, frames: [dev.anchor(), dev.sample(21.5)] }]);
  expect(first.accepted).toBe(2);
  expect(first.downlink.length).toBe(7); // ack, then the six ANNOUNCE writes
  expect(dev.ack(fromB64(first.downlink[0]))).toBe(2);
  const rekey = dev.announce(writesOf(first));
  const [second] = await h.post([{ serial: dev.serial, frames: [...rekey].reverse() }]);
  expect(second.accepted).toBe(5);
  expect(dev.renewAck(writesOf(second))).toBe(true);
  const [third] = await h.post([{ serial: dev.serial, frames: [dev.sample(22.5), dev.sample(23.5)] }]);
  return third;
}

for (const backend of BACKENDS) {
  describe(`key renewal (${backend})`, () => {
    let db: TestDb;
    let storage: Storage;
    let fleet: RenewalFleet;
    const clock = { now: T0 };
    let app: FastifyInstance;
    let h: Harness;
    const log = logCapture((l) => JSON.parse(l));

    beforeAll(async () => {
      db = await testDb(backend);
      storage = await db.open();
      fleet = makeRenewalFleet(8);
      await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
      fleet.renew();
      ({ app, h } = await inProcess(storage, fleet, clock, 7, log));
    });
    afterAll(async () => {
      await app?.close();
      await storage?.close();
      await db?.drop();
    });

    it('renews a device: ANNOUNCE, REKEY, RENEW_ACK, frames under K_1 stored, old-key frames below c_1 still open, old key refused above c_1', async () => {
      const dev = new RenewingDevice(fleet.devices[0]!, fleet);
      const [first] = await h.post([{ serial: dev.serial, frames: [dev.anchor(), dev.sample(21.5)] }]);
      expect(first.downlink.length).toBe(7); // the ack, then the six ANNOUNCE writes
      expect(dev.ack(fromB64(first.downlink[0]))).toBe(2);
      const heldBack = dev.sample(20.0); // counter 3, under K_0, delivered late
      const [second] = await h.post([{ serial: dev.serial, frames: [...dev.announce(writesOf(first))].reverse() }]);
      expect(second.accepted).toBe(5);
      expect(second.downlink.length).toBe(2); // the ack (N = 2: counter 3 is missing), RENEW_ACK
      expect(dev.renewAck(writesOf(second))).toBe(true);
      expect(dev.commitCounter).toBe(BLOCK + 1);
      const [third] = await h.post([{ serial: dev.serial, frames: [dev.sample(22.5), dev.sample(23.5)] }]);
      expect(third).toMatchObject({ accepted: 2, rejected: [] });
      expect(third.downlink).toBeUndefined(); // on the latest epoch: no ANNOUNCE any more
      // N = 2 < c_1: the ack is under the old key, which is what the device checks it with.
      expect(dev.ack(fromB64(third.ack))).toBe(2);
      const rows = await storage.epochs.rows([dev.serial]);
      expect(rows.map((r) => [r.epoch, r.state, r.commitCounter, r.fromEpoch, r.prevDroppedAt])).toEqual([[1, 'committed', BLOCK + 1, 0, null]]);
      const [late] = await h.post([{ serial: dev.serial, frames: [heldBack] }]);
      expect(late.accepted).toBe(1);
      expect(dev.ack(fromB64(late.ack))).toBe(8);
      // An old-key frame at or above c_1 can only be an old-key holder's: refused.
      const save = dev.counter;
      const forged = dev.seal(new Uint8Array(8).fill(1, 0, 1), dev.oldKeys);
      dev.counter = save;
      const [attack] = await h.post([{ serial: dev.serial, frames: [forged] }]);
      expect(attack.rejected).toEqual([{ index: 0, reason: 'frame authentication failed' }]);
      expect((await storage.frames(dev.serial)).map((f) => f.counter)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, BLOCK + 1, BLOCK + 2]);
      // After the grace period the old key opens nothing, even below c_1.
      const old = new RenewingDevice(fleet.devices[0]!, fleet);
      old.counter = 9;
      const belowC = old.sample(1);
      clock.now += 8 * 86_400_000;
      const [after] = await h.post([{ serial: dev.serial, frames: [belowC, dev.sample(24.5)] }]);
      expect(after.rejected).toEqual([{ index: 0, reason: 'frame authentication failed' }]);
      expect(after.accepted).toBe(1);
      expect((await storage.epochs.rows([dev.serial]))[0]!.prevDroppedAt).toBe(clock.now);
    });

    it('answers a replayed or resent REKEY set with the same RENEW_ACK, and never a second row', async () => {
      const dev = new RenewingDevice(fleet.devices[1]!, fleet);
      const [first] = await h.post([{ serial: dev.serial, frames: [dev.anchor()] }]);
      const rekey = dev.announce(writesOf(first));
      const [a] = await h.post([{ serial: dev.serial, frames: rekey }]);
      const [b] = await h.post([{ serial: dev.serial, frames: rekey }]);
      expect(b.duplicates).toBe(5);
      const ackA = writesOf(a).find((w) => w.length === 16)!;
      const ackB = writesOf(b).find((w) => w.length === 16)!;
      expect(Buffer.from(ackB).equals(Buffer.from(ackA))).toBe(true);
      // A power cut before COMMIT: the device resends the same enc under new counters.
      const [c] = await h.post([{ serial: dev.serial, frames: dev.resendRekey() }]);
      expect(dev.renewAck(writesOf(c))).toBe(true);
      expect((await storage.epochs.rows([dev.serial])).map((r) => r.state)).toEqual(['pending']);
      const [d] = await h.post([{ serial: dev.serial, frames: [dev.sample(1)] }]);
      expect(d.accepted).toBe(1);
      // After the commit, the old REKEY frames replayed: duplicates, nothing answered, nothing frozen.
      const [e] = await h.post([{ serial: dev.serial, frames: rekey }]);
      expect(e.duplicates).toBe(5);
      expect(writesOf(e).some((w) => w.length === 16)).toBe(false);
      expect((await storage.epochs.rows([dev.serial])).map((r) => r.state)).toEqual(['committed']);
    });

    it('never sends RENEW_ACK to a revoked device', async () => {
      const dev = new RenewingDevice(fleet.devices[2]!, fleet);
      const [first] = await h.post([{ serial: dev.serial, frames: [dev.anchor()] }]);
      const rekey = dev.announce(writesOf(first));
      await revokeDevice(storage, dev.serial, clock.now);
      const [r] = await h.post([{ serial: dev.serial, frames: rekey }]);
      expect(r.rejected.map((x: any) => x.reason)).toEqual(Array(5).fill('device revoked'));
      expect(r.ack).toBeNull();
      expect(r.downlink).toBeUndefined();
      expect(await storage.epochs.rows([dev.serial])).toEqual([]);
    });

    it('freezes a device when a second, different enc comes for the same epoch, and says so in the API', async () => {
      const dev = new RenewingDevice(fleet.devices[3]!, fleet);
      const [first] = await h.post([{ serial: dev.serial, frames: [dev.anchor()] }]);
      const writes = writesOf(first);
      const rekey = dev.announce(writes);
      const [a] = await h.post([{ serial: dev.serial, frames: rekey }]);
      expect(writesOf(a).some((w) => w.length === 16)).toBe(true);
      // A holder of the old key runs its own renewal: another enc for epoch 1.
      const thief = new RenewingDevice(fleet.devices[3]!, fleet);
      thief.counter = 100;
      const [b] = await h.post([{ serial: dev.serial, frames: thief.announce(writes) }]);
      expect(b.accepted).toBe(5);
      expect(writesOf(b).some((w) => w.length === 16)).toBe(false);
      expect(writesOf(b).some((w) => w.length === 20)).toBe(false); // no ANNOUNCE to a frozen device
      expect((await storage.epochs.rows([dev.serial])).map((r) => r.state)).toEqual(['frozen']);
      // The genuine device asks again: no RENEW_ACK; its frames under its current key still count.
      const [c] = await h.post([{ serial: dev.serial, frames: [...dev.resendRekey(), dev.sample(3)] }]);
      expect(c.accepted).toBe(6);
      expect(writesOf(c).some((w) => w.length === 16)).toBe(false);
      const warn = log.lines.find((l) => /FROZEN/.test(l.msg) && l.serial === dev.serial);
      expect(warn).toMatchObject({ serial: dev.serial, epoch: 1 });
      expect(JSON.stringify(warn)).not.toMatch(/[0-9a-f]{32}/);
      const token = await (await import('../helpers/server.js')).readToken(storage);
      const api = await app.inject({ method: 'GET', url: `/v1/devices/${dev.serial}`, headers: token.auth });
      expect(api.json()).toMatchObject({ serial: dev.serial, epoch: 0, renewal: 'frozen' });
      const list = (await app.inject({ method: 'GET', url: '/v1/devices', headers: token.auth })).json().devices as any[];
      expect(list.find((x) => x.serial === dev.serial)).toMatchObject({ epoch: 0, renewal: 'frozen' });
      expect(list.find((x) => x.serial === fleet.devices[0]!.serial)).toMatchObject({ epoch: 1, renewal: 'committed' });
      expect(list.find((x) => x.serial === fleet.devices[7]!.serial)).toMatchObject({ epoch: 0, renewal: 'none' });
      const fleetStatus = await app.inject({ method: 'GET', url: '/v1/fleet', headers: token.auth });
      expect(fleetStatus.json()).toMatchObject({ latest_epoch: 1, frozen: 1 });
      expect((await app.inject({ method: 'GET', url: '/v1/fleet' })).statusCode).toBe(401);
    });

    it('never joins REKEY parts of two sets that a relay mixes; the genuine set still renews', async () => {
      const dev = new RenewingDevice(fleet.devices[4]!, fleet);
      const [first] = await h.post([{ serial: dev.serial, frames: [dev.anchor()] }]);
      const writes = writesOf(first);
      const mine = dev.announce(writes); // counters 2..6
      const other = new RenewingDevice(fleet.devices[4]!, fleet);
      other.counter = 50;
      const theirs = other.announce(writes); // counters 51..55, another enc
      const [a] = await h.post([{ serial: dev.serial, frames: [mine[0]!, mine[1]!, mine[2]!, theirs[3]!, theirs[4]!] }]);
      expect(a.accepted).toBe(5);
      expect(writesOf(a).some((w) => w.length === 16)).toBe(false);
      expect(await storage.epochs.rows([dev.serial])).toEqual([]);
      const [b] = await h.post([{ serial: dev.serial, frames: [mine[3]!, mine[4]!] }]);
      expect(dev.renewAck(writesOf(b))).toBe(true);
    });

    it('junk costs no public-key work: REKEY frames under a wrong key, random frames, and a renewing device named by junk', async () => {
      const renewSpy = vi.spyOn(app.keyring, 'renew');
      const chainSpy = vi.spyOn(app.keyring, 'factoryChain');
      try {
        const dev = new RenewingDevice(fleet.devices[6]!, fleet);
        const [first] = await h.post([{ serial: dev.serial, frames: [dev.anchor()] }]);
        const writes = writesOf(first);
        // Someone without the device key seals a REKEY set under a key of its own making.
        const stranger = new RenewingDevice({ ...fleet.devices[6]!, sealKey: new Uint8Array(16).fill(7), nonceSalt: new Uint8Array(8).fill(9) }, fleet);
        stranger.counter = 10;
        const forged = stranger.announce(writes);
        const random = Array.from({ length: 50 }, (_, i) => Uint8Array.from({ length: 20 }, (_, j) => (i * 31 + j * 7 + 1) & 255));
        const [a] = await h.post([{ serial: dev.serial, frames: [...forged, ...random] }]);
        expect(a.accepted).toBe(0);
        expect(a.ack).toBeNull();
        expect(a.downlink).toBeUndefined();
        expect(renewSpy).not.toHaveBeenCalled();
        expect(chainSpy).not.toHaveBeenCalled();
        // The genuine set: exactly one SetupPSKR (and one SetupBaseR for chain_0).
        const [b] = await h.post([{ serial: dev.serial, frames: dev.announce(writes) }]);
        expect(dev.renewAck(writesOf(b))).toBe(true);
        expect(renewSpy).toHaveBeenCalledTimes(1);
        expect(chainSpy).toHaveBeenCalledTimes(1);
        // Junk naming the device now (pending: two keys to try) still costs nothing more.
        await h.post([{ serial: dev.serial, frames: [...forged, ...random] }]);
        expect(renewSpy).toHaveBeenCalledTimes(1);
      } finally {
        renewSpy.mockRestore();
        chainSpy.mockRestore();
      }
    });

    it('a registry dump opens nothing: no key of any epoch is in the database, and no blob opens without the ingest keys', async () => {
      const rows = await storage.epochs.rows(fleet.devices.map((d) => d.serial));
      expect(rows.length).toBeGreaterThan(0);
      const other = makeRenewalFleet(1);
      const wrongKek = registryKek(other.ingest.privateFile.key, rows[0]!.ingestKeyId);
      for (const r of rows) expect(unwrapDeviceKeys(wrongKek, r, r.keysWrapped)).toBeUndefined();
      if (backend === 'sqlite') {
        const dev = new RenewingDevice(fleet.devices[5]!, fleet);
        await renew(h, dev);
        await storage.close();
        const file = readFileSync(db.url);
        const wal = (() => {
          try {
            return readFileSync(`${db.url}-wal`);
          } catch {
            return Buffer.alloc(0);
          }
        })();
        const secrets = [dev.keys.sealKey, dev.keys.nonceSalt, dev.chain, dev.oldKeys!.sealKey, dev.device.chain];
        for (const s of secrets) {
          expect(file.includes(Buffer.from(s))).toBe(false);
          expect(wal.includes(Buffer.from(s))).toBe(false);
        }
        storage = await db.open();
      }
    });
  });
}
