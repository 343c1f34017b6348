// `sealpost fleet status` (issue #17 item 4, the command-line face of GET /v1/fleet): against a real
// server over HTTP with a fleet where one device renewed and one did not, the table an operator reads;
// and every bad input (no token, a token flag, a wrong token, no server, not a sealpost server, a
// malformed answer) gives an error that says what to do.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importManifest, makeConfig, startServer, NO_RATE_LIMIT, type RunningServer } from '../../server/index.js';
import { body, readToken } from '../helpers/server.js';
import { RenewingDevice, fromB64, makeRenewalFleet, type RenewalFleet } from '../helpers/renewal.js';
import { formatFleetStatus, parseFleetStatus } from '../../cli/fleet.js';
import { sealpost } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'sealpost-fleet-cli-'));
let fleet: RenewalFleet;
let server: RunningServer;
let token: string;
let other: Server;
let otherUrl = '';
let answer = '{}';

beforeAll(async () => {
  fleet = makeRenewalFleet(2, 'SP-FS');
  fleet.renew();
  server = await startServer(
    makeConfig({
      db: join(dir, 'sealpost.db'),
      listen: { host: '127.0.0.1', port: 0 },
      ingestKeys: fleet.ingestKeyFiles,
      logLevel: 'silent',
      rateLimit: NO_RATE_LIMIT,
      renewal: { publicKey: fleet.paths.renewalPublic, announce: [fleet.dir], graceMs: 86_400_000 },
    }),
    { logger: false },
  );
  const storage = server.app.storage;
  await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
  token = (await readToken(storage)).token;
  // Device 1 renews to epoch 1 (ANNOUNCE, REKEY, RENEW_ACK, a frame under the new key); device 2 stays on 0.
  const post = async (dev: RenewingDevice, frames: Uint8Array[]) => {
    const r = await fetch(`${server.url}/v1/uplink`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body('t', Date.now(), [{ serial: dev.serial, frames: frames.map((frame) => ({ frame, rx: Date.now() })) }])),
    });
    return (await r.json()).devices[0];
  };
  const dev = new RenewingDevice(fleet.devices[0]!, fleet);
  const first = await post(dev, [dev.anchor()]);
  const second = await post(dev, dev.announce(first.downlink.map(fromB64)));
  expect(dev.renewAck(second.downlink.map(fromB64))).toBe(true);
  await post(dev, [dev.sample(20)]);
  const stay = new RenewingDevice(fleet.devices[1]!, fleet);
  await post(stay, [stay.anchor()]);
  other = createServer((_, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(answer);
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  otherUrl = `http://127.0.0.1:${(other.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  delete process.env.SEALPOST_TOKEN;
  await server?.close();
  await new Promise((r) => other?.close(r));
  rmSync(dir, { recursive: true, force: true });
  rmSync(fleet?.dir ?? '', { recursive: true, force: true });
});

describe('sealpost fleet status', () => {
  it('prints how much of the fleet is on the latest epoch, as a table and as JSON', async () => {
    process.env.SEALPOST_TOKEN = token;
    const r = await sealpost('fleet', 'status', '--server', server.url);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      ['latest epoch 1: 1 of 2 devices on it (50.0%); renewals pending 0, frozen 0', '', 'epoch  devices  share', '0            1  50.0%', '1            1  50.0%'].join('\n'),
    );
    const j = await sealpost('fleet', 'status', '--server', server.url, '--json');
    expect(JSON.parse(j.out)).toEqual({ latest_epoch: 1, epochs: [{ epoch: 0, devices: 1 }, { epoch: 1, devices: 1 }], pending: 0, frozen: 0 });
  });

  it('reads the token from --token-file', async () => {
    delete process.env.SEALPOST_TOKEN;
    const file = join(dir, 'token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const r = await sealpost('fleet', 'status', '--server', server.url, '--token-file', file);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^latest epoch 1: 1 of 2 devices on it/);
  });

  it('says what to do about bad input', async () => {
    delete process.env.SEALPOST_TOKEN;
    const cases: [string[], number, RegExp][] = [
      [['fleet'], 2, /say what to do: status/],
      [['fleet', 'list'], 2, /unknown fleet command "list"; the one there is: status/],
      [['fleet', 'status'], 2, /--server URL is required/],
      [['fleet', 'status', '--server', 'not a url'], 2, /--server must be a URL/],
      [['fleet', 'status', '--server', 'ftp://x'], 2, /--server must be http:\/\/ or https:\/\//],
      [['fleet', 'status', '--server', server.url], 2, /a read token is needed: set SEALPOST_TOKEN or give --token-file FILE/],
      [['fleet', 'status', '--server', server.url, '--token', 'x'], 2, /--token would show the token in the process list/],
      [['fleet', 'status', '--server', server.url, '--token-file', join(dir, 'missing')], 2, /--token-file .*missing cannot be read/],
      [['fleet', 'status', '--server', server.url, '--bogus'], 2, /unknown option --bogus/],
    ];
    for (const [args, code, err] of cases) {
      const r = await sealpost(...args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.err, args.join(' ')).toMatch(err);
    }
    process.env.SEALPOST_TOKEN = 'spt_not-a-real-token';
    const wrong = await sealpost('fleet', 'status', '--server', server.url);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/refused the token \(401\); make a read token with sealpost token create --role read/);
    // A port nothing listens on: one the system gave out and took back.
    const gone = createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const port = (gone.address() as { port: number }).port;
    await new Promise((r) => gone.close(r));
    const closed = await sealpost('fleet', 'status', '--server', `http://127.0.0.1:${port}`);
    expect(closed.code).toBe(1);
    expect(closed.err).toContain(`cannot reach http://127.0.0.1:${port} (ECONNREFUSED); is the server running there?`);
    answer = '{"latest_epoch": 1, "epochs": "all"}';
    const odd = await sealpost('fleet', 'status', '--server', otherUrl);
    expect(odd.code).toBe(1);
    expect(odd.err).toMatch(/GET \/v1\/fleet answer has no pending or frozen count; is --server a sealpost server/);
    answer = 'not json';
    const html = await sealpost('fleet', 'status', '--server', otherUrl);
    expect(html.err).toMatch(/something that is not JSON/);
  });

  it('checks the answer and shows frozen devices', () => {
    expect(() => parseFleetStatus(null)).toThrow(/is not a JSON object/);
    expect(() => parseFleetStatus({ latest_epoch: -1, epochs: [], pending: 0, frozen: 0 })).toThrow(/has no latest_epoch/);
    expect(() => parseFleetStatus({ latest_epoch: 0, epochs: [{ epoch: 0 }], pending: 0, frozen: 0 })).toThrow(/has no epochs list/);
    const text = formatFleetStatus({ latest_epoch: 2, epochs: [{ epoch: 2, devices: 3 }, { epoch: 1, devices: 1 }], pending: 1, frozen: 1 });
    expect(text.split('\n')).toEqual([
      'latest epoch 2: 3 of 4 devices on it (75.0%); renewals pending 1, frozen 1',
      '',
      'epoch  devices  share',
      '1            1  25.0%',
      '2            3  75.0%',
      '',
      '1 device(s) frozen: a second, different key for one epoch; see GET /v1/devices/SERIAL and revoke a captured device',
    ]);
    expect(formatFleetStatus({ latest_epoch: 0, epochs: [], pending: 0, frozen: 0 }).split('\n')[0]).toBe('latest epoch 0: 0 of 0 devices on it (-); renewals pending 0, frozen 0');
  });
});
