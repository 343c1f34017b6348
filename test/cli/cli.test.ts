import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStorage } from '../../server/index.js';
import { TokenVerifier } from '../../server/tokens.js';

/** The token in the dashboard URL a demo run printed, checked against the demo's database. */
async function demoToken(stdout: string, db: string): Promise<string> {
  const m = /^dashboard: {2}http:\/\/127\.0\.0\.1:\d+\/#token=(spt_[A-Za-z0-9_-]{43})$/m.exec(stdout);
  expect(m, stdout).not.toBeNull();
  const storage = await openStorage(db);
  try {
    expect(await new TokenVerifier(storage).verify(m![1]!)).toEqual({ name: 'demo', role: 'read' });
  } finally {
    await storage.close();
  }
  return m![1]!;
}

const BIN = new URL('../../bin/sealpost.mjs', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('sealpost command line', () => {
  it('lists its commands', () => {
    const r = run('help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: sealpost COMMAND/);
    expect(r.stdout).toContain('demo');
    expect(r.stdout).toContain('check-bundle');
  });

  it('refuses an unknown command with exit code 2 and the usage', () => {
    const r = run('frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    expect(r.stderr).toContain('usage: sealpost COMMAND');
  });

  it('demo: keys, devices, a real server on SQLite, a read token in the dashboard URL, the relayed fleet, and a summary of what reached the database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealpost-demo-'));
    const r = run('demo', '--dir', dir, '--devices', '2', '--port', '0', '--duration', '4', '--speed', '3');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/dashboard: {2}http:\/\/127\.0\.0\.1:\d+\//);
    expect(r.stdout).toMatch(/registry: imported batch SIM-/);
    const m = /summary: 2 devices, (\d+) frames stored, (\d+) readings, (\d+) gaps \((\d+) frames lost\), 2 devices in the registry/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(20);
    expect(Number(m![2])).toBeGreaterThan(10);
    expect(existsSync(join(dir, 'sealpost.db'))).toBe(true);
    const first = await demoToken(r.stdout, join(dir, 'sealpost.db'));
    // A second run adds a new batch to the same registry and keys, with a new token in place of the first.
    const again = run('demo', '--dir', dir, '--devices', '1', '--port', '0', '--duration', '2', '--speed', '3');
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/summary: 1 devices, \d+ frames stored, \d+ readings, \d+ gaps \(\d+ frames lost\), 3 devices in the registry/);
    expect(again.stdout).toContain(`read token "demo" (replaces the previous run's): spt_`);
    expect(await demoToken(again.stdout, join(dir, 'sealpost.db'))).not.toBe(first);
    const storage = await openStorage(join(dir, 'sealpost.db'));
    try {
      expect(await new TokenVerifier(storage).verify(first)).toBeUndefined();
    } finally {
      await storage.close();
    }
  });

  it('demo: bad arguments name the argument and what is expected', () => {
    const zero = run('demo', '--devices', '0');
    expect(zero.status).toBe(1);
    expect(zero.stderr).toContain('--devices expects a whole number from 1 to 200, got "0"');
    const word = run('demo', '--port', 'many');
    expect(word.stderr).toContain('--port expects a whole number from 0 to 65535, got "many"');
    const unknown = run('demo', '--colour', 'red');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/Unknown option '--colour'/);
  });

  it('check-bundle: exit 1 and file:line:column for a construct the interpreter rejects', () => {
    const ok = run('check-bundle', new URL('../../dist/crypto-selftest.js', import.meta.url).pathname);
    expect(ok.status).toBe(0);
    const missing = run('check-bundle', '/nonexistent/bundle.js');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('cannot read /nonexistent/bundle.js');
  });
});
