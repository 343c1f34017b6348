// Key files, manifests and configs on disk, as an operator would have them.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKeyFile } from '../../protocol/index.js';
import type { Fleet } from './server.js';

export interface FleetFiles {
  dir: string;
  ingestKey: string;
  ingestPub: string;
  factoryPub: string;
  manifest: string;
  db: string;
}

export function writeFleetFiles(fleet: Fleet, dir = mkdtempSync(join(tmpdir(), 'sealpost-ops-'))): FleetFiles {
  const f: FleetFiles = {
    dir,
    ingestKey: join(dir, `${fleet.ingest.privateFile.id}.key`),
    ingestPub: join(dir, `${fleet.ingest.publicFile.id}.pub`),
    factoryPub: join(dir, `${fleet.factory.publicFile.id}.pub`),
    manifest: join(dir, `${fleet.batch}.manifest.json`),
    db: join(dir, 'sealpost.db'),
  };
  writeFileSync(f.ingestKey, encodeKeyFile(fleet.ingest.privateFile), { mode: 0o600 });
  chmodSync(f.ingestKey, 0o600);
  writeFileSync(f.ingestPub, encodeKeyFile(fleet.ingest.publicFile));
  writeFileSync(f.factoryPub, encodeKeyFile(fleet.factory.publicFile));
  writeFileSync(f.manifest, fleet.manifest);
  return f;
}

export function writeConfig(dir: string, config: Record<string, unknown>, name = 'sealpost.json'): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

const BIN = new URL('../../bin/sealpost.mjs', import.meta.url).pathname;

/** A `sealpost server` process and where it listens. */
export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** How it ended: the signal, or `exit CODE: ` and the end of its stderr. */
  exited: Promise<string>;
  stderr: string[];
}

/**
 * Runs `node bin/sealpost.mjs server --config FILE` and resolves once it
 * prints where it listens (log_level info or lower); its request logs are
 * drained from then on. Rejects if it exits first or takes over `timeoutMs`.
 */
export function startServerProcess(config: string, timeoutMs: number): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, 'server', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (c) => stderr.push(String(c)));
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? `exit ${code}: ${stderr.join('').slice(-2000)}`)));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr.join('')}`)), timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => reject(new Error(`server exited (${code ?? signal}) before listening: ${stderr.join('')}`));
    child.on('exit', onExit);
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeListener('exit', onExit);
      child.stdout!.removeAllListeners('data');
      child.stdout!.resume(); // keep draining the request logs
      resolve({ child, url: m[1]!, exited, stderr });
    });
  });
}
