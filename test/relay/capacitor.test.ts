// The Capacitor adapter (relay/adapters/capacitor.ts, `sealpost/relay/capacitor`) in headless Chromium, through
// @capacitor-community/bluetooth-le's own web implementation on Chromium's Web Bluetooth, driven by its CDP emulation
// (test/helpers/bluetooth-emulation.ts: each peripheral answered by a simulated device running the real firmware;
// a read of the frames characteristic stands in for a notification, which Chromium 156 cannot send). The page runs
// examples/capacitor/src/relay.ts, the example app's relay (its startRelay, with its own defaults), bundled with
// esbuild as an app's bundler would: `sealpost/relay...` resolved through package.json "exports" to build/, the
// plugin from node_modules. It relays to a real server on loopback. The checks: two
// devices relayed at once, frames stored and acks written back to the devices' firmware, one GATT operation at a
// time per device; a dropped link reconnected with backoff; a device that relayed kept reconnecting through
// discoveries that miss its service; one that never had the service written off as not a sealpost device.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, type Plugin } from 'esbuild';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boardProfile, withDevice } from '../../boards/index.js';
import type { BoardProfile } from '../../boards/types.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { makeSimFleet, type SimFleet } from '../../sim/fleet.js';
import { NO_RATE_LIMIT } from '../../server/index.js';
import { launchChromium, type Chromium } from '../helpers/chromium.js';
import { IngestServer, newKeySet, type FleetKeySet } from '../helpers/relay-server.js';
import { EmulatedBluetooth } from '../helpers/bluetooth-emulation.js';
import type { RelayStatus } from '../../relay/index.js';
import type { AdapterDeviceStatus } from '../../relay/adapters/capacitor.js';

declare global {
  interface Window {
    /** What the test page (ENTRY, below) exposes. */
    sealpostTest: {
      /** Starts the example's relay with this relay id; resolves to whether it scans (false on the web). */
      start(relayId: string): Promise<boolean>;
      devices(): AdapterDeviceStatus[];
      status(): RelayStatus;
      stop(): Promise<void>;
      logs: string[];
      errors: string[];
    };
  }
}

const PROFILE: BoardProfile = withDevice(boardProfile('sim'), { sensors: ['temperature', 'battery'] });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const HTML = '<!doctype html><meta charset="utf-8"><title>capacitor relay</title><button id="add">Add a device</button><script type="module" src="app.js"></script>';
const ROOT = join(import.meta.dirname, '../..');

// The page: the example's startRelay, and window.sealpostTest to drive it. Plain script (not type-checked with the
// repository: the example's `sealpost/relay` imports resolve to build/, which the type-check runs before); the
// example itself is type-checked by test/examples/examples.test.ts.
const ENTRY = `
import { startRelay } from './examples/capacitor/src/relay';
const logs = [];
const errors = [];
for (const level of ['log', 'info', 'warn', 'error']) {
  const original = console[level].bind(console);
  console[level] = (...args) => { logs.push(level + ': ' + args.join(' ')); original(...args); };
}
let app;
window.sealpostTest = {
  async start(relayId) {
    localStorage.setItem('sealpost-relay-id', relayId); // the example makes one id per install and keeps it here
    app = await startRelay({ server: location.origin, onChange: () => {} });
    // The web has no scanning: requestDevice needs a user gesture, and the test clicks this button once per device.
    document.getElementById('add').addEventListener('click', () => {
      app.ble.requestDevice().catch((e) => errors.push(String(e)));
    });
    return app.scanning;
  },
  devices: () => app.ble.devices(),
  status: () => app.relay.status(),
  stop: () => app && app.stop(),
  logs,
  errors,
};
`;

/** `sealpost/relay...` as an app's bundler resolves it: package.json "exports" to the compiled modules in build/. */
function packageExports(): Plugin {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { import?: string }> };
  return {
    name: 'sealpost-exports',
    setup(b) {
      b.onResolve({ filter: /^sealpost\// }, (args) => {
        const target = pkg.exports[`.${args.path.slice('sealpost'.length)}`]?.import;
        return target ? { path: join(ROOT, target) } : { errors: [{ text: `${args.path} is not exported by sealpost` }] };
      });
    },
  };
}

describe('Capacitor adapter on the plugin\'s web build and Chromium\'s Web Bluetooth', () => {
  let keys: FleetKeySet;
  let server: IngestServer;
  let clock: VirtualClock;
  let fleet: SimFleet;
  let browser: Chromium;
  let page: Page;
  let bt: EmulatedBluetooth;
  const problems: string[] = [];
  const serial = (i: number) => fleet.serials[i]!;
  const storage = () => server.running.app.storage;

  type Devices = { id: string; state: string; serial?: string; failures: number; problem?: string }[];
  const devices = (): Promise<Devices> => page.evaluate(() => window.sealpostTest.devices() as Devices);
  const stateOf = async (s: string) => (await devices()).find((d) => d.serial === s)?.state;

  async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 25_000): Promise<void> {
    const end = Date.now() + limitMs;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; devices: ${JSON.stringify(await devices().catch(() => '?'))}; log: ${(await page.evaluate(() => window.sealpostTest.logs.slice(-8)).catch(() => [])).join(' | ')}`);
      clock.advance(100);
      await bt.pump();
      await sleep(15);
    }
  }

  async function add(i: number): Promise<void> {
    bt.choose(serial(i));
    await page.click('#add');
    await until(`${serial(i)} relayed`, async () => (await stateOf(serial(i))) === 'connected');
  }

  beforeAll(async () => {
    keys = newKeySet();
    server = new IngestServer(keys);
    await server.start({ rateLimit: NO_RATE_LIMIT });
    clock = new VirtualClock();
    fleet = makeSimFleet({ count: 3, ingestPublic: keys.ingest.publicFile, factoryPrivate: keys.factory.privateFile, clock, profile: PROFILE, batch: 'CAP-1', prefix: 'SP-CAP', seed: 23 });
    await server.import(fleet.manifest);
    const bundle = await build({
      stdin: { contents: ENTRY, resolveDir: ROOT, sourcefile: 'capacitor-test-page.js', loader: 'js' },
      plugins: [packageExports()],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0]!.text;
    expect(js).not.toMatch(/["']node:/);
    browser = await launchChromium({ webBluetooth: true });
    const origin = new URL(server.url).origin;
    await browser.context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.origin !== origin) return route.abort();
      if (u.pathname === '/cap/') return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: HTML });
      if (u.pathname === '/cap/app.js') return route.fulfill({ status: 200, contentType: 'text/javascript; charset=utf-8', body: js });
      return route.continue();
    });
    page = await browser.context.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    bt = await EmulatedBluetooth.install(browser.browser!, page, fleet.devices.map((s, i) => ({ sim: s, serial: serial(i) })));
    await page.goto(`${origin}/cap/`);
    await page.waitForFunction(() => 'sealpostTest' in window);
    // On the web the example does not scan: devices come from the chooser.
    expect(await page.evaluate(() => window.sealpostTest.start('cap-test'))).toBe(false);
  }, 60_000);

  afterAll(async () => {
    await page?.evaluate(() => window.sealpostTest.stop()).catch(() => undefined);
    await browser?.close();
    await server?.stop();
  });

  it('relays two devices at once: frames reach the database, acks reach each device, one GATT operation at a time', { timeout: 180_000 }, async () => {
    fleet.devices[0]!.boot();
    fleet.devices[1]!.boot();
    await add(0);
    await add(1);
    // Info read, then the subscription (the CCCD write), per device.
    expect(bt.stats.operations.slice(0, 2)).toEqual(['read info', 'subscribe-to-notifications frames']);
    for (const i of [0, 1]) {
      const device = () => fleet.devices[i]!.device!;
      await until(`${serial(i)}: 10 frames stored and acknowledged`, async () => (await storage().frames(serial(i))).length >= 10 && device().status().acked >= 10);
      const sealed = new Set(fleet.devices[i]!.sealedLog.map((f) => f.counter));
      for (const f of await storage().frames(serial(i))) {
        expect(sealed.has(f.counter)).toBe(true);
        expect(f.relay).toBe('cap-test');
      }
    }
    expect(bt.stats.writes).toBeGreaterThan(0);
    expect(bt.stats.busy).toBe(0);
    const status = await page.evaluate(() => window.sealpostTest.status());
    expect(status.devices.map((d) => d.state)).toEqual(['connected', 'connected']);
    expect(status.totals.acksWritten).toBeGreaterThan(0);
  });

  it('reconnects a dropped device with backoff, and keeps reconnecting one that relayed through discoveries that miss its service', { timeout: 180_000 }, async () => {
    const a = serial(0);
    const connections = async () => (await page.evaluate(() => window.sealpostTest.status())).devices.find((d) => d.serial === a)!.connections;
    expect(await connections()).toBe(1);
    await bt.drop(a);
    await until(`${a} dropped`, async () => (await stateOf(a)) !== 'connected');
    await until(`${a} reconnected`, async () => (await stateOf(a)) === 'connected' && (await connections()) === 2);

    const discoveries = bt.stats.discoveries;
    bt.missServiceOnDiscovery(a, 2);
    await bt.drop(a);
    await until(`${a} back after two stale discoveries`, async () => (await stateOf(a)) === 'connected' && (await connections()) === 3);
    expect(bt.stats.discoveries - discoveries).toBeGreaterThanOrEqual(3);
    const before = fleet.devices[0]!.device!.status().acked;
    await until(`${a} acknowledged again`, () => fleet.devices[0]!.device!.status().acked > before);
    expect(bt.stats.busy).toBe(0);
  });

  it('a device that never had the service is not a sealpost device, and is not retried', { timeout: 150_000 }, async () => {
    const c = serial(2);
    fleet.devices[2]!.boot();
    bt.missServiceOnDiscovery(c, 100);
    bt.choose(c);
    await page.click('#add');
    await until('the third device written off', async () => (await devices()).some((d) => d.state === 'not-sealpost'));
    const third = (await devices()).find((d) => d.state === 'not-sealpost')!;
    expect(third.serial).toBeUndefined();
    expect(third.problem).toMatch(/does not offer the sealpost service/);
    const discoveries = bt.stats.discoveries;
    for (let i = 0; i < 20; i++) {
      clock.advance(100);
      await bt.pump();
      await sleep(15);
    }
    expect(bt.stats.discoveries).toBe(discoveries);
    expect(await page.evaluate(() => window.sealpostTest.errors)).toEqual([]);
    expect(problems).toEqual([]);
    expect(bt.errors).toEqual([]);
  });
});
