import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

const BIN = new URL('../bin/sealpost.mjs', import.meta.url).pathname;
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

  it('demo: every frame opens on the server side and every ack verifies on the device', () => {
    const r = run('demo', '--devices', '3', '--frames', '10');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('backend native-ccm');
    expect(r.stdout).toContain('backend native-aes');
    expect(r.stdout).toContain('backend plain-js');
    expect(r.stdout).toMatch(/summary {6}3 devices, 30 of 30 frames opened by the server, 3 acks verified by devices, 3 tampered frames rejected/);
  });

  it('demo: bad arguments name the argument and what is expected', () => {
    const zero = run('demo', '--devices', '0');
    expect(zero.status).toBe(1);
    expect(zero.stderr).toContain('--devices expects a whole number from 1 to 1000, got "0"');
    const word = run('demo', '--frames', 'many');
    expect(word.stderr).toContain('--frames expects a whole number from 1 to 100000, got "many"');
    const unknown = run('demo', '--colour', 'red');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/Unknown option '--colour'/);
  });

  it('check-bundle: exit 1 and file:line:column for a construct the interpreter rejects', () => {
    const ok = run('check-bundle', new URL('../dist/crypto-selftest.js', import.meta.url).pathname);
    expect(ok.status).toBe(0);
    const missing = run('check-bundle', '/nonexistent/bundle.js');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('cannot read /nonexistent/bundle.js');
  });
});
