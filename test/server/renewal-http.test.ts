// Key renewal end to end through a real `sealpost server` process over HTTP, on both backends
// (issue #17 item 4): `keys init` / `keys renew` key files, the config's renewal section, a device side
// driven by protocol/renewal.ts: ANNOUNCE received, REKEY sent, RENEW_ACK verified, frames under K_1
// stored, old-key frames below c_1 still opened within the grace period and refused after it; then
// `sealpost registry list` and GET /v1/fleet show the device on epoch 1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importManifest } from '../../server/index.js';
import { BACKENDS, body, readToken, testDb, type TestDb } from '../helpers/server.js';
import { startServerProcess, writeConfig, type ServerProcess } from '../helpers/server-files.js';
import { sealpost } from '../helpers/cli.js';
import { BLOCK, RenewingDevice, fromB64, makeRenewalFleet, type RenewalFleet } from '../helpers/renewal.js';
import { encodeKeyFile } from '../../protocol/index.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const GRACE_S = 4;

for (const backend of BACKENDS) {
  describe(`key renewal through sealpost server over HTTP (${backend})`, () => {
    let db: TestDb;
    let fleet: RenewalFleet;
    let server: ServerProcess;
    let config: string;
    let auth: { authorization: string };

    beforeAll(async () => {
      db = await testDb(backend);
      fleet = makeRenewalFleet(2);
      const storage = await db.open();
      await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
      auth = (await readToken(storage)).auth;
      await storage.close();
      fleet.renew();
      const factoryPub = join(fleet.dir, 'factory.pub');
      writeFileSync(factoryPub, encodeKeyFile(fleet.factory.publicFile));
      config = writeConfig(fleet.dir, {
        db: db.url,
        listen: '127.0.0.1:0',
        ingest_keys: fleet.ingestKeyFiles,
        trust: [factoryPub],
        log_level: 'info',
        rate_limit: false,
        renewal: { public_key: fleet.paths.renewalPublic, announce: fleet.dir, grace_days: GRACE_S / 86_400 },
      });
      server = await startServerProcess(config, 60_000);
    }, 120_000);
    afterAll(async () => {
      server?.child.kill('SIGTERM');
      await server?.exited;
      await db?.drop();
    });

    async function post(dev: RenewingDevice, frames: Uint8Array[]): Promise<any> {
      const now = Date.now();
      const r = await fetch(`${server.url}/v1/uplink`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body('http-relay', now, [{ serial: dev.serial, frames: frames.map((frame) => ({ frame, rx: now })) }])),
      });
      expect(r.status).toBe(200);
      return (await r.json()).devices[0];
    }
    const writes = (d: any): Uint8Array[] => (d.downlink ?? []).map(fromB64);

    it('a device renews to epoch 1; its old key opens frames below c_1 only during the grace period', async () => {
      const dev = new RenewingDevice(fleet.devices[0]!, fleet);
      const first = await post(dev, [dev.anchor(), dev.sample(19.5)]);
      expect(writes(first).map((w) => w.length)).toEqual([12, 20, 20, 20, 20, 20, 20]);
      const late1 = dev.sample(20.5); // counter 3
      const late2 = dev.sample(21.5); // counter 4
      const second = await post(dev, dev.announce(writes(first)));
      expect(second.accepted).toBe(5);
      expect(dev.renewAck(writes(second))).toBe(true);
      const third = await post(dev, [dev.sample(22.5)]);
      expect(third).toMatchObject({ accepted: 1, rejected: [] });
      expect(dev.ack(fromB64(third.ack))).toBe(2);
      const fourth = await post(dev, [late1]);
      expect(fourth.accepted).toBe(1);
      expect(dev.ack(fromB64(fourth.ack))).toBe(3);
      await new Promise((r) => setTimeout(r, (GRACE_S + 1) * 1000));
      const fifth = await post(dev, [late2, dev.sample(23.5)]);
      expect(fifth.rejected).toEqual([{ index: 0, reason: 'frame authentication failed' }]);
      expect(fifth.accepted).toBe(1);
      const frames = await fetch(`${server.url}/v1/devices/${dev.serial}`, { headers: auth });
      expect(await frames.json()).toMatchObject({ serial: dev.serial, epoch: 1, renewal: 'committed', frames: 10 });
      const fleetStatus = await (await fetch(`${server.url}/v1/fleet`, { headers: auth })).json();
      expect(fleetStatus).toEqual({ latest_epoch: 1, epochs: [{ epoch: 0, devices: 1 }, { epoch: 1, devices: 1 }], pending: 0, frozen: 0 });
      const list = await sealpost('registry', 'list', '--config', config);
      expect(list.out).toMatch(new RegExp(`${dev.serial}\\s+puckjs\\s+B-R001\\s+active\\s+10\\s+\\S+\\s+1$`, 'm'));
      expect(list.out).toMatch(/^serial\s+board\s+batch\s+status\s+frames\s+last seen\s+epoch$/m);
      expect(dev.commitCounter).toBe(BLOCK + 1);
    }, 60_000);
  });
}
