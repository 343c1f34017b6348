// Headless Chromium for browser tests: Debian's chromium (path in
// SEALPOST_TEST_CHROMIUM, set by vitest.config.ts and .ci/run) driven by
// playwright-core, with a fresh profile directory that is removed on close.
// With `webBluetooth`, Chromium's own Web Bluetooth behind
// --enable-experimental-web-platform-features (without it navigator.bluetooth
// is undefined on Linux), and the Browser object, whose CDP session is the one
// that answers BluetoothEmulation (test/helpers/bluetooth-emulation.ts).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface Chromium {
  context: BrowserContext;
  /** Only with `webBluetooth` (a persistent context has no Browser object). */
  browser?: Browser;
  close(): Promise<void>;
}

export async function launchChromium(options: { width?: number; height?: number; webBluetooth?: boolean } = {}): Promise<Chromium> {
  const executablePath = process.env.SEALPOST_TEST_CHROMIUM;
  if (!executablePath || !existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${JSON.stringify(executablePath)}: install Debian's chromium package or set SEALPOST_TEST_CHROMIUM to its path`);
  }
  const page = { viewport: { width: options.width ?? 1280, height: options.height ?? 900 }, deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'UTC' };
  if (options.webBluetooth) {
    const browser = await chromium.launch({ executablePath, headless: true, args: [...ARGS, '--enable-experimental-web-platform-features'] });
    try {
      const context = await browser.newContext(page);
      return { context, browser, close: () => browser.close().catch(() => undefined) };
    } catch (e) {
      await browser.close().catch(() => undefined);
      throw e;
    }
  }
  const profile = mkdtempSync(join(tmpdir(), 'sealpost-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: ARGS,
      ...page,
    });
    return {
      context,
      close: async () => {
        await context.close().catch(() => undefined);
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
}
