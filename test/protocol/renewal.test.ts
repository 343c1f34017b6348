// Key renewal, item 1 (issue #17): ANNOUNCE bytes, its six writes and its checks; renewal key files with
// their fleet id; device file format 2 with chain_0 (and format 1 still read); test/vectors/renewal.json
// checked with an independent Ed25519 (node:crypto) and an independent HPKE sender (factory/sender.ts).
import { describe, expect, it } from 'vitest';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  ANNOUNCE_LEN,
  announceWrites,
  ArgumentError,
  decodeDeviceFile,
  encodeDeviceFile,
  encodeKeyFile,
  joinAnnounceWrites,
  keyId,
  makeAnnounce,
  newFactoryKey,
  newIngestKey,
  newRenewalKey,
  parseKeyFile,
  provisionDevice,
  signManifest,
  verifyAnnounce,
  verifyManifest,
  type KeyFile,
} from '../../protocol/index.js';
import { createSender } from '../../factory/sender.js';
import type { RenewalVectors } from '../vectors/generate.js';
import { hex, toHex } from '../helpers/vectors.js';
import { readFileSync } from 'node:fs';

const vectors = JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as RenewalVectors;
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

function keyOf(v: RenewalVectors['announce'][number]): KeyFile {
  return { kind: 'renewal-private', id: keyId('rk', hex(v.renewal_public_key)), key: hex(v.renewal_seed), fleetId: hex(v.fleet_id) };
}
const checkOf = (v: RenewalVectors['announce'][number], currentEpoch = 0) => ({ renewalPublicKey: hex(v.renewal_public_key), fleetId: hex(v.fleet_id), currentEpoch });

describe('ANNOUNCE (test/vectors/renewal.json)', () => {
  it('has the layout of the design brief and a signature that node:crypto verifies too', () => {
    expect(vectors.announce.length).toBe(4);
    for (const v of vectors.announce) {
      const bytes = hex(v.announce);
      expect(bytes.length).toBe(108);
      expect(v.announce.slice(0, 4)).toBe('5a01');
      expect(v.announce.slice(4, 12)).toBe(v.fleet_id);
      expect(parseInt(v.announce.slice(12, 20), 16)).toBe(v.epoch);
      expect(v.announce.slice(20, 84)).toBe(v.ingest_public_key);
      expect(v.announce.slice(84, 88)).toBe('0000');
      expect(toHex(ed25519.getPublicKey(hex(v.renewal_seed)))).toBe(v.renewal_public_key);
      const message = Buffer.concat([Buffer.from('sealpost/v1 announce'), bytes.subarray(0, 44)]);
      const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI, hex(v.renewal_public_key)]), format: 'der', type: 'spki' });
      expect(nodeVerify(null, message, key, bytes.subarray(44))).toBe(true);
      expect(toHex(makeAnnounce(keyOf(v), v.epoch, hex(v.ingest_public_key)))).toBe(v.announce);
      const got = verifyAnnounce(bytes, checkOf(v));
      expect({ epoch: got.epoch, pk: toHex(got.ingestPublicKey), fleet: toHex(got.fleetId), flags: got.flags }).toEqual({ epoch: v.epoch, pk: v.ingest_public_key, fleet: v.fleet_id, flags: 0 });
    }
  });

  it('travels as six writes 0xB0|i || 19 bytes, the last zero-padded', () => {
    for (const v of vectors.announce) {
      expect(v.writes.map((w) => w.length)).toEqual([40, 40, 40, 40, 40, 40]);
      v.writes.forEach((w, i) => expect(w.slice(0, 2)).toBe((0xb0 | i).toString(16)));
      expect(v.writes.map((w) => w.slice(2)).join('').slice(0, 216)).toBe(v.announce);
      expect(v.writes[5]!.slice(-12)).toBe('000000000000');
      expect(announceWrites(hex(v.announce)).map((w) => toHex(w))).toEqual(v.writes);
    }
  });

  it('reassembles from writes in any order, duplicated, with junk among them', () => {
    const v = vectors.announce[0]!;
    const writes = v.writes.map(hex);
    const junk = [new Uint8Array(20).fill(0xb9), hex('b0'), new Uint8Array(12), hex('c5' + '00'.repeat(15))];
    const shuffled = [writes[4]!, junk[0]!, writes[2]!, writes[0]!, junk[1]!, writes[5]!, writes[2]!, writes[1]!, junk[2]!, writes[3]!, junk[3]!, writes[4]!];
    expect(toHex(joinAnnounceWrites(shuffled))).toBe(v.announce);
  });

  it('refuses writes that are truncated, mixed from two announcements, or padded with nonzero bytes', () => {
    const [a, b] = vectors.announce.map((v) => v.writes.map(hex));
    expect(() => joinAnnounceWrites(a!.slice(0, 5))).toThrow('writes lack part 5 of 6');
    expect(() => joinAnnounceWrites([a![0]!, a![1]!])).toThrow('writes lack parts 2, 3, 4, 5 of 6');
    expect(() => joinAnnounceWrites([...a!, b![3]!])).toThrow('writes[6] is a second, different part 3: the parts come from two announcements');
    const padded = a![5]!.slice();
    padded[19] = 1;
    expect(() => joinAnnounceWrites([...a!.slice(0, 5), padded])).toThrow('writes part 5 has a nonzero pad after byte 108');
    // Parts of two announcements that happen not to collide still fail the signature.
    const mixed = joinAnnounceWrites([...a!.slice(0, 3), ...b!.slice(3)]);
    expect(() => verifyAnnounce(mixed, checkOf(vectors.announce[0]!))).toThrow(/signature does not verify/);
  });

  it('is refused with any single bit flipped', () => {
    for (const v of vectors.announce) {
      const bytes = hex(v.announce);
      // Every bit of the first vector; one bit per byte (rotating) of the others, to keep the test short.
      const bits = v === vectors.announce[0] ? ANNOUNCE_LEN * 8 : ANNOUNCE_LEN;
      for (let n = 0; n < bits; n++) {
        const bad = bytes.slice();
        const byte = v === vectors.announce[0] ? n >> 3 : n;
        bad[byte]! ^= 1 << (v === vectors.announce[0] ? n & 7 : n % 8);
        expect(() => verifyAnnounce(bad, checkOf(v))).toThrow(ArgumentError);
      }
    }
  });

  it('is refused for another fleet, for an epoch not above the current one, and under any key but the renewal key', () => {
    const v = vectors.announce[1]!; // epoch 2
    const bytes = hex(v.announce);
    expect(() => verifyAnnounce(bytes, { ...checkOf(v), fleetId: hex('5ea10002') })).toThrow('announce is for fleet 5ea10001, not this fleet 5ea10002');
    expect(() => verifyAnnounce(bytes, checkOf(v, 2))).toThrow('announce is for epoch 2, not above the current epoch 2: an old announcement replayed');
    expect(() => verifyAnnounce(bytes, checkOf(v, 7))).toThrow(/epoch 2, not above the current epoch 7/);
    expect(verifyAnnounce(bytes, checkOf(v, 1)).epoch).toBe(2);

    const fleetId = hex(v.fleet_id);
    const factory = newFactoryKey().privateFile;
    const random = { kind: 'renewal-private', id: 'rk-0', key: ed25519.utils.randomSecretKey(), fleetId } as KeyFile;
    const asRenewal = { ...factory, kind: 'renewal-private', fleetId } as KeyFile;
    for (const signer of [asRenewal, random]) {
      const forged = makeAnnounce(signer, 3, hex(v.ingest_public_key));
      expect(() => verifyAnnounce(forged, checkOf(v))).toThrow('announce signature does not verify with the renewal key: it was altered or signed by another key');
    }
    expect(() => makeAnnounce(factory, 3, hex(v.ingest_public_key))).toThrow('renewalKey expected a renewal-private key, got factory-private');
  });

  it('is refused with flags or the reserved byte set, even when properly signed', () => {
    const v = vectors.announce[0]!;
    for (const at of [42, 43]) {
      const body = hex(v.announce).slice(0, 44);
      body[at] = 1;
      const sig = ed25519.sign(Buffer.concat([Buffer.from('sealpost/v1 announce'), body]), hex(v.renewal_seed));
      const bytes = new Uint8Array([...body, ...sig]);
      expect(() => verifyAnnounce(bytes, checkOf(v))).toThrow(/this version knows neither \(both must be 0\)/);
    }
  });

  it('checks its arguments and names them', () => {
    const v = vectors.announce[0]!;
    const key = keyOf(v);
    const pk = hex(v.ingest_public_key);
    expect(() => makeAnnounce(key, 0, pk)).toThrow('epoch expected 1..4294967295, got 0');
    expect(() => makeAnnounce(key, 2 ** 32, pk)).toThrow('epoch expected 1..4294967295, got 4294967296');
    expect(() => makeAnnounce(key, 1, pk.subarray(1))).toThrow('ingestPublicKey expected 32 bytes, got 31');
    expect(() => makeAnnounce({ ...key, fleetId: undefined }, 1, pk)).toThrow('renewalKey.fleetId expected a Uint8Array, got undefined');
    expect(() => verifyAnnounce(hex(v.announce).subarray(1), checkOf(v))).toThrow('announce expected 108 bytes, got 107');
    expect(() => verifyAnnounce(hex(v.announce), { ...checkOf(v), fleetId: new Uint8Array(3) })).toThrow('fleetId expected 4 bytes, got 3');
    const other = hex(v.announce);
    other[0] = 0x5b;
    expect(() => verifyAnnounce(other, checkOf(v))).toThrow('announce does not start with 5a 01: not a sealpost ANNOUNCE');
    expect(() => announceWrites(new Uint8Array(100))).toThrow('announce expected 108 bytes, got 100');
  });
});

describe('renewal key files', () => {
  it('round-trip with an rk- id and the fleet id, both halves', () => {
    const r = newRenewalKey();
    expect(r.publicFile.id).toMatch(/^rk-[0-9a-f]{16}$/);
    expect(r.publicFile.fleetId!.length).toBe(4);
    const priv = parseKeyFile(encodeKeyFile(r.privateFile), 'renewal-private');
    const pub = parseKeyFile(encodeKeyFile(r.publicFile), 'renewal-public');
    expect(priv.id).toBe(pub.id);
    expect(toHex(priv.fleetId!)).toBe(toHex(pub.fleetId!));
    expect(JSON.parse(encodeKeyFile(r.publicFile))).toMatchObject({ kind: 'sealpost-renewal-public-key', id: r.publicFile.id, fleet_id: toHex(r.publicFile.fleetId!) });
    // An ANNOUNCE made from the parsed private file verifies with the parsed public one.
    const announce = makeAnnounce(priv, 1, newIngestKey().publicFile.key);
    expect(verifyAnnounce(announce, { renewalPublicKey: pub.key, fleetId: pub.fleetId!, currentEpoch: 0 }).epoch).toBe(1);
  });

  it('refuse an edited fleet id, a missing fleet id or signature, and the wrong kind', () => {
    const r = newRenewalKey();
    const text = encodeKeyFile(r.publicFile);
    const fleet = toHex(r.publicFile.fleetId!);
    const edited = text.replace(`"fleet_id": "${fleet}"`, `"fleet_id": "${fleet === '00000000' ? '00000001' : '00000000'}"`);
    expect(() => parseKeyFile(edited, 'renewal-public', 'r.pub')).toThrow(/^r\.pub has fleet_id 0000000[01], which its renewal key did not sign: the file was edited or damaged$/);
    const doc = JSON.parse(text) as Record<string, string>;
    expect(() => parseKeyFile(JSON.stringify({ ...doc, fleet_id: undefined }), 'renewal-public', 'r.pub')).toThrow('r.pub has no fleet_id (8 lowercase hex digits)');
    expect(() => parseKeyFile(JSON.stringify({ ...doc, fleet_signature: undefined }), 'renewal-public', 'r.pub')).toThrow('r.pub has no fleet_signature (128 lowercase hex digits)');
    expect(() => parseKeyFile(text, 'renewal-private', 'r.pub')).toThrow('r.pub holds a renewal-public key, expected a renewal-private key');
    expect(() => parseKeyFile(encodeKeyFile(newFactoryKey().publicFile), 'renewal-public', 'f.pub')).toThrow('f.pub holds a factory-public key, expected a renewal-public key');
  });
});

describe('device file format 2 (test/vectors/renewal.json)', () => {
  it('chain_0 of the vectors is what both HPKE senders export, and the device file holds it', () => {
    for (const v of vectors.provision) {
      const fixed = hex(v.ephemeral_private_key);
      const reference = provisionDevice(hex(v.ingest_public_key), v.serial, { ephemeralPrivateKey: fixed });
      const fast = createSender(hex(v.ingest_public_key), { ephemeralPrivateKey: () => fixed, selfCheckEvery: 1 })(v.serial);
      expect(toHex(reference.enc)).toBe(v.enc);
      expect(toHex(reference.chain)).toBe(v.chain_0);
      expect(toHex(fast.chain)).toBe(v.chain_0);
      const file = hex(v.device_file);
      const n = v.serial.length;
      expect(v.device_file.slice(0, 14)).toBe('53506401' + '02' + v.frame_size.toString(16).padStart(2, '0') + n.toString(16).padStart(2, '0'));
      expect(file.length).toBe(7 + n + 16 + 8 + 4 + 32 + 32 + 4);
      expect(toHex(file.subarray(7 + n + 24, 7 + n + 28))).toBe(v.fleet_id);
      expect(toHex(file.subarray(7 + n + 28, 7 + n + 60))).toBe(v.renewal_public_key);
      expect(toHex(file.subarray(7 + n + 60, 7 + n + 92))).toBe(v.chain_0);
      const d = decodeDeviceFile(file);
      expect(toHex(d.sealKey)).toBe(toHex(reference.sealKey));
      expect(toHex(d.renewal!.chain)).toBe(v.chain_0);
      expect(toHex(encodeDeviceFile(d))).toBe(v.device_file);
    }
  });

  it('is refused with any byte damaged, truncated or extended; format 1 still reads; format 3 does not', () => {
    const file = hex(vectors.provision[0]!.device_file);
    for (let i = 0; i < file.length; i++) {
      const bad = file.slice();
      bad[i]! ^= 0x10;
      expect(() => decodeDeviceFile(bad)).toThrow(ArgumentError);
    }
    expect(() => decodeDeviceFile(file.subarray(0, file.length - 1))).toThrow('device file is 111 bytes, expected 112 for a format-2 file with a 9-character serial');
    expect(() => decodeDeviceFile(new Uint8Array([...file, 0]))).toThrow(/is 113 bytes, expected 112/);
    const v3 = file.slice();
    v3[4] = 3;
    expect(() => decodeDeviceFile(v3)).toThrow('device file has format version 3, this software reads versions 1 and 2: use a newer sealpost');

    const d = decodeDeviceFile(file);
    const one = encodeDeviceFile({ serial: d.serial, frameSize: d.frameSize, sealKey: d.sealKey, nonceSalt: d.nonceSalt });
    expect(one[4]).toBe(1);
    expect(one.length).toBe(file.length - 68);
    expect(decodeDeviceFile(one)).toEqual({ serial: d.serial, frameSize: d.frameSize, sealKey: d.sealKey, nonceSalt: d.nonceSalt });
    expect(decodeDeviceFile(one).renewal).toBeUndefined();
  });

  it('checks the renewal fields and names them', () => {
    const d = decodeDeviceFile(hex(vectors.provision[0]!.device_file));
    const r = d.renewal!;
    expect(() => encodeDeviceFile({ ...d, renewal: { ...r, fleetId: new Uint8Array(5) } })).toThrow('renewal.fleetId expected 4 bytes, got 5');
    expect(() => encodeDeviceFile({ ...d, renewal: { ...r, renewalPublicKey: new Uint8Array(31) } })).toThrow('renewal.renewalPublicKey expected 32 bytes, got 31');
    expect(() => encodeDeviceFile({ ...d, renewal: { ...r, chain: new Uint8Array(16) } })).toThrow('renewal.chain expected 32 bytes, got 16');
  });

  it('fits the longest serial (32 characters)', () => {
    const d = decodeDeviceFile(hex(vectors.provision[0]!.device_file));
    const serial = 'S'.repeat(32);
    const file = encodeDeviceFile({ ...d, serial });
    expect(file.length).toBe(135);
    expect(decodeDeviceFile(file).serial).toBe(serial);
  });
});

describe('manifest fleet id', () => {
  const factory = newFactoryKey();
  const body = { batch: 'B-1', created: '2026-12-07T20:00:00Z', board: 'puckjs', frame_size: 20, ingest_key_id: 'ik-0123456789abcdef', devices: [{ serial: 'SP-1', enc: '00'.repeat(32) }] };

  it('is signed with the body and read back', () => {
    const text = JSON.stringify(signManifest({ ...body, fleet_id: '5ea10001' }, factory.privateFile));
    expect(verifyManifest(text, [factory.publicFile]).body.fleet_id).toBe('5ea10001');
    expect(verifyManifest(JSON.stringify(signManifest(body, factory.privateFile)), [factory.publicFile]).body.fleet_id).toBeUndefined();
  });

  it('is refused when malformed', () => {
    for (const fleet_id of ['5EA10001', '5ea1', 7, '']) {
      expect(() => signManifest({ ...body, fleet_id } as never, factory.privateFile)).toThrow('manifest fleet_id must be a fleet id of 8 lowercase hex digits, or absent');
    }
  });
});
