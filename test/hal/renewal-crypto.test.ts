// hal/plain/renewal-crypto.ts (the simulator's renewal crypto) on test/vectors/renewal.json, and the
// firmware's derivation through it: a sim device whose random source yields a vector's ikm, told by an
// ANNOUNCE signed with the vector's renewal key, seals REKEY frames carrying exactly the vector's enc.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { plainRenewalCrypto } from '../../hal/plain/renewal-crypto.js';
import { announceWrites, encodeDeviceFile } from '../../protocol/index.js';
import type { RenewalVectors } from '../vectors/generate.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { SimDevice } from '../../sim/device.js';
import { boardProfile } from '../../boards/index.js';

const v = JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as RenewalVectors;
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const CONTEXT = Buffer.from('sealpost/v1 announce');

describe('plain renewal crypto (hal/plain/renewal-crypto.ts)', () => {
  const c = plainRenewalCrypto();

  it('SetupPSKS with the ikm as DeriveKeyPair input gives every derivation vector: enc, seal key, nonce salt, chain', () => {
    expect(v.derivation.length).toBeGreaterThan(2);
    for (const d of v.derivation) {
      const out = c.setupPskS(hex(d.ingest_public_key), hex(d.info), hex(d.psk), hex(d.psk_id), hex(d.ikm));
      expect(toHex(out)).toBe(d.enc + d.seal_key + d.nonce_salt + d.chain);
    }
  });

  it('verifies the ANNOUNCE vectors and refuses any flipped bit, a small-order key and wrong lengths', () => {
    for (const a of v.announce) {
      const bytes = hex(a.announce);
      const msg = new Uint8Array(Buffer.concat([CONTEXT, bytes.subarray(0, 44)]));
      const pk = hex(a.renewal_public_key);
      expect(c.verify(pk, msg, bytes.subarray(44))).toBe(true);
      for (const bit of [0, 100, 351, 352 + 5, 352 + 511]) {
        const m = msg.slice();
        const s = bytes.slice(44);
        if (bit < m.length * 8 && bit < 352) m[CONTEXT.length + (bit >> 3)]! ^= 1 << (bit & 7);
        else s[(bit - 352) >> 3]! ^= 1 << (bit & 7);
        expect(c.verify(pk, m, s)).toBe(false);
      }
      expect(c.verify(pk.subarray(0, 31), msg, bytes.subarray(44))).toBe(false);
      expect(c.verify(pk, msg, bytes.subarray(44, 107))).toBe(false);
    }
    // The identity point (small order): any "signature" under it would be meaningless.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    expect(c.verify(identity, new Uint8Array(1), new Uint8Array(64))).toBe(false);
  });

  it('refuses an all-zero recipient key with an error saying why, and passes the random source through', () => {
    const d = v.derivation[0]!;
    expect(() => c.setupPskS(new Uint8Array(32), hex(d.info), hex(d.psk), hex(d.psk_id), hex(d.ikm))).toThrow(/SetupPSKS refused its inputs/);
    expect(Number.isInteger(c.hwRand()) && c.hwRand() >= 0 && c.hwRand() <= 0xffffffff).toBe(true);
    const failing = plainRenewalCrypto({
      hwRand: () => {
        throw new Error('E.hwRand failed');
      },
    });
    expect(() => failing.hwRand()).toThrow('E.hwRand failed');
  });
});

describe('the firmware derives as the vectors say', () => {
  for (const d of v.derivation.filter((x) => x.from_epoch === 0)) {
    it(`${d.serial}, epoch 0 -> ${d.to_epoch}: the REKEY frames carry the vector's enc`, () => {
      const a = v.announce[0]!;
      const seed = hex(a.renewal_seed);
      const fleet = hex(a.fleet_id);
      const body = new Uint8Array(44);
      body.set([0x5a, 1], 0);
      body.set(fleet, 2);
      new DataView(body.buffer).setUint32(6, d.to_epoch);
      body.set(hex(d.ingest_public_key), 10);
      const announce = new Uint8Array(108);
      announce.set(body);
      announce.set(ed25519.sign(new Uint8Array(Buffer.concat([CONTEXT, body])), seed), 44);
      const file = encodeDeviceFile({
        serial: d.serial,
        frameSize: 20,
        sealKey: new Uint8Array(16).fill(7),
        nonceSalt: new Uint8Array(8).fill(9),
        renewal: { fleetId: fleet, renewalPublicKey: hex(a.renewal_public_key), chain: hex(d.psk) },
      });
      const ikm = hex(d.ikm);
      let w = 0;
      const clock = new VirtualClock();
      const sim = new SimDevice({ clock, profile: boardProfile('sim'), deviceFile: file, seed: 1, hwRand: () => new DataView(ikm.buffer).getUint32(4 * w++) });
      sim.boot();
      const link = sim.radio!.connect(() => undefined);
      for (const x of announceWrites(announce)) link.writeAck(x);
      expect(w).toBe(8);
      const rekey = sim.sealedLog.filter((f) => f.plaintext[0]! >= 0x30 && f.plaintext[0]! <= 0x34);
      expect(rekey.length).toBe(5);
      const payload = Buffer.concat(rekey.map((f) => Buffer.from(f.plaintext.subarray(1, 8))));
      expect(payload.readUInt16BE(0)).toBe(d.to_epoch & 0xffff);
      expect(payload.subarray(2, 34).toString('hex')).toBe(d.enc);
      expect(payload[34]).toBe(0);
    });
  }
});
