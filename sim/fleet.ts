// A fleet of simulated devices provisioned the way the factory does it
// (docs/protocol.md sections 8 to 10), for `sealpost sim` and the chaos test:
// per device HPKE provisioning against the ingest PUBLIC key, the device
// secret file, and one batch manifest signed with the factory key for
// `sealpost registry import`. No ingest private key is needed here.
import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BoardProfile } from '../boards/types.js';
import { VirtualClock } from '../hal/sim/clock.js';
import { SimDevice, type SimDeviceOptions } from './device.js';
import {
  encodeDeviceFile,
  encodeKeyFile,
  encodeManifest,
  newFactoryKey,
  newIngestKey,
  parseKeyFile,
  provisionDevice,
  signManifest,
  toHex,
  type KeyFile,
  type KeyKind,
} from '../protocol/index.js';

export interface SimFleetOptions {
  count: number;
  ingestPublic: KeyFile;
  factoryPrivate: KeyFile;
  clock: VirtualClock;
  profile: BoardProfile;
  /** Batch id; serials are `${prefix}${n}`, n zero-padded to 4 digits. */
  batch: string;
  prefix: string;
  seed: number;
  radio?: SimDeviceOptions['radio'];
  /** ISO 8601; default now. */
  created?: string;
}

export interface SimFleet {
  batch: string;
  devices: SimDevice[];
  serials: string[];
  /** The signed manifest, as `sealpost registry import` reads it. */
  manifest: string;
}

export function makeSimFleet(o: SimFleetOptions): SimFleet {
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > 10_000) throw new RangeError(`device count must be 1..10000, got ${o.count}`);
  if (o.ingestPublic.kind !== 'ingest-public') throw new TypeError(`ingestPublic must be an ingest-public key, got ${o.ingestPublic.kind}`);
  const serials: string[] = [];
  const devices: SimDevice[] = [];
  const rows: { serial: string; enc: string }[] = [];
  for (let i = 1; i <= o.count; i++) {
    const serial = `${o.prefix}${String(i).padStart(4, '0')}`;
    const p = provisionDevice(o.ingestPublic.key, serial);
    const deviceFile = encodeDeviceFile({ serial, frameSize: o.profile.frameSize, sealKey: p.sealKey, nonceSalt: p.nonceSalt });
    devices.push(
      new SimDevice({ clock: o.clock, profile: o.profile, deviceFile, seed: o.seed * 10_007 + i, ...(o.radio ? { radio: o.radio } : {}) }),
    );
    serials.push(serial);
    rows.push({ serial, enc: toHex(p.enc) });
  }
  const manifest = encodeManifest(
    signManifest(
      {
        batch: o.batch,
        created: o.created ?? new Date().toISOString(),
        board: o.profile.id,
        frame_size: o.profile.frameSize,
        ingest_key_id: o.ingestPublic.id,
        devices: rows,
      },
      o.factoryPrivate,
    ),
  );
  return { batch: o.batch, devices, serials, manifest };
}

/**
 * Sampling moments a device sealed: its sample records (type 0x01) that share
 * a power-up and an uptime are one moment (docs/protocol.md section 5.1).
 */
export function sampleMoments(sim: SimDevice): number {
  const moments = new Set<string>();
  for (const f of sim.sealedLog) if (f.plaintext[0] === 1) moments.add(`${f.power}/${(f.plaintext[2]! << 16) | (f.plaintext[3]! << 8) | f.plaintext[4]!}`);
  return moments.size;
}

export interface FleetKeys {
  dir: string;
  ingestPublic: KeyFile;
  factoryPrivate: KeyFile;
  /** Paths of the four files when this call created them; undefined when they were there already. */
  created: { ingestPrivate: string; ingestPublic: string; factoryPrivate: string; factoryPublic: string } | undefined;
  /** The files the server needs, when present in the directory. */
  ingestPrivatePath: string | undefined;
  factoryPublicPath: string | undefined;
}

const KIND_TAGS: Record<string, KeyKind> = {
  'sealpost-ingest-private-key': 'ingest-private',
  'sealpost-ingest-public-key': 'ingest-public',
  'sealpost-factory-private-key': 'factory-private',
  'sealpost-factory-public-key': 'factory-public',
};

/** Key files in `dir` by kind (any file name: a key file says what it is). */
function scanKeys(dir: string): Map<KeyKind, { path: string; file: KeyFile }[]> {
  const found = new Map<KeyKind, { path: string; file: KeyFile }[]>();
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    let text: string;
    try {
      if (!statSync(path).isFile() || statSync(path).size > 4096) continue;
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    let kind: KeyKind | undefined;
    try {
      kind = KIND_TAGS[String((JSON.parse(text) as { kind?: unknown }).kind)];
    } catch {
      continue;
    }
    if (!kind) continue;
    const file = parseKeyFile(text, kind, path);
    const list = found.get(kind) ?? [];
    list.push({ path, file });
    found.set(kind, list);
  }
  return found;
}

/**
 * The ingest public key and factory private key in `dir` (as written by
 * `sealpost keys init` or by this function). A directory without key files
 * gets a new key set, named like `sealpost keys init` names them.
 */
export function loadOrCreateKeys(dir: string): FleetKeys {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  let found = scanKeys(root);
  let created: FleetKeys['created'];
  if (found.size === 0) {
    const ingest = newIngestKey();
    const factory = newFactoryKey();
    created = {
      ingestPrivate: join(root, `ingest-${ingest.privateFile.id}.key`),
      ingestPublic: join(root, `ingest-${ingest.publicFile.id}.pub`),
      factoryPrivate: join(root, `factory-${factory.privateFile.id}.key`),
      factoryPublic: join(root, `factory-${factory.publicFile.id}.pub`),
    };
    for (const [path, file, mode] of [
      [created.ingestPrivate, ingest.privateFile, 0o600],
      [created.ingestPublic, ingest.publicFile, 0o644],
      [created.factoryPrivate, factory.privateFile, 0o600],
      [created.factoryPublic, factory.publicFile, 0o644],
    ] as const) {
      if (existsSync(path)) throw new Error(`${path} exists already; nothing was overwritten`);
      writeFileSync(path, encodeKeyFile(file), { mode, flag: 'wx' });
    }
    found = scanKeys(root);
  }
  const one = (kind: KeyKind, what: string) => {
    const list = found.get(kind) ?? [];
    if (list.length === 0) throw new Error(`${root} has no ${what} key file (${kind}); give a directory made by \`sealpost keys init\`, or an empty one for a new key set`);
    if (list.length > 1) throw new Error(`${root} has ${list.length} ${kind} key files (${list.map((k) => k.path).join(', ')}); keep one key set per directory`);
    return list[0]!;
  };
  const ingestPublic = one('ingest-public', 'ingest public');
  const factoryPrivate = one('factory-private', 'factory private');
  const ingestPrivate = found.get('ingest-private')?.find((k) => k.file.id === ingestPublic.file.id);
  const factoryPublic = found.get('factory-public')?.find((k) => k.file.id === factoryPrivate.file.id);
  return {
    dir: root,
    ingestPublic: ingestPublic.file,
    factoryPrivate: factoryPrivate.file,
    created,
    ingestPrivatePath: ingestPrivate?.path,
    factoryPublicPath: factoryPublic?.path,
  };
}
