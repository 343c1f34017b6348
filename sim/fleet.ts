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
  keyId,
  newFactoryKey,
  newIngestKey,
  parseKeyFile,
  provisionDevice,
  signManifest,
  toHex,
  verifyAnnounce,
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
  /**
   * The fleet's renewal PUBLIC key: device files are format 2 (the devices can
   * renew) and the manifest names the fleet, as `provision --renewal-pub` does.
   * Without it, format 1: the devices keep their factory key for life.
   */
  renewalPublic?: KeyFile;
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
  const renewal = o.renewalPublic;
  if (renewal && (renewal.kind !== 'renewal-public' || !renewal.fleetId)) throw new TypeError(`renewalPublic must be a renewal-public key with its fleet id, got ${renewal.kind}`);
  const serials: string[] = [];
  const devices: SimDevice[] = [];
  const rows: { serial: string; enc: string }[] = [];
  for (let i = 1; i <= o.count; i++) {
    const serial = `${o.prefix}${String(i).padStart(4, '0')}`;
    const p = provisionDevice(o.ingestPublic.key, serial);
    const deviceFile = encodeDeviceFile({
      serial,
      frameSize: o.profile.frameSize,
      sealKey: p.sealKey,
      nonceSalt: p.nonceSalt,
      ...(renewal ? { renewal: { fleetId: renewal.fleetId!, renewalPublicKey: renewal.key, chain: p.chain } } : {}),
    });
    p.chain.fill(0);
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
        ...(renewal ? { fleet_id: toHex(renewal.fleetId!) } : {}),
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
  /** The key devices are provisioned against: the factory's (epoch 0) ingest public key. */
  ingestPublic: KeyFile;
  factoryPrivate: KeyFile;
  /** The renewal PUBLIC key when the set has one: devices get format-2 files and can renew. */
  renewalPublic: KeyFile | undefined;
  renewalPublicPath: string | undefined;
  /** Epochs announced in the set (`keys renew`): epoch and the announced ingest key id, ascending. */
  announced: { epoch: number; ingestKeyId: string; path: string }[];
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
  'sealpost-renewal-private-key': 'renewal-private',
  'sealpost-renewal-public-key': 'renewal-public',
};

/** Names `sealpost keys init` / `keys renew` give key files: such a file must read, or the set is broken. */
const KEY_FILE_NAME = /^(ingest|factory|renewal)-(ik|fk|rk)-[0-9a-f]{16}\.(key|pub)$/;
/** ANNOUNCE files of `keys renew`. */
const ANNOUNCE_FILE_NAME = /^announce-(\d{8})\.bin$/;

/**
 * Key files in `dir` by kind (any file name: a key file says what it is). A
 * file named as `keys init` names key files that cannot be read or is not a
 * key file stops here with its path: skipping it would quietly change what
 * the devices are provisioned with (format 1 instead of 2, say).
 */
function scanKeys(dir: string): Map<KeyKind, { path: string; file: KeyFile }[]> {
  const found = new Map<KeyKind, { path: string; file: KeyFile }[]>();
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const named = KEY_FILE_NAME.test(name);
    let text: string;
    try {
      if (!statSync(path).isFile() || statSync(path).size > 4096) {
        if (named) throw new Error('not a regular file of at most 4096 bytes');
        continue;
      }
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if (!named) continue;
      throw new Error(`${path} cannot be read (${(e as Error).message}); it is named as a sealpost key file: fix its permissions or restore it from the key set's copy`);
    }
    let kind: KeyKind | undefined;
    try {
      kind = KIND_TAGS[String((JSON.parse(text) as { kind?: unknown }).kind)];
    } catch {
      kind = undefined;
    }
    if (!kind) {
      if (named) throw new Error(`${path} is not a sealpost key file (no known "kind"); it is named as one: restore it from the key set's copy, or move it out of the directory`);
      continue;
    }
    const file = parseKeyFile(text, kind, path);
    const list = found.get(kind) ?? [];
    list.push({ path, file });
    found.set(kind, list);
  }
  return found;
}

/** The set's ANNOUNCE files, each verified against its renewal key (as `keys renew` does). */
function scanAnnounces(dir: string, renewal: KeyFile | undefined): FleetKeys['announced'] {
  const out: FleetKeys['announced'] = [];
  for (const name of readdirSync(dir)) {
    const m = ANNOUNCE_FILE_NAME.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    if (!renewal) throw new Error(`${path} is an ANNOUNCE of \`keys renew\`, but ${dir} has no renewal public key (renewal-rk-<id>.pub) to check it with; put the key set's renewal .pub back`);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(path));
    } catch (e) {
      throw new Error(`${path} cannot be read (${(e as Error).message})`);
    }
    let a;
    try {
      a = verifyAnnounce(bytes, { renewalPublicKey: renewal.key, fleetId: renewal.fleetId!, currentEpoch: 0 });
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}; this key set's announcements must all be signed by its renewal key ${renewal.id}`);
    }
    if (a.epoch !== Number(m[1])) throw new Error(`${path} announces epoch ${a.epoch}, not the ${Number(m[1])} its name says`);
    out.push({ epoch: a.epoch, ingestKeyId: keyId('ik', a.ingestPublicKey), path });
  }
  return out.sort((x, y) => x.epoch - y.epoch);
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
  const renewalList = found.get('renewal-public') ?? [];
  if (renewalList.length > 1) throw new Error(`${root} has ${renewalList.length} renewal public key files (${renewalList.map((k) => k.path).join(', ')}); keep one key set per directory`);
  const renewal = renewalList[0];
  const privateRenewal = found.get('renewal-private') ?? [];
  if (!renewal && privateRenewal.length > 0) throw new Error(`${root} has a renewal private key (${privateRenewal[0]!.path}) but not its public key; put the renewal-<id>.pub of \`keys init\` beside it`);
  const announced = scanAnnounces(root, renewal?.file);
  const ingestPublic = factoryIngestKey(root, found.get('ingest-public') ?? [], announced);
  const factoryPrivate = one('factory-private', 'factory private');
  const ingestPrivate = found.get('ingest-private')?.find((k) => k.file.id === ingestPublic.file.id);
  const factoryPublic = found.get('factory-public')?.find((k) => k.file.id === factoryPrivate.file.id);
  return {
    dir: root,
    ingestPublic: ingestPublic.file,
    factoryPrivate: factoryPrivate.file,
    renewalPublic: renewal?.file,
    renewalPublicPath: renewal?.path,
    announced,
    created,
    ingestPrivatePath: ingestPrivate?.path,
    factoryPublicPath: factoryPublic?.path,
  };
}

/**
 * The epoch-0 ingest public key: the only one, or after \`keys renew\` the one
 * no ANNOUNCE names. A factory provisions against it (docs/decisions.md,
 * "Sim devices that renew"); the server then announces the later epochs.
 */
function factoryIngestKey(root: string, list: { path: string; file: KeyFile }[], announced: FleetKeys['announced']): { path: string; file: KeyFile } {
  if (list.length === 0) throw new Error(`${root} has no ingest public key file (ingest-public); give a directory made by \`sealpost keys init\`, or an empty one for a new key set`);
  const announcedIds = new Set(announced.map((a) => a.ingestKeyId));
  const factory = list.filter((k) => !announcedIds.has(k.file.id));
  if (factory.length === 1) return factory[0]!;
  const paths = list.map((k) => k.path).join(', ');
  if (factory.length === 0) throw new Error(`${root}: every ingest public key (${paths}) is named by an ANNOUNCE; the epoch-0 key of \`keys init\` is missing, put its .pub back`);
  if (announced.length === 0) throw new Error(`${root} has ${list.length} ingest public key files (${paths}) and no ANNOUNCE (announce-<epoch>.bin) saying which are later epochs; keep one key set per directory, with the announce files \`keys renew\` wrote`);
  throw new Error(`${root} has ${factory.length} ingest public keys no ANNOUNCE names (${factory.map((k) => k.path).join(', ')}); only the epoch-0 key may be unannounced: keep one key set per directory`);
}
