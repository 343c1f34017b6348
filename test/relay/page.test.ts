// The Web Bluetooth relay page at /relay, in headless Chromium against a real
// server (HTTP on loopback, SQLite file, devices provisioned as the factory
// does and their signed manifest imported). `navigator.bluetooth` is
// Chromium's own, on its CDP Bluetooth emulation
// (test/helpers/bluetooth-emulation.ts), whose peripherals are answered by
// simulated devices running the real firmware in this process, on a
// VirtualClock the test advances: frames flow from the sim radio into the
// page, ack writes from the page into the device. Chromium 156 has no command
// to send a notification: a read of the frames characteristic, on the page's
// own characteristic object, answered with the frame, fires
// `characteristicvaluechanged` as a notification does, and stands in for it.
// The old navigator.bluetooth stand-in is gone; the one page not on Chromium's
// stack is the no-Web-Bluetooth test, whose navigator.bluetooth an init script
// deletes (the emulation cannot make a browser without the API).
//
// The checks: frames reach the database and acks free the device's outbox;
// frames queued while the server is unreachable survive a reload (IndexedDB)
// and reach the server afterwards, with the device off so nothing could
// resend them; a device that drops shows it and comes back; the user can
// disconnect and reconnect a device; every frame either device sealed is
// stored or accounted for by a gap; a device that has relayed is reconnected
// after discoveries that miss its service, one that never relayed is not a
// sealpost device; a missing adapter is reported before and at Connect with
// no chooser, and seen back on focus, visibility and Connect. Saves
// test/output/relay.png (a phone-sized page).
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boardProfile, withDevice } from '../../boards/index.js';
import type { BoardProfile } from '../../boards/types.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { SERVICE_UUID } from '../../protocol/wire/ble.js';
import { Relay, type DeviceLink } from '../../relay/index.js';
import { makeSimFleet, type SimFleet } from '../../sim/fleet.js';
import { MemoryQueueStore } from '../../relay/memory-queue.js';
import { MESSAGES } from '../../relay/web/messages.js';
import { LinkError } from '../../relay/web/ble-link.js';
import { DeviceSession, RECONNECT_DELAYS_MS, type SessionHost } from '../../relay/web/session.js';
import type { BluetoothDevice } from '../../relay/web/web-bluetooth.js';
import { NO_RATE_LIMIT, buildServer, checkConfig } from '../../server/index.js';
import { relayPageAssets } from '../../server/plugins/relay-page.js';
import { launchChromium, type Chromium } from '../helpers/chromium.js';
import { IngestServer, newKeySet, type FleetKeySet } from '../helpers/relay-server.js';
import { EmulatedBluetooth, STRANGER } from '../helpers/bluetooth-emulation.js';

const OUTPUT = join(import.meta.dirname, '../output');
const WEB_SOURCES = join(import.meta.dirname, '../../relay/web');
// Two sensors: one sample is two frames, about two frames per simulated second.
const PROFILE: BoardProfile = withDevice(boardProfile('sim'), { sensors: ['temperature', 'battery'] });

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const counterOf = (data: string) => Buffer.from(data, 'base64').readUInt32BE(0);

interface IdbFrame {
  id: number;
  serial: string;
  data: string;
  rx: number;
}

describe('relay page', () => {
  let keys: FleetKeySet;
  let server: IngestServer;
  let clock: VirtualClock;
  let fleet: SimFleet;
  let browser: Chromium;
  let url: string;
  let page: Page;
  let bt: EmulatedBluetooth;
  let relayId = '';
  const external: string[] = [];
  const problems: string[] = [];

  const storage = () => server.running.app.storage;
  const sim = (i: number) => fleet.devices[i]!;
  const serial = (i: number) => fleet.serials[i]!;
  const card = (s: string) => `#devices li[data-serial="${s}"]`;
  const stateOf = (s: string) => page.evaluate((sel) => document.querySelector(sel)?.getAttribute('data-state') ?? null, card(s));
  const queueCount = async () => Number(await page.getAttribute('#queue', 'data-count'));

  /** Advances the devices' clock by `stepMs` and lets the page see what happened. */
  async function tick(stepMs = 100): Promise<void> {
    clock.advance(stepMs);
    await bt.pump();
    await sleep(15);
  }

  async function until(what: string, cond: () => boolean | Promise<boolean>, options: { stepMs?: number; limitMs?: number } = {}): Promise<void> {
    const end = Date.now() + (options.limitMs ?? 20_000);
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the page's activity: ${await page?.textContent('#activity').catch(() => '?')}`);
      await tick(options.stepMs);
    }
  }

  const idbFrames = (): Promise<IdbFrame[]> =>
    page.evaluate(
      () =>
        new Promise<IdbFrame[]>((resolve, reject) => {
          const open = indexedDB.open('sealpost-relay');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const db = open.result;
            const all = db.transaction('frames').objectStore('frames').getAll();
            all.onsuccess = () => {
              db.close();
              resolve(all.result as IdbFrame[]);
            };
            all.onerror = () => reject(all.error);
          };
        }),
    );

  async function connectFromPage(i: number): Promise<void> {
    bt.choose(serial(i));
    await page.click('#connect');
    await until(`${serial(i)} connected`, async () => (await stateOf(serial(i))) === 'connected');
  }

  beforeAll(async () => {
    keys = newKeySet();
    server = new IngestServer(keys);
    await server.start({ rateLimit: NO_RATE_LIMIT });
    url = server.url;
    clock = new VirtualClock();
    fleet = makeSimFleet({
      count: 3,
      ingestPublic: keys.ingest.publicFile,
      factoryPrivate: keys.factory.privateFile,
      clock,
      profile: PROFILE,
      batch: 'WEB-1',
      prefix: 'SP-WEB',
      seed: 11,
    });
    await server.import(fleet.manifest);
    browser = await launchChromium({ width: 412, height: 915, webBluetooth: true });
    const origin = new URL(url).origin;
    await browser.context.route('**/*', (route) => {
      if (new URL(route.request().url()).origin === origin) return route.continue();
      external.push(route.request().url());
      return route.abort();
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('serves /relay and its bundle from memory with a strict CSP; on by default, off by config', async () => {
    const assets = await relayPageAssets();
    const js = assets.files.get('app.js')!.body.toString();
    expect(js).toContain(SERVICE_UUID.slice(8));
    expect(js).not.toMatch(/["']node:|require\(/);
    // Nothing reaches the page as HTML: the sources build the DOM with text only.
    for (const f of readdirSync(WEB_SOURCES)) {
      if (f.endsWith('.ts')) expect(readFileSync(join(WEB_SOURCES, f), 'utf8'), f).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    }

    const r = await fetch(`${url}/relay`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(await r.text()).toContain('<script defer src="relay/app.js"></script>');
    const js1 = await fetch(`${url}/relay/app.js`);
    expect(js1.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${url}/relay/app.js`, { headers: { 'if-none-match': js1.headers.get('etag')! } })).status).toBe(304);
    expect((await fetch(`${url}/relay/style.css`)).status).toBe(200);
    expect((await fetch(`${url}/relay/nope.js`)).status).toBe(404);
    const slash = await fetch(`${url}/relay/`, { redirect: 'manual' });
    expect([slash.status, slash.headers.get('location')]).toEqual([301, '../relay']);

    const ingestKeys = [keys.ingest.privateFile];
    const off = await buildServer({ config: checkConfig({ relay_page: false, log_level: 'silent' }), ingestKeys, storage: storage(), logger: false });
    expect((await off.inject({ url: '/relay' })).statusCode).toBe(404);
    await off.close();
    const on = await buildServer({ config: checkConfig({ relay_page: { enabled: true }, log_level: 'silent' }), ingestKeys, storage: storage(), logger: false });
    expect((await on.inject({ url: '/relay' })).statusCode).toBe(200);
    await on.close();
    expect(() => checkConfig({ relay_page: { on: true } }, '/', 'sealpost.json')).toThrow('sealpost.json: relay_page has an unknown setting "on" (known: enabled)');
    expect(() => checkConfig({ relay_page: 'yes' }, '/', 'sealpost.json')).toThrow('sealpost.json: relay_page must be false (no relay page), true, or an object');
    expect(() => checkConfig({ relay_page: { enabled: 1 } }, '/', 'sealpost.json')).toThrow('sealpost.json: relay_page.enabled must be true or false');
  });

  it('without Web Bluetooth says so, and still shows the queue and the server', async () => {
    const plain = await browser.context.newPage();
    await plain.addInitScript(() => {
      delete (Navigator.prototype as { bluetooth?: unknown }).bluetooth;
    });
    await plain.goto(`${url}/relay`);
    await plain.waitForSelector('body[data-ready="true"]');
    expect(await plain.textContent('#notice')).toBe('This browser has no Web Bluetooth: use Chrome on Android or desktop.');
    expect(await plain.isVisible('#notice')).toBe(true);
    expect(await plain.isDisabled('#connect')).toBe(true);
    expect(await plain.isVisible('#queue')).toBe(true);
    expect(await plain.textContent('#queue')).toBe('0 frames');
    expect(await plain.textContent('#server')).toBe(new URL(url).host);
    expect(await plain.textContent('#server-note')).toBe('HTTP, POST /v1/uplink');
    relayId = (await plain.textContent('#relay-id'))!;
    expect(relayId).toMatch(/^web-[0-9a-f]{12}$/);
    await plain.close();
  });

  it('relays a device: frames reach the database, acks reach the device', async () => {
    page = await browser.context.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    bt = await EmulatedBluetooth.install(browser.browser!, page, fleet.devices.map((s, i) => ({ sim: s, serial: serial(i) })));
    await page.goto(`${url}/relay`);
    await page.waitForSelector('body[data-ready="true"]');
    // The id is kept in localStorage across visits.
    expect(await page.textContent('#relay-id')).toBe(relayId);
    expect(await page.isVisible('#notice')).toBe(false);
    expect(await page.textContent('#no-devices')).toContain('No devices yet');

    // The user closes the chooser without picking: a calm note, nothing else.
    sim(0).boot();
    bt.choose(null);
    await page.click('#connect');
    await page.waitForSelector('#notice:has-text("No device was chosen")');

    const a = serial(0);
    await connectFromPage(0);
    // The page's filters (the service, or the name prefix) keep a nearby heart-rate sensor out of the chooser.
    expect([bt.stats.listed.has(bt.address(a)), bt.stats.listed.has(STRANGER)]).toEqual([true, false]);
    // Info read, then the subscription (the CCCD write), one after the other.
    expect(bt.stats.operations.slice(0, 2)).toEqual(['read info', 'subscribe-to-notifications frames']);
    expect(await page.textContent(`${card(a)} .meta`)).toBe('sim · firmware 0.1.0 · 20-byte frames');

    const device = () => sim(0).device!;
    await until('20 frames stored and acknowledged', async () => (await storage().frames(a)).length >= 20 && device().status().acked >= 20);
    const sealed = new Set(sim(0).sealedLog.map((f) => f.counter));
    const stored = await storage().frames(a);
    for (const f of stored) {
      expect(sealed.has(f.counter), `stored counter ${f.counter} was sealed`).toBe(true);
      expect(f.relay).toBe(relayId);
    }
    // Slow the clock so the device seals less often than the relay uploads: its outbox empties.
    await until('outbox drained by acks', () => device().outbox.count === 0 && device().status().acked > 20, { stepMs: 5 });
    expect(bt.stats.writes).toBeGreaterThan(0);
    // The page shows how far the server has confirmed.
    const confirmed = async () => Number(((await page.textContent(`${card(a)} [data-col="ack"]`)) ?? '').replace(/\D/g, ''));
    await until('the confirmation shown', async () => (await confirmed()) === device().status().acked, { stepMs: 0 });
    expect(await page.getAttribute('#upload-tile', 'data-ok')).toBe('true');
    expect(await page.textContent('#status .text')).toMatch(/^1 of 1 device connected · (everything delivered|uploading)$/);
    expect(bt.stats.busy).toBe(0);
  });

  it('keeps queued frames across a reload and delivers them once the server is reachable', async () => {
    const a = serial(0);
    await page.route('**/v1/uplink', (route) => route.abort('connectionrefused'));
    await until('frames queued on the page', async () => (await queueCount()) >= 10);
    await until('a failed upload shown', async () => (await page.getAttribute('#upload-tile', 'data-ok')) === 'false');
    expect(await page.textContent('#upload-result')).toMatch(/^Failed, .*could not reach the server/);
    expect(await page.textContent('#status .text')).toContain('uploads failing, frames kept on this phone');

    // Power off: the outbox in the device's RAM is gone, the page's queue is
    // the only copy of these frames, and nothing can resend them.
    sim(0).powerOff();
    await until('the page noticing', async () => (await stateOf(a)) === 'reconnecting');
    await sleep(300);
    const queued = await idbFrames();
    expect(queued.length).toBe(await queueCount());
    expect(queued.length).toBeGreaterThanOrEqual(10);
    const storedBefore = new Set((await storage().frames(a)).map((f) => f.counter));
    for (const f of queued) {
      expect(f.serial).toBe(a);
      expect(storedBefore.has(counterOf(f.data))).toBe(false);
    }

    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    expect(await queueCount()).toBe(queued.length);
    expect(await page.textContent('#activity')).toContain(`${queued.length} frame(s) from an earlier visit are queued`);
    expect(await page.isVisible('#no-devices')).toBe(true);
    expect(await page.textContent('#relay-id')).toBe(relayId);

    await page.unroute('**/v1/uplink');
    await until('the queued frames stored', async () => (await queueCount()) === 0, { stepMs: 0 });
    const after = new Map((await storage().frames(a)).map((f) => [f.counter, f]));
    for (const f of queued) {
      const s = after.get(counterOf(f.data));
      expect(s, `frame ${counterOf(f.data)} stored`).toBeDefined();
      expect(Buffer.from(s!.frame).toString('base64')).toBe(f.data);
      // Stamped when the page first received it, before the reload.
      expect(s!.rx).toBe(f.rx);
      expect(s!.relay).toBe(relayId);
    }
    expect(await idbFrames()).toEqual([]);
    expect(sim(0).on).toBe(false);
  });

  it('shows a device that drops, reconnects it, and lets the user disconnect and reconnect it', async () => {
    const [a, b] = [serial(0), serial(1)];
    sim(0).boot();
    sim(1).boot();
    await connectFromPage(0);
    await connectFromPage(1);

    // Out of range: the link drops and the retries fail until it is back.
    await bt.setInRange(a, false);
    await until('reconnecting shown', async () => (await stateOf(a)) === 'reconnecting');
    await until('a failed retry', async () => /Trying again in \d+ s \(try [2-9] of 7\)/.test((await page.textContent(`${card(a)} .problem`)) ?? ''), { stepMs: 20 });
    expect(await page.textContent(`${card(a)} .badge`)).toBe('reconnecting');
    await bt.setInRange(a, true);
    await until('reconnected', async () => (await stateOf(a)) === 'connected');
    expect(await page.textContent(`${card(a)} [data-col="connections"]`)).toBe('2');
    expect(await page.isHidden(`${card(a)} .problem`)).toBe(true);

    // The user disconnects: it stays disconnected until asked back.
    await page.click(`${card(a)} button:has-text("Disconnect")`);
    await until('disconnected', async () => (await stateOf(a)) === 'disconnected');
    for (let i = 0; i < 40; i++) await tick(20);
    expect(await stateOf(a)).toBe('disconnected');
    expect(bt.connected(a)).toBe(false);
    await page.click(`${card(a)} button:has-text("Reconnect")`);
    await until('connected again', async () => (await stateOf(a)) === 'connected');
    expect(await stateOf(b)).toBe('connected');

    // Every frame either device has sealed by now reaches the database, or
    // lies in a gap the server recorded (what the power cut took from RAM).
    const sealedBy = [0, 1].map((i) => sim(i).sealedLog.map((f) => f.counter));
    const unaccounted = async (i: number) => {
      const stored = new Set((await storage().frames(serial(i))).map((f) => f.counter));
      const gaps = await storage().gaps(serial(i));
      return sealedBy[i]!.filter((c) => !stored.has(c) && !gaps.some((g) => c >= g.first && c < g.first + g.count));
    };
    await until('everything sealed so far stored or in a gap', async () => (await unaccounted(0)).length === 0 && (await unaccounted(1)).length === 0);
    // The cut cost what was in the device's RAM and the unused rest of its
    // first power-up's counter block (none when it stopped on a block's end):
    // power-loss gaps covering at least every counter never sealed below the
    // last one, recorded once the server has settled up to the second
    // power-up's anchor.
    const sealedA = new Set(sealedBy[0]);
    const never = Array.from({ length: Math.max(...sealedBy[0]!) }, (_, i) => i + 1).filter((c) => !sealedA.has(c));
    const gapped = async () => new Set((await storage().gaps(a)).flatMap((g) => Array.from({ length: g.count }, (_, i) => g.first + i)));
    await until('the power cut recorded as a gap', async () => {
      const inGaps = await gapped();
      return never.every((c) => inGaps.has(c));
    });
    expect((await storage().gaps(a)).filter((g) => g.kind !== 'power-loss')).toEqual([]);
    expect(await storage().gaps(b)).toEqual([]);
    await until('the page caught up', async () => (await queueCount()) === 0 && (await page.getAttribute('#upload-tile', 'data-ok')) === 'true', { stepMs: 5 });
    expect(bt.stats.busy).toBe(0);
    expect(bt.errors).toEqual([]);
    expect(external).toEqual([]);
    expect(problems.filter((p) => !/ERR_CONNECTION_REFUSED|ERR_FAILED|Failed to load resource/.test(p))).toEqual([]);

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'relay.png'), fullPage: true });
  });

  it('keeps reconnecting a device that has relayed when a discovery misses its service; one that never had it is not a sealpost device', async () => {
    const a = serial(0);
    const problem = async () => (await page.textContent(`${card(a)} .problem`)) ?? '';
    // A reconnection whose discovery comes back without the service, twice (stale discovery on a phone).
    bt.missServiceOnDiscovery(a, 2);
    const discoveries = bt.stats.discoveries;
    const connections = Number(await page.textContent(`${card(a)} [data-col="connections"]`));
    await bt.drop(a);
    await until('a retry after a discovery without the service', async () => (await stateOf(a)) === 'reconnecting' && (await problem()).includes("the phone did not find the device's sealpost service this time"), { stepMs: 20 });
    await until('connected again', async () => (await stateOf(a)) === 'connected', { stepMs: 20 });
    expect(bt.stats.discoveries).toBeGreaterThanOrEqual(discoveries + 3);
    expect(Number(await page.textContent(`${card(a)} [data-col="connections"]`))).toBe(connections + 1);
    expect(await page.textContent('#activity')).not.toContain('not a sealpost device');
    const stored = (await storage().frames(a)).length;
    await until('frames stored after the reconnection', async () => (await storage().frames(a)).length > stored);

    // A device the page has never relayed, whose service is missing: written off at once, no retries.
    const c = fleet.serials[2]!;
    const other = page.locator('#devices li', { hasText: `sealpost ${c.slice(-6)}` });
    sim(2).boot();
    bt.missServiceOnDiscovery(c, 1_000);
    bt.choose(c);
    await page.click('#connect');
    await until('refused', async () => (await other.getAttribute('data-state')) === 'disconnected');
    expect(await other.locator('.problem').textContent()).toMatch(/^this is not a sealpost device: the device does not offer the sealpost service/i);
    const tries = bt.stats.connects;
    for (let i = 0; i < 40; i++) await tick(20);
    expect(bt.stats.connects).toBe(tries);
    expect(bt.stats.busy).toBe(0);
  });

  it('reports Bluetooth missing before and at Connect with no chooser, and sees it back on focus, visibility and Connect with no event from the browser', async () => {
    const notice = () => page.evaluate(() => (document.getElementById('notice')!.hidden ? '' : document.getElementById('notice')!.textContent));
    const a = serial(0);
    // Before any tap: the page opens on a phone without a usable adapter.
    await bt.setCentralState('absent');
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await bt.ready();
    await until('the notice at start', async () => (await notice()) === MESSAGES.bluetoothOff, { stepMs: 0 });
    // Connect checks again, finds none, and opens no chooser.
    const prompts = bt.stats.prompts;
    await page.click('#connect');
    await until('the refusal logged', async () => ((await page.textContent('#activity')) ?? '').includes('Bluetooth is off or missing'), { stepMs: 0 });
    expect(bt.stats.prompts).toBe(prompts);
    expect(await notice()).toBe(MESSAGES.bluetoothOff);

    // Back: Chromium fires no availabilitychanged, so the notice stays...
    await bt.setCentralState('powered-on');
    for (let i = 0; i < 10; i++) await tick(20);
    expect(await notice()).toBe(MESSAGES.bluetoothOff);
    // ...until the page gets the focus back (from the phone's settings, say).
    await page.evaluate(() => window.dispatchEvent(new Event('focus')));
    await until('the notice gone on focus', async () => (await notice()) === '', { stepMs: 0 });
    // Gone while the page was hidden: seen when it is visible again.
    await bt.setCentralState('absent');
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await until('the notice back on visibility', async () => (await notice()) === MESSAGES.bluetoothOff, { stepMs: 0 });
    // Back, with neither: the tap on Connect checks, finds it, and the chooser opens within the same user activation.
    await bt.setCentralState('powered-on');
    bt.choose(a);
    await page.click('#connect');
    await until(`${a} connected`, async () => (await stateOf(a)) === 'connected');
    expect(bt.stats.prompts).toBe(prompts + 1);
    expect(await notice()).toBe('');
    expect(bt.errors).toEqual([]);
  });
});

describe('DeviceSession (the page\'s reconnection logic, on Node)', () => {
  const settle = () => new Promise<void>((r) => setTimeout(r, 0));
  const networkError = () => new DOMException('Connection attempt failed.', 'NetworkError');
  const device = { id: 'd1', name: 'sealpost 000001', gatt: { disconnect() {} } } as unknown as BluetoothDevice;
  const link = (info: () => string): DeviceLink => ({ info, onFrame: async () => {}, write() {}, disconnect() {}, connected: () => true });

  async function setup(openLink: SessionHost['openLink']) {
    let now = 0;
    const timers: { fn: () => void; at: number }[] = [];
    const relay = await Relay.open({
      relayId: 'unit',
      clock: { now: () => now, setTimeout: () => 0, clearTimeout() {} },
      upload: () => Promise.reject(new Error('no uploads here')),
      store: new MemoryQueueStore(),
      linkPollMs: 0,
      log() {},
    });
    const host: SessionHost = {
      connect: (l) => relay.connect(l),
      openLink,
      now: () => now,
      setTimeout: (fn, ms) => timers.push({ fn, at: now + ms }),
      clearTimeout() {},
      changed() {},
      log() {},
    };
    const session = new DeviceSession(device, host);
    /** Runs the next retry timer. */
    const next = async () => {
      const t = timers.shift()!;
      now = t.at;
      t.fn();
      await settle();
    };
    return { session, timers, next };
  }

  it('retries a device that has relayed when a discovery misses its service, and refuses one that never relayed', async () => {
    const good = '{"serial":"SP-000001","v":1,"f":20,"b":"sim","fw":"0.1.0"}';
    const missing = () => new LinkError('not-sealpost', 'the device does not offer the sealpost service');
    let opens = 0;
    let lose: ((how: 'lost' | 'closed') => void) | undefined;
    const relayed = await setup(async (_device, onEnd) => {
      opens++;
      if (opens === 2 || opens === 3) throw missing();
      lose = onEnd;
      return link(() => good);
    });
    relayed.session.start();
    await settle();
    expect(relayed.session.state).toBe('connected');
    lose!('lost');
    await relayed.next();
    expect([relayed.session.state, relayed.session.problem]).toEqual(['reconnecting', "the phone did not find the device's sealpost service this time (the device does not offer the sealpost service)"]);
    await relayed.next();
    expect(relayed.session.state).toBe('reconnecting');
    await relayed.next();
    expect([relayed.session.state, relayed.session.problem, opens]).toEqual(['connected', undefined, 4]);

    const foreign = await setup(() => Promise.reject(missing()));
    foreign.session.start();
    await settle();
    expect([foreign.session.state, foreign.session.problem, foreign.timers]).toEqual(['disconnected', 'this is not a sealpost device: the device does not offer the sealpost service', []]);
  });

  it('retries a failed read, refuses a device whose info it cannot use, and stops after the last retry', async () => {
    let reads = 0;
    const good = '{"serial":"SP-000001","v":1,"f":20,"b":"sim","fw":"0.1.0"}';
    const flaky = await setup(async () =>
      link(() => {
        if (++reads === 1) throw networkError();
        return good;
      }),
    );
    flaky.session.start();
    await settle();
    expect([flaky.session.state, flaky.session.retryAt, flaky.session.problem]).toEqual([
      'reconnecting',
      RECONNECT_DELAYS_MS[0],
      'the device stopped answering while the relay set it up (reading device info failed: Connection attempt failed.)',
    ]);
    await flaky.next();
    expect([flaky.session.state, flaky.session.serial, flaky.session.problem]).toEqual(['connected', 'SP-000001', undefined]);

    const foreign = await setup(async () => link(() => '{"serial":"SP-000001","v":2,"f":20}'));
    foreign.session.start();
    await settle();
    expect(foreign.session.state).toBe('disconnected');
    expect(foreign.session.problem).toMatch(/^the device sent something the relay cannot use \(device SP-000001 speaks protocol 2/);
    expect(foreign.timers).toEqual([]);

    const away = await setup(() => Promise.reject(networkError()));
    away.session.start();
    await settle();
    expect(away.session.problem).toBe('could not reach the device: it may be out of range, switched off or connected to another phone, or Bluetooth on this phone is off');
    for (let i = 0; i < RECONNECT_DELAYS_MS.length; i++) {
      expect(away.session.state).toBe('reconnecting');
      await away.next();
    }
    expect([away.session.state, away.session.gaveUp]).toEqual(['disconnected', true]);
    expect(away.session.problem).toMatch(/Gave up after 7 tries: bring it closer, check that it is switched on, and tap Reconnect\.$/);
    away.session.reconnect();
    expect([away.session.state, away.session.gaveUp]).toEqual(['connecting', false]);
  });
});
