// Generates test/vectors/{seal,ack,provision,renewal}.json from fixed seeds, with the
// host implementation in protocol/. Run with `npm run vectors`; the tests
// check that the committed files are exactly what this script produces, and
// test/hal/ccm.test.ts re-derives every frame with an independent CCM.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  announceWrites,
  deriveKeyPair,
  encodeDeviceFile,
  keyId,
  makeAnnounce,
  makeAck,
  makeRenewAck,
  provisionDevice,
  chainPskId,
  deviceRenew,
  rekeyPlaintexts,
  renewInfo,
  renewNonce,
  serverRenew,
  sealFrame,
  toHex,
  MAX_COUNTER,
  FRAME_OVERHEAD,
  type KeyFile,
} from '../../protocol/index.js';

export interface SealVector {
  seal_key: string;
  nonce_salt: string;
  counter: number;
  frame_size: number;
  plaintext: string;
  frame: string;
}
export interface AckVector {
  seal_key: string;
  nonce_salt: string;
  counter: number;
  ack: string;
}
export interface ProvisionVector {
  ingest_private_key: string;
  ingest_public_key: string;
  serial: string;
  ephemeral_private_key: string;
  enc: string;
  seal_key: string;
  nonce_salt: string;
  kcv: string;
}

export interface AnnounceVector {
  renewal_seed: string;
  renewal_public_key: string;
  fleet_id: string;
  epoch: number;
  ingest_public_key: string;
  /** The 108-byte ANNOUNCE. */
  announce: string;
  /** The six 20-byte writes that carry it. */
  writes: string[];
}
export interface RenewalProvisionVector {
  ingest_public_key: string;
  serial: string;
  ephemeral_private_key: string;
  enc: string;
  /** chain_0 = Export("sealpost/v1 chain", 32) of the factory context. */
  chain_0: string;
  fleet_id: string;
  renewal_public_key: string;
  frame_size: number;
  /** The format-2 device file of these secrets. */
  device_file: string;
}
/** A renewal step in PSK mode with fixed randomness (device and server sides agree). */
export interface RenewalDerivationVector {
  serial: string;
  from_epoch: number;
  to_epoch: number;
  /** chain_{from_epoch}: the PSK. */
  psk: string;
  psk_id: string;
  info: string;
  /** The new epoch's ingest key pair (the ANNOUNCE carries the public half). */
  ingest_private_key: string;
  ingest_public_key: string;
  /** The 32 random bytes the device draws; DeriveKeyPair(ikm) gives the ephemeral key. */
  ikm: string;
  ephemeral_private_key: string;
  enc: string;
  seal_key: string;
  nonce_salt: string;
  /** chain_{to_epoch}. */
  chain: string;
}
/** The five REKEY frames of a renewal: plaintexts, and the frames sealed under the device's CURRENT keys. */
export interface RekeyVector {
  seal_key: string;
  nonce_salt: string;
  frame_size: number;
  epoch: number;
  enc: string;
  counters: number[];
  plaintexts: string[];
  frames: string[];
}
export interface RenewAckVector {
  /** The NEW keys of the epoch. */
  seal_key: string;
  nonce_salt: string;
  epoch: number;
  nonce: string;
  renew_ack: string;
}
export interface RenewalVectors {
  announce: AnnounceVector[];
  provision: RenewalProvisionVector[];
  derivation: RenewalDerivationVector[];
  rekey: RekeyVector[];
  renew_ack: RenewAckVector[];
}

/** Deterministic bytes: SHA-256 over a label, stretched by a block counter. */
function det(label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let block = 0; block * 32 < length; block++) {
    const digest = sha256(new TextEncoder().encode(`sealpost/v1 test vectors ${label} ${block}`));
    out.set(digest.subarray(0, Math.min(32, length - block * 32)), block * 32);
  }
  return out;
}

export const FRAME_SIZES = [13, 20, 50, 128, 244];
export const COUNTERS = [1, 2, 255, 256, 65535, 65536, 0x01000000, 0x7fffffff, 0x80000000, MAX_COUNTER];

export function sealVectors(): SealVector[] {
  const vectors: SealVector[] = [];
  let n = 0;
  for (const frameSize of FRAME_SIZES) {
    for (const counter of COUNTERS) {
      const keys = { sealKey: det(`seal key ${n % 7}`, 16), nonceSalt: det(`nonce salt ${n % 5}`, 8) };
      const plaintext = det(`plaintext ${n}`, frameSize - FRAME_OVERHEAD);
      // Real plaintexts end in zero padding; keep some of that shape.
      if (n % 3 === 0) plaintext.fill(0, Math.ceil(plaintext.length / 2));
      vectors.push({
        seal_key: toHex(keys.sealKey),
        nonce_salt: toHex(keys.nonceSalt),
        counter,
        frame_size: frameSize,
        plaintext: toHex(plaintext),
        frame: toHex(sealFrame(keys, counter, plaintext, frameSize)),
      });
      n++;
    }
  }
  return vectors;
}

export function ackVectors(): AckVector[] {
  return COUNTERS.concat([3, 1000, 4096]).map((counter, i) => {
    const keys = { sealKey: det(`ack seal key ${i}`, 16), nonceSalt: det(`ack nonce salt ${i}`, 8) };
    return { seal_key: toHex(keys.sealKey), nonce_salt: toHex(keys.nonceSalt), counter, ack: toHex(makeAck(keys, counter)) };
  });
}

const SERIALS = ['SP-000001', 'SP-000002', 'SP-999999', 'A', 'puck-7f3a', 'MDBT42Q.0001', 'bangle_2-XYZ', '0', 'sensor-01234567890123456789-abc', 'Z9', 'pixl.js-42', 'nrf52840dk-1'];

export function provisionVectors(): ProvisionVector[] {
  return SERIALS.map((serial, i) => {
    const ingest = deriveKeyPair(det(`ingest key ${i % 3}`, 32));
    const ephemeral = deriveKeyPair(det(`ephemeral key ${i}`, 32));
    const device = provisionDevice(ingest.publicKey, serial, { ephemeralPrivateKey: ephemeral.privateKey });
    return {
      ingest_private_key: toHex(ingest.privateKey),
      ingest_public_key: toHex(ingest.publicKey),
      serial,
      ephemeral_private_key: toHex(ephemeral.privateKey),
      enc: toHex(device.enc),
      seal_key: toHex(device.sealKey),
      nonce_salt: toHex(device.nonceSalt),
      kcv: toHex(device.kcv),
    };
  });
}

function renewalKey(i: number, fleetId: Uint8Array): KeyFile {
  const seed = det(`renewal key ${i}`, 32);
  return { kind: 'renewal-private', id: keyId('rk', ed25519.getPublicKey(seed)), key: seed, fleetId };
}

const ANNOUNCE_CASES = [
  { key: 0, fleet: '5e a1 00 01', epoch: 1 },
  { key: 0, fleet: '5e a1 00 01', epoch: 2 },
  { key: 1, fleet: '00 00 00 00', epoch: 1 },
  { key: 2, fleet: 'ff ff ff ff', epoch: 0xffffffff },
];

export function renewalVectors(): RenewalVectors {
  const announce = ANNOUNCE_CASES.map((c, i): AnnounceVector => {
    const fleetId = new Uint8Array(Buffer.from(c.fleet.replace(/ /g, ''), 'hex'));
    const key = renewalKey(c.key, fleetId);
    const ingest = deriveKeyPair(det(`renewed ingest key ${i}`, 32));
    const bytes = makeAnnounce(key, c.epoch, ingest.publicKey);
    return {
      renewal_seed: toHex(key.key),
      renewal_public_key: toHex(ed25519.getPublicKey(key.key)),
      fleet_id: toHex(fleetId),
      epoch: c.epoch,
      ingest_public_key: toHex(ingest.publicKey),
      announce: toHex(bytes),
      writes: announceWrites(bytes).map((w) => toHex(w)),
    };
  });
  const first = announce[0]!;
  const provision = SERIALS.slice(0, 4).map((serial, i): RenewalProvisionVector => {
    const ingest = deriveKeyPair(det(`ingest key ${i % 3}`, 32));
    const ephemeral = deriveKeyPair(det(`ephemeral key ${i}`, 32));
    const device = provisionDevice(ingest.publicKey, serial, { ephemeralPrivateKey: ephemeral.privateKey });
    const fleetId = new Uint8Array(Buffer.from(first.fleet_id, 'hex'));
    const renewalPublicKey = new Uint8Array(Buffer.from(first.renewal_public_key, 'hex'));
    const frameSize = [20, 50, 128, 244][i]!;
    const file = encodeDeviceFile({ serial, frameSize, sealKey: device.sealKey, nonceSalt: device.nonceSalt, renewal: { fleetId, renewalPublicKey, chain: device.chain } });
    return {
      ingest_public_key: toHex(ingest.publicKey),
      serial,
      ephemeral_private_key: toHex(ephemeral.privateKey),
      enc: toHex(device.enc),
      chain_0: toHex(device.chain),
      fleet_id: first.fleet_id,
      renewal_public_key: first.renewal_public_key,
      frame_size: frameSize,
      device_file: toHex(file),
    };
  });
  const derivation: RenewalDerivationVector[] = [];
  const rekey: RekeyVector[] = [];
  const renewAck: RenewAckVector[] = [];
  // Device 0 renews 0 -> 1 -> 2; device 1 jumps 0 -> 3; device 2 (a 32-bit epoch) 0 -> 2^32-1.
  const steps: { device: number; from: number; to: number; ingest: number }[] = [
    { device: 0, from: 0, to: 1, ingest: 0 },
    { device: 0, from: 1, to: 2, ingest: 1 },
    { device: 1, from: 0, to: 3, ingest: 2 },
    { device: 2, from: 0, to: 0xffffffff, ingest: 3 },
  ];
  const chains = new Map<number, { epoch: number; chain: Uint8Array; sealKey: Uint8Array; nonceSalt: Uint8Array }>();
  steps.forEach((st, i) => {
    const serial = SERIALS[st.device]!;
    const p = provision[st.device]!;
    let current = chains.get(st.device);
    if (current === undefined) {
      const ingest0 = deriveKeyPair(det(`ingest key ${st.device % 3}`, 32));
      const ephemeral0 = deriveKeyPair(det(`ephemeral key ${st.device}`, 32));
      const device0 = provisionDevice(ingest0.publicKey, serial, { ephemeralPrivateKey: ephemeral0.privateKey });
      current = { epoch: 0, chain: device0.chain, sealKey: device0.sealKey, nonceSalt: device0.nonceSalt };
    }
    if (current.epoch !== st.from) throw new Error('renewal vector steps out of order');
    const ingest = deriveKeyPair(det(`renewed ingest key ${st.ingest}`, 32));
    const ikm = det(`renewal ikm ${i}`, 32);
    const step = { serial, fromEpoch: st.from, toEpoch: st.to, chain: current.chain };
    const dev = deviceRenew(step, ingest.publicKey, ikm);
    const srv = serverRenew(step, ingest.privateKey, dev.enc);
    if (toHex(srv.sealKey) !== toHex(dev.sealKey) || toHex(srv.chain) !== toHex(dev.chain)) throw new Error('device and server renewal disagree');
    derivation.push({
      serial,
      from_epoch: st.from,
      to_epoch: st.to,
      psk: toHex(current.chain),
      psk_id: toHex(chainPskId(st.from)),
      info: toHex(renewInfo(serial, st.to)),
      ingest_private_key: toHex(ingest.privateKey),
      ingest_public_key: toHex(ingest.publicKey),
      ikm: toHex(ikm),
      ephemeral_private_key: toHex(deriveKeyPair(ikm).privateKey),
      enc: toHex(dev.enc),
      seal_key: toHex(dev.sealKey),
      nonce_salt: toHex(dev.nonceSalt),
      chain: toHex(dev.chain),
    });
    const frameSize = p.frame_size;
    const first = [17, 16385, 0xfffffff0, 1][i]!;
    const counters = [0, 1, 2, 3, 4].map((k) => first + k);
    const plaintexts = rekeyPlaintexts(st.to, dev.enc, frameSize);
    const old = { sealKey: current.sealKey, nonceSalt: current.nonceSalt };
    rekey.push({
      seal_key: toHex(old.sealKey),
      nonce_salt: toHex(old.nonceSalt),
      frame_size: frameSize,
      epoch: st.to,
      enc: toHex(dev.enc),
      counters,
      plaintexts: plaintexts.map((x) => toHex(x)),
      frames: plaintexts.map((x, k) => toHex(sealFrame(old, counters[k]!, x, frameSize))),
    });
    renewAck.push({
      seal_key: toHex(dev.sealKey),
      nonce_salt: toHex(dev.nonceSalt),
      epoch: st.to,
      nonce: toHex(renewNonce(dev.nonceSalt, st.to)),
      renew_ack: toHex(makeRenewAck(dev, st.to)),
    });
    chains.set(st.device, { epoch: st.to, chain: dev.chain, sealKey: dev.sealKey, nonceSalt: dev.nonceSalt });
  });
  return { announce, provision, derivation, rekey, renew_ack: renewAck };
}

export function renderVectors(): Record<string, string> {
  const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  return {
    'seal.json': json(sealVectors()),
    'ack.json': json(ackVectors()),
    'provision.json': json(provisionVectors()),
    'renewal.json': json(renewalVectors()),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = dirname(fileURLToPath(import.meta.url));
  for (const [name, text] of Object.entries(renderVectors())) {
    writeFileSync(join(dir, name), text);
    const doc = JSON.parse(text) as unknown[] | Record<string, unknown[]>;
    const count = Array.isArray(doc) ? doc.length : Object.values(doc).reduce((n, v) => n + v.length, 0);
    console.log(`wrote test/vectors/${name} (${count} vectors)`);
  }
}
