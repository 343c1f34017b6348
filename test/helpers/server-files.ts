// Key files, manifests and configs on disk, as an operator would have them.
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
