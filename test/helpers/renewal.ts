// Key renewal fixtures: a key set made by `keys init` / `keys renew` (factory/keyfiles.ts), devices
// provisioned from it, and a device side that renews with protocol/renewal.ts alone (the firmware of
// issue #17 item 3 is not built yet): it reads ANNOUNCE from a downlink, derives with SetupPSKS,
// seals the five REKEY frames, verifies RENEW_ACK, and commits at the next counter block.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  deviceRenew,
  encodeAnchor,
  encodeSample,
  joinAnnounceWrites,
  parseKeyFile,
  provisionDevice,
  rekeyPlaintexts,
  sealFrame,
  verifyAck,
  verifyAnnounce,
  verifyRenewAck,
  type DeviceKeys,
  type KeyFile,
  type ProvisionedDevice,
} from '../../protocol/index.js';
import { initKeys, renewKeys, type KeySetPaths } from '../../factory/keyfiles.js';
import { manifestFor, type Fleet } from './server.js';

export interface RenewalFleet extends Fleet {
  dir: string;
  paths: KeySetPaths;
  renewalPublic: KeyFile;
  /** Ingest private key files by epoch (0: the factory's). */
  ingestKeyFiles: string[];
  renew(): { epoch: number; ingestKeyFile: string; ingestPrivate: KeyFile };
}

const load = (path: string, kind: KeyFile['kind']) => parseKeyFile(readFileSync(path, 'utf8'), kind, path);

export function makeRenewalFleet(count: number, prefix = 'SP-R'): RenewalFleet {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-renewal-'));
  const paths = initKeys(dir);
  const ingestPrivate = load(paths.ingestPrivate, 'ingest-private');
  const ingestPublic = load(paths.ingestPublic, 'ingest-public');
  const factory = { privateFile: load(paths.factoryPrivate, 'factory-private'), publicFile: load(paths.factoryPublic, 'factory-public') };
  const devices = Array.from({ length: count }, (_, i) => provisionDevice(ingestPublic.key, `${prefix}${String(i + 1).padStart(5, '0')}`));
  const fleet: RenewalFleet = {
    ingest: { privateFile: ingestPrivate, publicFile: ingestPublic },
    factory,
    devices,
    frameSize: 20,
    batch: 'B-R001',
    manifest: '',
    dir,
    paths,
    renewalPublic: load(paths.renewalPublic, 'renewal-public'),
    ingestKeyFiles: [paths.ingestPrivate],
    renew() {
      const r = renewKeys(dir);
      fleet.ingestKeyFiles.push(r.ingestPrivate);
      return { epoch: r.epoch, ingestKeyFile: r.ingestPrivate, ingestPrivate: load(r.ingestPrivate, 'ingest-private') };
    },
  };
  fleet.manifest = manifestFor(fleet, devices, fleet.batch, 20, 'puckjs');
  return fleet;
}

export const announceFiles = (dir: string): string[] => readdirSync(dir).filter((n) => /^announce-\d{8}\.bin$/.test(n));

/** puckjs's counter block (boards/puckjs.ts): c_e is the first counter of the next block. */
export const BLOCK = 16384;

export interface Pending {
  epoch: number;
  enc: Uint8Array;
  keys: DeviceKeys & { chain: Uint8Array };
  rekey: Uint8Array[];
}

/** A device that seals with protocol/ and renews with protocol/renewal.ts. */
export class RenewingDevice {
  counter = 0;
  epoch = 0;
  keys: DeviceKeys;
  oldKeys: DeviceKeys | undefined;
  chain: Uint8Array;
  commitCounter = 0;
  pending: Pending | undefined;
  readonly pt = new Uint8Array(8);

  constructor(
    readonly device: ProvisionedDevice,
    readonly fleet: RenewalFleet,
  ) {
    this.keys = { sealKey: device.sealKey, nonceSalt: device.nonceSalt };
    this.chain = device.chain;
  }
  get serial(): string {
    return this.device.serial;
  }
  seal(plaintext: Uint8Array, keys = this.keys): Uint8Array {
    this.counter++;
    return sealFrame(keys, this.counter, plaintext, 20);
  }
  anchor(boot = 1, uptime = 10, reason = 0): Uint8Array {
    encodeAnchor(this.pt, boot, uptime, reason);
    return this.seal(this.pt.slice());
  }
  sample(value: number, uptime = 20): Uint8Array {
    encodeSample(this.pt, 1, uptime, [{ channel: 1, value }], 0);
    return this.seal(this.pt.slice());
  }
  /** ANNOUNCE from a downlink (writes of 20 bytes among others): verify and start the renewal; its five REKEY frames. */
  announce(downlink: Uint8Array[]): Uint8Array[] {
    const bytes = joinAnnounceWrites(downlink.filter((w) => w.length === 20));
    const a = verifyAnnounce(bytes, { renewalPublicKey: this.fleet.renewalPublic.key, fleetId: this.fleet.renewalPublic.fleetId!, currentEpoch: this.epoch });
    const r = deviceRenew({ serial: this.serial, fromEpoch: this.epoch, toEpoch: a.epoch, chain: this.chain }, a.ingestPublicKey, new Uint8Array(randomBytes(32)));
    this.pending = { epoch: a.epoch, enc: r.enc, keys: r, rekey: [] };
    return this.resendRekey();
  }
  /** The REKEY frames of the pending renewal (new counters, the same enc: what a device does after a power cut). */
  resendRekey(): Uint8Array[] {
    const p = this.pending!;
    p.rekey = rekeyPlaintexts(p.epoch, p.enc, 20).map((pt) => this.seal(pt));
    return p.rekey;
  }
  /** RENEW_ACK among the writes: verified under the new keys, then COMMIT at the next block. True when it committed. */
  renewAck(downlink: Uint8Array[]): boolean {
    const p = this.pending;
    if (!p) return false;
    const ack = downlink.find((w) => w.length === 16);
    if (!ack || !verifyRenewAck(p.keys, p.epoch, ack)) return false;
    this.oldKeys = this.keys;
    this.keys = { sealKey: p.keys.sealKey, nonceSalt: p.keys.nonceSalt };
    this.chain = p.keys.chain;
    this.epoch = p.epoch;
    this.commitCounter = Math.ceil(this.counter / BLOCK) * BLOCK + 1;
    this.counter = this.commitCounter - 1;
    this.pending = undefined;
    return true;
  }
  /** The ack's N when it verifies under the key of N's epoch (below c_e the old key), else undefined. */
  ack(ack: Uint8Array): number | undefined {
    const n = new DataView(ack.buffer, ack.byteOffset).getUint32(0);
    const use = this.commitCounter > 0 && n < this.commitCounter ? this.oldKeys! : this.keys;
    try {
      return verifyAck(use, ack);
    } catch {
      return undefined;
    }
  }
}

export const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
