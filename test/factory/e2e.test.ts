// Opt-in end to end: `sealpost flash` through the real espruino CLI to
// Espruino's Linux build running the real firmware bundle. Runs only when
// ESPRUINO_BIN names that binary (built by hand outside this repository, see
// README "Checking a bundle on Espruino by hand"); needs dist/espruino-linux.js
// (npm run build). The Linux build listens for the CLI on telnet port 2323
// and keeps its Storage in ./espruino.flash, so it runs in a temporary
// directory and starts with an empty Storage.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { boardProfile } from '../../boards/index.js';
import { provisionBatch } from '../../factory/provision.js';
import { parseSerialRange } from '../../factory/serials.js';
import { makeKeys, tempDir, removeTempDirs } from '../fixtures/factory/setup.js';
import { sealpost } from '../helpers/cli.js';

afterAll(removeTempDirs);

const BIN = process.env.ESPRUINO_BIN;
const BUNDLE = new URL('../../dist/espruino-linux.js', import.meta.url).pathname;
const TELNET = 2323;

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe.skipIf(!BIN)('sealpost flash to Espruino for Linux (ESPRUINO_BIN)', () => {
  let espruino: ChildProcess | undefined;
  afterAll(() => {
    // The Linux build polls its telnet server in a busy loop: stop it at once.
    espruino?.kill('SIGKILL');
  });

  it('flashes a device, confirms its key, and refuses to flash it again', async () => {
    expect(existsSync(BUNDLE), `${BUNDLE} is missing: run npm run build first`).toBe(true);
    expect(await portOpen(TELNET), `something already listens on port ${TELNET}`).toBe(false);
    const cwd = tempDir('espruino-linux');
    // stdin stays an open pipe: the interpreter's REPL reads it.
    espruino = spawn(BIN!, ['--telnet'], { cwd, stdio: ['pipe', 'ignore', 'ignore'] });
    for (let i = 0; i < 100 && !(await portOpen(TELNET)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await portOpen(TELNET), 'Espruino did not open its telnet port').toBe(true);

    const keys = makeKeys();
    const out = tempDir('e2e-out');
    const range = parseSerialRange('SL-000001-SL-000002');
    const batch = await provisionBatch({ out, batch: 'linux', board: boardProfile('espruino-linux'), range, ingest: keys.ingestPub, factory: keys.factoryPriv });
    const kcv = (JSON.parse(readFileSync(join(batch.batchDir, 'kcv.json'), 'utf8')) as { devices: Record<string, string> }).devices;
    const device = (serial: string) => join(batch.batchDir, 'devices', `${serial}.dev`);
    const port = `tcp://127.0.0.1:${TELNET}`;

    const first = await sealpost('flash', '--port', port, '--device', device('SL-000001'), '--firmware', BUNDLE);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toContain('step 1/5 connect and check the device: ok (LINUX 2v29)');
    expect(first.out).toContain('step 3/5 write sealpost.ctr: ok');
    expect(first.out).toContain(`step 5/5 restart the device and check its key: ok (serial SL-000001, kcv ${kcv['SL-000001']}, firmware `);

    // The firmware has reserved counters in sealpost.ctr: a second flash must not recreate it.
    const second = await sealpost('flash', '--port', port, '--device', device('SL-000002'), '--firmware', BUNDLE);
    expect(second.code).toBe(1);
    expect(second.err).toMatch(/step 1\/5 \(connect and check the device\) failed: sealpost\.ctr on the device already holds counter records/);
  }, 120_000);
});
