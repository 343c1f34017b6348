// The dashboard at `/`, in headless Chromium against a real server (HTTP on
// loopback, SQLite file): devices registered from a signed manifest, sealed
// frames posted over HTTP with readings spread over the last hours, an outbox
// overflow and a reboot that lost frames, one device never seen and one
// revoked. The test reads the page as a user would: it signs in with an API
// token (the form, the `#token=` fragment, refusal and sign-out), checks that
// it loads nothing from anywhere but the server and no data before sign-in,
// and saves test/output/dashboard.png and dashboard-signin.png.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Page } from 'playwright-core';
import { ANCHOR_BOOT, type Reading } from '../../protocol/index.js';
import { NO_RATE_LIMIT, buildServer, checkConfig, importManifest, makeConfig, revokeDevice, type Storage } from '../../server/index.js';
import { dashboardAssets } from '../../server/plugins/dashboard.js';
import { createToken, revokeToken } from '../../server/auth/tokens.js';
import { launchChromium, type Chromium } from '../helpers/chromium.js';
import { SealingDevice, body, makeFleet, testDb, type Fleet, type TestDb } from '../helpers/server.js';

const OUTPUT = join(import.meta.dirname, '../output');
const MIN = 60_000;
const nf = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

describe('dashboard', () => {
  let db: TestDb;
  let storage: Storage;
  let fleet: Fleet;
  let app: FastifyInstance;
  let url: string;
  let browser: Chromium;
  let page: Page;
  const external: string[] = [];
  const local: string[] = [];
  const problems: string[] = [];
  let token: string;
  const expected = { frames: [0, 0], battery1: 0, voltage2: 0, lost2: [0, 0] };

  async function post(frames: { d: SealingDevice; frame: Uint8Array; rx: number }[]): Promise<void> {
    const bySerial = new Map<string, { frame: Uint8Array; rx: number }[]>();
    for (const f of frames) bySerial.set(f.d.serial, [...(bySerial.get(f.d.serial) ?? []), { frame: f.frame, rx: f.rx }]);
    const time = Math.max(...frames.map((f) => f.rx));
    const r = await fetch(`${url}/v1/uplink`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body('relay-dash', time, [...bySerial].map(([serial, fs]) => ({ serial, frames: fs })))),
    });
    expect(r.status).toBe(200);
    for (const d of ((await r.json()) as { devices: { rejected: unknown[] }[] }).devices) expect(d.rejected).toEqual([]);
  }

  /** Six hours of one device and five of another, posted hour by hour as a relay would. */
  async function ingestHistory(): Promise<void> {
    const now = Date.now();
    const d1 = new SealingDevice(fleet.devices[0]!, fleet.frameSize);
    const d2 = new SealingDevice(fleet.devices[1]!, fleet.frameSize);

    // SP-T00001: temperature and battery % every 10 minutes; four frames dropped by a full outbox.
    const t1 = now - 6 * 60 * MIN;
    let batch: { d: SealingDevice; frame: Uint8Array; rx: number }[] = [{ d: d1, frame: d1.anchor(1, 0, ANCHOR_BOOT), rx: t1 + 1000 }];
    for (let k = 1; k <= 35; k++) {
      const up = k * 600;
      const battery = Math.round((92 - k * 0.1) * 100) / 100;
      const readings: Reading[] = [
        { channel: 1, value: Math.round((21 + 3 * Math.sin(k / 5) + (k % 3) * 0.15) * 100) / 100 },
        { channel: 2, value: battery },
      ];
      const frame = d1.sample(1, up, readings);
      if (k >= 18 && k <= 21) continue; // sealed, never delivered
      if (k === 22) batch.push({ d: d1, frame: d1.gap(19, 4), rx: t1 + up * 1000 + 1200 });
      batch.push({ d: d1, frame, rx: t1 + up * 1000 + 1500 });
      expected.battery1 = battery;
      if (k % 6 === 0) {
        await post(batch);
        batch = [];
      }
    }
    await post(batch);
    expected.frames[0] = d1.counter - 4;

    // SP-T00002: temperature, humidity and battery voltage every 15 minutes; a reboot that lost 3 frames.
    const t2 = now - 5 * 60 * MIN;
    batch = [{ d: d2, frame: d2.anchor(3, 0, ANCHOR_BOOT), rx: t2 + 1000 }];
    const env = (k: number): Reading[] => {
      expected.voltage2 = Math.round((3.02 - k * 0.004) * 1000) / 1000;
      return [
        { channel: 1, value: Math.round((18.5 + 1.5 * Math.cos(k / 4)) * 100) / 100 },
        { channel: 8, value: Math.round((55 - 8 * Math.sin(k / 6)) * 100) / 100 },
        { channel: 3, value: expected.voltage2 },
      ];
    };
    for (let k = 1; k <= 10; k++) batch.push({ d: d2, frame: d2.sample(3, k * 900, env(k)), rx: t2 + k * 900_000 + 1500 });
    await post(batch);
    expected.lost2 = [d2.counter + 1, d2.counter + 3];
    d2.counter += 3; // counters reserved before the power failed, never used
    const t3 = t2 + 10 * 900_000 + 35 * MIN;
    batch = [{ d: d2, frame: d2.anchor(4, 0, ANCHOR_BOOT), rx: t3 + 1000 }];
    for (let k = 1; t3 + k * 900_000 + 1500 < now; k++) batch.push({ d: d2, frame: d2.sample(4, k * 900, env(10 + k)), rx: t3 + k * 900_000 + 1500 });
    await post(batch);
    expected.frames[1] = d2.counter - 3;

    await revokeDevice(storage, fleet.devices[3]!.serial);
  }

  beforeAll(async () => {
    db = await testDb('sqlite');
    storage = await db.open();
    fleet = makeFleet(4, { frameSize: 32 });
    app = await buildServer({
      config: makeConfig({ logLevel: 'silent', rateLimit: NO_RATE_LIMIT }),
      ingestKeys: [fleet.ingest.privateFile],
      storage,
      logger: false,
    });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    token = (await createToken(storage, 'dashboard-test', 'read')).token;
    browser = await launchChromium({ width: 1280, height: 900 });
    const origin = new URL(url).origin;
    await browser.context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.origin === origin) {
        local.push(u.pathname);
        return route.continue();
      }
      external.push(u.href);
      return route.abort();
    });
    page = await browser.context.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // A refused token is a 401 the browser reports as a failed resource; the sign-in tests expect those.
      if (m.type() === 'error' && /status of 401/.test(m.text())) return;
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await storage?.close();
    await db?.drop();
  });

  it('builds the front-end in memory, with uPlot and its stylesheet', async () => {
    const assets = await dashboardAssets();
    expect(assets.files.get('app.js')!.body.toString()).toContain('uplot');
    expect(assets.files.get('style.css')!.body.toString()).toContain('.u-legend');
    // Nothing from the server reaches the page as HTML: the sources build the DOM with text only.
    for (const f of readdirSync(join(import.meta.dirname, '../../server/dashboard'))) {
      if (f.endsWith('.ts')) expect(readFileSync(join(import.meta.dirname, '../../server/dashboard', f), 'utf8')).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    }
  });

  it('asks for a token on first visit, explains how to get one, and fetches no data before', async () => {
    local.length = 0;
    await page.goto(`${url}/`);
    await page.waitForSelector('#signin:not([hidden]) #token-input');
    expect(await page.textContent('#signin')).toContain('sealpost token create --role read --name NAME');
    expect(await page.isHidden('#data')).toBe(true);
    expect(await page.isHidden('#who')).toBe(true);
    expect(local.filter((p) => p.startsWith('/v1/'))).toEqual([]);
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'dashboard-signin.png') });
  });

  it('refuses a wrong token with a message and keeps nothing of it', async () => {
    await page.fill('#token-input', `spt_${'A'.repeat(43)}`);
    await page.click('#signin-button');
    await page.waitForSelector('#signin-message:has-text("That token was refused")');
    expect(await page.textContent('#signin-message')).toMatch(/^That token was refused: the token is not valid/);
    expect(await page.evaluate(() => sessionStorage.getItem('sealpost.token'))).toBeNull();
    expect(await page.isHidden('#data')).toBe(true);
    expect(local.filter((p) => p.startsWith('/v1/'))).toEqual(['/v1/session']);
  });

  it('says what to do when no device is registered yet', async () => {
    await page.fill('#token-input', token);
    await page.click('#signin-button');
    await page.waitForSelector('body[data-loaded="true"]');
    expect(await page.textContent('#who')).toMatch(/^signed in as dashboard-test \(read\)\s*Sign out$/);
    expect(await page.evaluate(() => sessionStorage.getItem('sealpost.token'))).toBe(token);
    expect(await page.textContent('#devices')).toContain('No devices yet. Import a signed batch manifest with sealpost registry import MANIFEST');
    expect(await page.textContent('#charts')).toContain('Charts appear here once devices are registered');
  });

  it('shows every device with status, last seen, battery, frames and gaps, and a chart per channel', async () => {
    await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
    await ingestHistory();
    local.length = 0;
    await page.reload();
    await page.waitForSelector('body[data-loaded="true"]');
    await page.waitForSelector('[data-serial="SP-T00002"] figure[data-channel="battery_voltage"] canvas');

    const rows = await page.$$eval('#devices tbody tr', (trs) =>
      trs.map((tr) => Object.fromEntries(Array.from(tr.querySelectorAll('td')).map((td) => [td.dataset.col, td.textContent!.trim()]))),
    );
    const [a, b, c, d] = fleet.devices.map((x) => x.serial);
    expect(rows).toEqual([
      { serial: a, board: 'puckjs', status: 'active', 'last-seen': expect.stringMatching(/^(just now|\d+ s ago)$/), battery: `${nf.format(expected.battery1)} %`, frames: String(expected.frames[0]), gaps: '1 · 4 lost' },
      { serial: b, board: 'puckjs', status: 'active', 'last-seen': expect.stringMatching(/^(just now|\d+ s ago)$/), battery: `${nf.format(expected.voltage2)} V`, frames: String(expected.frames[1]), gaps: '1 · 3 lost' },
      { serial: c, board: 'puckjs', status: 'active', 'last-seen': 'never', battery: '–', frames: '0', gaps: '0' },
      { serial: d, board: 'puckjs', status: 'revoked', 'last-seen': 'never', battery: '–', frames: '0', gaps: '0' },
    ]);
    expect(await page.textContent('#summary')).toContain('Devices4');

    // Small multiples: one figure with one canvas per channel, in channel order, labelled with name and unit.
    const charts = await page.$$eval('#charts .card', (cards) =>
      cards.map((card) => ({
        serial: (card as HTMLElement).dataset.serial,
        channels: Array.from(card.querySelectorAll('figure')).map((f) => (f as HTMLElement).dataset.channel),
        canvases: card.querySelectorAll('figure canvas').length,
        labels: Array.from(card.querySelectorAll('.u-legend .u-series:not(:first-child) .u-label')).map((l) => l.textContent),
        gaps: Array.from(card.querySelectorAll('.gap-chip')).map((g) => g.textContent),
      })),
    );
    expect(charts).toEqual([
      // Most recently seen first: SP-T00002's last frame is the newest.
      { serial: b, channels: ['temperature', 'battery_voltage', 'humidity'], canvases: 3, labels: ['Temperature (°C)', 'Battery voltage (V)', 'Humidity (%RH)'], gaps: [`frames ${expected.lost2[0]}–${expected.lost2[1]} · 3 lost, power loss`] },
      { serial: a, channels: ['temperature', 'battery'], canvases: 2, labels: ['Temperature (°C)', 'Battery (%)'], gaps: ['frames 19–22 · 4 lost, outbox overflow'] },
    ]);
    const latest = await page.textContent(`[data-serial="${a}"] figure[data-channel="battery"] .latest`);
    expect(latest).toBe(`${nf.format(expected.battery1)} %`);

    // Everything came from the server itself.
    expect(external).toEqual([]);
    expect(new Set(local)).toEqual(
      new Set([
        '/',
        '/dashboard/style.css',
        '/dashboard/app.js',
        '/dashboard/icon.svg',
        '/v1/session',
        '/v1/devices',
        '/v1/fleet',
        `/v1/devices/${a}/readings`,
        `/v1/devices/${a}/gaps`,
        `/v1/devices/${b}/readings`,
        `/v1/devices/${b}/gaps`,
      ]),
    );
    // The reload kept the session: signed in from sessionStorage, no form.
    expect(await page.textContent('#who-name')).toBe('dashboard-test');
    expect(await page.isHidden('#signin')).toBe(true);
    expect(problems).toEqual([]);

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'dashboard.png'), fullPage: true });
  });

  it('takes a token from the #token= fragment and leaves none in the address', async () => {
    const tab = await browser.context.newPage();
    try {
      local.length = 0;
      await tab.goto(`${url}/?range=7d#token=${token}`);
      await tab.waitForSelector('body[data-loaded="true"]');
      expect(tab.url()).toBe(`${url}/?range=7d`);
      expect(await tab.evaluate(() => location.href)).not.toContain('spt_');
      expect(await tab.evaluate(() => sessionStorage.getItem('sealpost.token'))).toBe(token);
      expect(await tab.textContent('#who-name')).toBe('dashboard-test');
      expect(await tab.locator('#devices tbody tr').count()).toBe(4);
    } finally {
      await tab.close();
    }
  });

  it('signs out on a 401 (a revoked token) with a message, and on the sign-out button', async () => {
    const other = await createToken(storage, 'dashboard-short', 'read');
    const tab = await browser.context.newPage();
    try {
      await tab.goto(`${url}/#token=${other.token}`);
      await tab.waitForSelector('body[data-loaded="true"]');
      await revokeToken(storage, 'dashboard-short');
      await tab.selectOption('#range', '6h'); // refreshes now
      await tab.waitForSelector('#signin:not([hidden])');
      expect(await tab.textContent('#signin-message')).toMatch(/^Signed out: the token is not valid/);
      expect(await tab.evaluate(() => sessionStorage.getItem('sealpost.token'))).toBeNull();
      expect(await tab.isHidden('#data')).toBe(true);
      expect(await tab.textContent('#devices')).toBe('');

      await tab.fill('#token-input', token);
      await tab.click('#signin-button');
      await tab.waitForSelector('body[data-loaded="true"]');
      await tab.click('#signout');
      await tab.waitForSelector('#signin:not([hidden])');
      expect(await tab.textContent('#signin-message')).toBe('Signed out. The token is forgotten in this tab.');
      expect(await tab.evaluate(() => sessionStorage.getItem('sealpost.token'))).toBeNull();
      expect(await tab.textContent('#charts')).toBe('');
    } finally {
      await tab.close();
    }
  });

  it('serves the page with a content security policy and revalidates assets by ETag', async () => {
    const r = await fetch(`${url}/`);
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await r.text()).toContain('<meta name="sealpost-refresh" content="10">');
    const js = await fetch(`${url}/dashboard/app.js`);
    const etag = js.headers.get('etag')!;
    expect((await fetch(`${url}/dashboard/app.js`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await fetch(`${url}/dashboard/nope.js`)).status).toBe(404);
  });

  it('is on by default and can be turned off or tuned in the config, with checked settings', async () => {
    const off = await buildServer({ config: checkConfig({ dashboard: false, log_level: 'silent' }), ingestKeys: [fleet.ingest.privateFile], storage, logger: false });
    expect((await off.inject({ url: '/' })).statusCode).toBe(404);
    await off.close();
    const tuned = await buildServer({ config: checkConfig({ dashboard: { refresh_seconds: 30 } }), ingestKeys: [fleet.ingest.privateFile], storage, logger: false });
    expect((await tuned.inject({ url: '/' })).body).toContain('content="30"');
    await tuned.close();
    expect(() => checkConfig({ dashboard: { refresh: 5 } }, '/', 'sealpost.json')).toThrow(
      'sealpost.json: dashboard has an unknown setting "refresh" (known: enabled, refresh_seconds)',
    );
    expect(() => checkConfig({ dashboard: { refresh_seconds: 1 } }, '/', 'sealpost.json')).toThrow('sealpost.json: dashboard.refresh_seconds must be a whole number from 2 to 3600, got 1');
    expect(() => checkConfig({ dashboard: 'yes' }, '/', 'sealpost.json')).toThrow('sealpost.json: dashboard must be false (no dashboard), true, or an object');
  });
});
