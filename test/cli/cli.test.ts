// The `sealpost` command line: the command table, usage errors (exit 2 and the
// usage) for every command, the demo, check-bundle, and the entry
// bin/sealpost.mjs as a real process (build/, exit codes, a missing build).
// Commands run in-process (test/helpers/cli.ts) unless the test is about the
// process itself.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../cli/main.js';
import { openStorage } from '../../server/index.js';
import { TokenVerifier } from '../../server/auth/tokens.js';
import { sealpost } from '../helpers/cli.js';

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
  it('lists its commands (bin/sealpost.mjs runs the compiled build/)', () => {
    const r = run('help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: sealpost COMMAND/);
    expect(r.stdout).toContain('demo');
    expect(r.stdout).toContain('check-bundle');
  });

  it('a usage error is exit code 2 of the process, with the usage on stderr', () => {
    const r = run('server', '--bogus');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`sealpost server: unknown option --bogus\nusage: ${COMMANDS.server!.usage}\n`);
  });

  it('without build/ it says to run npm run build and exits 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealpost-nobuild-'));
    mkdirSync(join(dir, 'bin'));
    copyFileSync(BIN, join(dir, 'bin', 'sealpost.mjs'));
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'sealpost.mjs'), 'help'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${join(dir, 'build', 'cli', 'main.js')} is missing: run npm run build in ${dir}/ first`);
  });

  it('refuses an unknown command with exit code 2 and the usage', async () => {
    const r = await sealpost('frobnicate');
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown command "frobnicate"');
    expect(r.err).toContain('usage: sealpost COMMAND');
    const help = await sealpost('help', 'frobnicate');
    expect(help.code).toBe(2);
    expect(help.err).toContain('sealpost help: unknown command "frobnicate"');
  });

  it('COMMAND --help and sealpost help COMMAND print the usage, and the options where the table explains them', async () => {
    const a = await sealpost('sim', '--help');
    const b = await sealpost('help', 'sim');
    expect(a).toEqual(b);
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/^usage: sealpost sim --server URL/);
    expect(a.out).toContain('--fail-rate R       share of uploads that fail on purpose');
    const keys = (await sealpost('keys', '-h')).out;
    expect(keys).toBe(`usage: sealpost keys init --dir DIR\n       sealpost keys renew --keys DIR\n\n${COMMANDS.keys!.summary}\n\n${COMMANDS.keys!.help}`);
    expect(keys).toContain('renew --keys DIR  in the key set DIR');
  });
});

describe('usage errors: every command, exit 2, `sealpost CMD: what was wrong` and the usage', () => {
  const db = join(tmpdir(), 'sealpost-usage-never-created.db');
  // A missing required argument (or a missing value) for each command of the table.
  const missing: Record<string, [string[], string]> = {
    keys: [['init'], '--dir is required'],
    info: [[], 'which file? give a device file'],
    provision: [['--serials', 'SP-1-SP-2'], '--board is required'],
    flash: [['--port', 'tcp://127.0.0.1:9'], '--device is required'],
    server: [['--tls-cert', 'cert.pem'], '--tls-cert and --tls-key go together'],
    registry: [['import', '--db', db], 'registry import needs the MANIFEST'],
    token: [['create', '--name', 'x', '--db', db], 'say which role: --role read'],
    'relay-key': [['new'], 'say whose key it is: sealpost relay-key new NAME'],
    sim: [['--devices', '3'], '--server URL is required'],
    fleet: [['status'], '--server URL is required'],
    demo: [['--port'], '--port needs a value'],
    'check-bundle': [[], 'which bundles? name one or more FILE.js'],
    version: [['now'], 'unexpected argument "now"'],
  };

  it('covers every command of the table', () => {
    expect(Object.keys(missing).sort()).toEqual(Object.keys(COMMANDS).sort());
  });

  for (const [name, command] of Object.entries(COMMANDS)) {
    it(`${name}: a bogus option, and a missing argument`, async () => {
      const bogus = await sealpost(name, '--bogus', 'x');
      expect(bogus.code).toBe(2);
      expect(bogus.out).toBe('');
      expect(bogus.err.split('\n')[0]).toBe(`sealpost ${name}: unknown option --bogus`);
      expect(bogus.err).toContain(`\nusage: ${command.usage}`);

      const [args, message] = missing[name]!;
      const r = await sealpost(name, ...args);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err.split('\n')[0]).toContain(`sealpost ${name}: ${message}`);
      expect(r.err).toContain(`\nusage: ${command.usage}`);
      expect(existsSync(db)).toBe(false);
    });
  }

  it('a value that looks like an option, a value given to a switch, a bad number: each names the option', async () => {
    const value = await sealpost('keys', 'init', '--dir', '--json');
    expect(value.err.split('\n')[0]).toBe('sealpost keys: --dir needs a value, got the option --json (write --dir=--json if that is the value)');
    const flag = await sealpost('registry', 'list', '--json=yes', '--db', db);
    expect(flag.err.split('\n')[0]).toBe('sealpost registry: --json takes no value');
    const level = await sealpost('server', '--log-level', 'loud');
    expect(level.code).toBe(2);
    expect(level.err.split('\n')[0]).toBe('sealpost server: --log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"');
    const listen = await sealpost('server', '--listen', 'localhost');
    expect(listen.code).toBe(2);
    expect(listen.err.split('\n')[0]).toContain('--listen must be HOST:PORT');
    for (const r of [value, flag]) expect(r.code).toBe(2);
  });
});

/** Runs the demo as a real process (the compiled build, as an installed package runs it) and, while it runs, fetches its pages. */
function demoProcess(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; pages: Record<string, { status: number; type: string | null }> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'demo', ...args]);
    let stdout = '';
    let stderr = '';
    let fetching: Promise<Record<string, { status: number; type: string | null }>> | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const base = /^ingest server on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)?.[1];
      if (base && !fetching) {
        fetching = (async () => {
          const pages: Record<string, { status: number; type: string | null }> = {};
          for (const path of ['/', '/dashboard/app.js', '/dashboard/style.css', '/relay', '/relay/app.js']) {
            const r = await fetch(base + path);
            await r.arrayBuffer();
            pages[path] = { status: r.status, type: r.headers.get('content-type') };
          }
          return pages;
        })();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', async (status) => resolve({ status, stdout, stderr, pages: fetching ? await fetching.catch((e: Error) => ({ [e.message]: { status: 0, type: null } })) : {} }));
  });
}

describe('sealpost demo', () => {
  it('demo: keys, devices, a real server on SQLite, its pages, a read token in the dashboard URL, the relayed fleet, and a summary of what reached the database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealpost-demo-'));
    const r = await demoProcess(['--dir', dir, '--devices', '2', '--port', '0', '--duration', '4', '--speed', '3']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/dashboard: {2}http:\/\/127\.0\.0\.1:\d+\//);
    expect(r.stdout).toMatch(/registry: imported batch SIM-/);
    // The pages are bundled at run time from build/ (server/dashboard/, relay/web/ compiled and copied there).
    expect(r.pages).toEqual({
      '/': { status: 200, type: 'text/html; charset=utf-8' },
      '/dashboard/app.js': { status: 200, type: 'text/javascript; charset=utf-8' },
      '/dashboard/style.css': { status: 200, type: 'text/css; charset=utf-8' },
      '/relay': { status: 200, type: 'text/html; charset=utf-8' },
      '/relay/app.js': { status: 200, type: 'text/javascript; charset=utf-8' },
    });
    const m = /summary: 2 devices, (\d+) frames stored, (\d+) readings, (\d+) gaps \((\d+) frames lost\), 2 devices in the registry/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(20);
    expect(Number(m![2])).toBeGreaterThan(10);
    expect(existsSync(join(dir, 'sealpost.db'))).toBe(true);
    const first = await demoToken(r.stdout, join(dir, 'sealpost.db'));
    // A second run adds a new batch to the same registry and keys, with a new token in place of the first.
    const again = await sealpost('demo', '--dir', dir, '--devices', '1', '--port', '0', '--duration', '2', '--speed', '3');
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/summary: 1 devices, \d+ frames stored, \d+ readings, \d+ gaps \(\d+ frames lost\), 3 devices in the registry/);
    expect(again.out).toContain(`read token "demo" (replaces the previous run's): spt_`);
    expect(await demoToken(again.out, join(dir, 'sealpost.db'))).not.toBe(first);
    const storage = await openStorage(join(dir, 'sealpost.db'));
    try {
      expect(await new TokenVerifier(storage).verify(first)).toBeUndefined();
    } finally {
      await storage.close();
    }
  });

  it('demo: bad arguments name the argument and what is expected', async () => {
    const zero = await sealpost('demo', '--devices', '0');
    expect(zero.code).toBe(2);
    expect(zero.err).toContain('--devices must be a whole number from 1 to 200, got "0"');
    expect(zero.err).toContain(`usage: ${COMMANDS.demo!.usage}`);
    const word = await sealpost('demo', '--port', 'many');
    expect(word.err).toContain('--port must be a whole number from 0 to 65535, got "many"');
    const unknown = await sealpost('demo', '--colour', 'red');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown option --colour/);
  });
});

describe('sealpost check-bundle', () => {
  it('exit 0 for a clean bundle; exit 2 and what to do for one that cannot be read', async () => {
    const ok = await sealpost('check-bundle', new URL('../../dist/crypto-selftest.js', import.meta.url).pathname);
    expect(ok.code).toBe(0);
    const missing = await sealpost('check-bundle', '/nonexistent/bundle.js');
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('cannot read /nonexistent/bundle.js');
    expect(missing.err).toContain('name a bundle that npm run build wrote (dist/*.js)');
  });
});
