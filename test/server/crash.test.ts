// kill -9 in the middle of an ingest run: the server runs as its own process
// (`node bin/sealpost.mjs server`, SQLite file, random loopback port); the
// client posts batches from several devices concurrently and keeps every ack
// it receives; the server is killed with SIGKILL while requests are in
// flight. Afterwards every frame an ack covered (counter <= N) must be in the
// database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { readU32BE, verifyAck } from '../../protocol/index.js';
import { importManifest, openStorage } from '../../server/index.js';
import { SealingDevice, body, makeFleet, type Fleet } from '../helpers/server.js';
import { startServerProcess, writeConfig, writeFleetFiles, type FleetFiles } from '../helpers/server-files.js';

const DEVICES = 12;
const BATCH = 25;
const KILL_AFTER_ACKS = 60;

describe('kill -9 during ingest', () => {
  let fleet: Fleet;
  let files: FleetFiles;

  beforeAll(async () => {
    fleet = makeFleet(DEVICES);
    files = writeFleetFiles(fleet);
    const storage = await openStorage(files.db);
    await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
    await storage.close();
  });
  afterAll(() => rmSync(files.dir, { recursive: true, force: true }));

  it('keeps every frame it acknowledged', async () => {
    const config = writeConfig(files.dir, { db: files.db, listen: '127.0.0.1:0', ingest_keys: [files.ingestKey], rate_limit: false, log_level: 'info' });
    const { child, url, exited } = await startServerProcess(config, 30_000);

    const devices = fleet.devices.map((d) => new SealingDevice(d));
    const acked = new Map<string, number>();
    let acks = 0;
    let inFlightAtKill = 0;
    let inFlight = 0;
    let killed = false;

    // Each worker owns some devices and behaves like a relay with an outbox per device:
    // it resends everything not yet acknowledged along with new frames.
    const worker = async (mine: SealingDevice[]) => {
      const outbox = new Map<string, Uint8Array[]>(mine.map((d) => [d.serial, []]));
      for (let round = 0; !killed; round++) {
        const d = mine[round % mine.length]!;
        const box = outbox.get(d.serial)!;
        for (let i = 0; i < BATCH; i++) box.push(d.sample(0, d.counter + 1, [{ channel: 1, value: d.counter % 100 }]));
        const payload = body('relay-crash', Date.now(), [{ serial: d.serial, frames: box.slice(0, 200).map((frame) => ({ frame, rx: Date.now() })) }]);
        inFlight++;
        let res: Response;
        try {
          res = await fetch(`${url}/v1/uplink`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
        } catch {
          return; // the server is gone
        } finally {
          inFlight--;
        }
        let json: any;
        try {
          json = await res.json();
        } catch {
          return;
        }
        expect(res.status).toBe(200);
        const ack = json.devices[0].ack;
        if (ack === null) continue;
        const n = verifyAck(d.keys, new Uint8Array(Buffer.from(ack, 'base64')));
        acked.set(d.serial, Math.max(acked.get(d.serial) ?? 0, n));
        while (box.length > 0 && readU32BE(box[0]!, 0) <= n) box.shift();
        if (++acks === KILL_AFTER_ACKS && !killed) {
          killed = true;
          inFlightAtKill = inFlight;
          child.kill('SIGKILL');
        }
      }
    };
    const workers = [0, 1, 2, 3].map((w) => worker(devices.filter((_, i) => i % 4 === w)));
    await Promise.all(workers);
    expect(await exited).toBe('SIGKILL');
    expect(acks).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);
    expect(inFlightAtKill).toBeGreaterThan(0);

    const storage = await openStorage(files.db);
    try {
      let checked = 0;
      for (const [serial, n] of acked) {
        const have = new Set((await storage.frames(serial)).map((f) => f.counter));
        for (let c = 1; c <= n; c++) expect(have.has(c), `${serial} counter ${c} was acked (N=${n}) but is missing`).toBe(true);
        checked += n;
      }
      expect(checked).toBeGreaterThan(KILL_AFTER_ACKS * BATCH * 0.5);
    } finally {
      await storage.close();
    }
  });
});
