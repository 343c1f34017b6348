// Key renewal, the derivation and messages (protocol/renewal.ts, docs/protocol.md section 12): HPKE PSK mode
// against RFC 9180 appendix A.1.2, and every vector of test/vectors/renewal.json sections derivation, rekey
// and renew_ack recomputed with an independent HPKE key schedule (node:crypto HMAC and X25519, not noble)
// and an independent CCM (test/reference/ccm.ts on @noble/ciphers' AES).
import { describe, expect, it } from 'vitest';
import { createHmac, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  AEAD_AES_128_GCM,
  ArgumentError,
  deviceRenew,
  joinRekeyParts,
  makeRenewAck,
  openFrame,
  rekeyPart,
  rekeyPlaintexts,
  serverRenew,
  setupPskR,
  setupPskS,
  verifyRenewAck,
} from '../../protocol/index.js';
import { referenceCcm } from '../reference/ccm.js';
import type { RenewalVectors } from '../vectors/generate.js';
import { hex, toHex } from '../helpers/vectors.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as RenewalVectors;

// RFC 9180 appendix A.1.2: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, PSK mode (transcribed from the RFC).
const A12 = {
  info: '4f6465206f6e2061204772656369616e2055726e',
  skEm: '463426a9ffb42bb17dbe6044b9abd1d4e4d95f9041cef0e99d7824eef2b6f588',
  pkRm: '9fed7e8c17387560e92cc6462a68049657246a09bfa8ade7aefe589672016366',
  skRm: 'c5eb01eb457fe6c6f57577c5413b931550a162c71a03ac8d196babbd4e5ce0fd',
  psk: '0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82',
  psk_id: '456e6e796e20447572696e206172616e204d6f726961',
  enc: '0ad0950d9fb9588e59690b74f1237ecdf1d775cd60be2eca57af5a4b0471c91b',
  exports: [
    ['', 'dff17af354c8b41673567db6259fd6029967b4e1aad13023c2ae5df8f4f43bf6'],
    ['00', '6a847261d8207fe596befb52928463881ab493da345b10e1dcc645e3b94e2d95'],
    ['54657374436f6e74657874', '8aff52b45a1be3a734bc7a41e20b4e055ad4c4d22104b0c20285a7c4302401cd'],
  ],
};

describe('HPKE PSK mode against RFC 9180 appendix A.1.2', () => {
  const psk = { psk: hex(A12.psk), pskId: hex(A12.psk_id) };
  it('SetupPSKS gives enc and the exported values', () => {
    const { enc, context } = setupPskS(hex(A12.pkRm), hex(A12.info), psk, { aeadId: AEAD_AES_128_GCM, ephemeralPrivateKey: hex(A12.skEm) });
    expect(toHex(enc)).toBe(A12.enc);
    for (const [ctx, value] of A12.exports) expect(toHex(context.export(hex(ctx!), 32))).toBe(value);
  });
  it('SetupPSKR gives the same exported values, and other values with another psk or psk_id', () => {
    const context = setupPskR(hex(A12.enc), hex(A12.skRm), hex(A12.info), psk, { aeadId: AEAD_AES_128_GCM });
    for (const [ctx, value] of A12.exports) expect(toHex(context.export(hex(ctx!), 32))).toBe(value);
    const otherPsk = hex(A12.psk);
    otherPsk[0] ^= 1;
    expect(toHex(setupPskR(hex(A12.enc), hex(A12.skRm), hex(A12.info), { psk: otherPsk, pskId: psk.pskId }, { aeadId: AEAD_AES_128_GCM }).export(new Uint8Array(0), 32))).not.toBe(A12.exports[0]![1]);
    expect(toHex(setupPskR(hex(A12.enc), hex(A12.skRm), hex(A12.info), { psk: psk.psk, pskId: hex('00') }, { aeadId: AEAD_AES_128_GCM }).export(new Uint8Array(0), 32))).not.toBe(A12.exports[0]![1]);
  });
  it('refuses an empty psk_id and a psk under 32 bytes (RFC 9180 sections 5.1.2 and 9.5)', () => {
    expect(() => setupPskR(hex(A12.enc), hex(A12.skRm), hex(A12.info), { psk: psk.psk, pskId: new Uint8Array(0) })).toThrow(/pskId must not be empty/);
    expect(() => setupPskR(hex(A12.enc), hex(A12.skRm), hex(A12.info), { psk: psk.psk.subarray(0, 31), pskId: psk.pskId })).toThrow(/psk expected at least 32 bytes, got 31/);
  });
});

// An independent RFC 9180 PSK-mode export-only key schedule: node:crypto HMAC-SHA256 and X25519.
const utf8 = (s: string) => Buffer.from(s, 'utf8');
const hmac = (key: Uint8Array, data: Uint8Array) => createHmac('sha256', key).update(data).digest();
const extract = (salt: Uint8Array, ikm: Uint8Array) => hmac(salt.length ? salt : Buffer.alloc(32), ikm);
function expand(prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  const out: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let i = 1; Buffer.concat(out).length < length; i++) out.push((t = hmac(prk, Buffer.concat([t, info, Buffer.of(i)]))));
  return Buffer.concat(out).subarray(0, length);
}
const u16 = (n: number) => Buffer.of(n >> 8, n & 255);
const KEM = Buffer.concat([utf8('KEM'), u16(0x20)]);
const SUITE = Buffer.concat([utf8('HPKE'), u16(0x20), u16(1), u16(0xffff)]);
const lExtract = (suite: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array) => extract(salt, Buffer.concat([utf8('HPKE-v1'), suite, utf8(label), ikm]));
const lExpand = (suite: Buffer, prk: Uint8Array, label: string, info: Uint8Array, n: number) => expand(prk, Buffer.concat([u16(n), utf8('HPKE-v1'), suite, utf8(label), info]), n);
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const x25519 = (sk: Uint8Array, pk: Uint8Array) =>
  diffieHellman({ privateKey: createPrivateKey({ key: Buffer.concat([X25519_PKCS8, sk]), format: 'der', type: 'pkcs8' }), publicKey: createPublicKey({ key: Buffer.concat([X25519_SPKI, pk]), format: 'der', type: 'spki' }) });
const x25519Public = (sk: Uint8Array) => createPublicKey(createPrivateKey({ key: Buffer.concat([X25519_PKCS8, sk]), format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' }).subarray(12);

function independentRenewal(v: RenewalVectors['derivation'][number]) {
  const skE = lExpand(KEM, lExtract(KEM, Buffer.alloc(0), 'dkp_prk', hex(v.ikm)), 'sk', Buffer.alloc(0), 32);
  const enc = x25519Public(skE);
  const pkR = x25519Public(hex(v.ingest_private_key));
  const dh = x25519(skE, pkR);
  const shared = lExpand(KEM, lExtract(KEM, Buffer.alloc(0), 'eae_prk', dh), 'shared_secret', Buffer.concat([enc, pkR]), 32);
  const info = Buffer.concat([utf8(`sealpost/v1 renew ${v.serial}`), Buffer.from([v.to_epoch >>> 24, (v.to_epoch >>> 16) & 255, (v.to_epoch >>> 8) & 255, v.to_epoch & 255])]);
  const pskId = Buffer.concat([utf8('sealpost/v1 chain'), Buffer.from([v.from_epoch >>> 24, (v.from_epoch >>> 16) & 255, (v.from_epoch >>> 8) & 255, v.from_epoch & 255])]);
  const context = Buffer.concat([Buffer.of(1), lExtract(SUITE, Buffer.alloc(0), 'psk_id_hash', pskId), lExtract(SUITE, Buffer.alloc(0), 'info_hash', info)]);
  const secret = lExtract(SUITE, shared, 'secret', hex(v.psk));
  const exporter = lExpand(SUITE, secret, 'exp', context, 32);
  const exp = (label: string, n: number) => toHex(lExpand(SUITE, exporter, 'sec', utf8(label), n));
  return { skE: toHex(skE), enc: toHex(enc), pkR: toHex(pkR), info: toHex(info), pskId: toHex(pskId), sealKey: exp('sealpost/v1 seal key', 16), nonceSalt: exp('sealpost/v1 nonce salt', 8), chain: exp('sealpost/v1 chain', 32) };
}

describe('renewal derivation (test/vectors/renewal.json section derivation)', () => {
  it('covers a first renewal, a second chained on it, a jump over epochs and the last 32-bit epoch', () => {
    expect(vectors.derivation.map((v) => [v.from_epoch, v.to_epoch])).toEqual([[0, 1], [1, 2], [0, 3], [0, 0xffffffff]]);
    expect(vectors.derivation[1]!.psk).toBe(vectors.derivation[0]!.chain);
    for (const d of vectors.derivation.filter((x) => x.from_epoch === 0)) expect(d.psk).toBe(vectors.provision.find((p) => p.serial === d.serial)!.chain_0);
  });
  for (const v of vectors.derivation) {
    it(`${v.serial} ${v.from_epoch} -> ${v.to_epoch}: an independent key schedule, the device and the server all agree`, () => {
      const ind = independentRenewal(v);
      expect([ind.skE, ind.enc, ind.pkR, ind.info, ind.pskId]).toEqual([v.ephemeral_private_key, v.enc, v.ingest_public_key, v.info, v.psk_id]);
      expect([ind.sealKey, ind.nonceSalt, ind.chain]).toEqual([v.seal_key, v.nonce_salt, v.chain]);
      const step = { serial: v.serial, fromEpoch: v.from_epoch, toEpoch: v.to_epoch, chain: hex(v.psk) };
      const dev = deviceRenew(step, hex(v.ingest_public_key), hex(v.ikm));
      expect([toHex(dev.enc), toHex(dev.sealKey), toHex(dev.nonceSalt), toHex(dev.chain)]).toEqual([v.enc, v.seal_key, v.nonce_salt, v.chain]);
      const srv = serverRenew(step, hex(v.ingest_private_key), hex(v.enc));
      expect([toHex(srv.sealKey), toHex(srv.nonceSalt), toHex(srv.chain)]).toEqual([v.seal_key, v.nonce_salt, v.chain]);
    });
  }
  it('binds serial, both epochs and the chain secret: changing any one gives other keys', () => {
    const v = vectors.derivation[0]!;
    const step = { serial: v.serial, fromEpoch: v.from_epoch, toEpoch: v.to_epoch, chain: hex(v.psk) };
    const sk = hex(v.ingest_private_key);
    const enc = hex(v.enc);
    const chain = hex(v.psk);
    chain[31] ^= 0x80;
    for (const other of [{ ...step, serial: 'SP-000009' }, { ...step, toEpoch: 2 }, { ...step, fromEpoch: 0, toEpoch: 1, chain }]) {
      expect(toHex(serverRenew(other, sk, enc).sealKey)).not.toBe(v.seal_key);
    }
  });
  it('refuses a small-order enc, a bad epoch order and a short chain with errors that say what is wrong', () => {
    const v = vectors.derivation[0]!;
    const step = { serial: v.serial, fromEpoch: 0, toEpoch: 1, chain: hex(v.psk) };
    expect(() => serverRenew(step, hex(v.ingest_private_key), new Uint8Array(32))).toThrow(ArgumentError);
    expect(() => serverRenew({ ...step, fromEpoch: 1, toEpoch: 1 }, hex(v.ingest_private_key), hex(v.enc))).toThrow(/toEpoch expected 2\.\./);
    expect(() => deviceRenew({ ...step, chain: new Uint8Array(16) }, hex(v.ingest_public_key), hex(v.ikm))).toThrow(/chain expected 32 bytes, got 16/);
  });
});

describe('REKEY frames (section rekey)', () => {
  for (const v of vectors.rekey) {
    it(`epoch ${v.epoch}, frame size ${v.frame_size}: plaintexts 0x30+i || 7 bytes of epoch_lo16 || enc || 00, sealed under the current keys`, () => {
      const payload = [(v.epoch >>> 8) & 255, v.epoch & 255].map((b) => b.toString(16).padStart(2, '0')).join('') + v.enc + '00';
      expect(v.plaintexts.length).toBe(5);
      v.plaintexts.forEach((p, i) => {
        expect(p).toBe((0x30 + i).toString(16) + payload.slice(14 * i, 14 * i + 14) + '00'.repeat(v.frame_size - 12 - 8));
      });
      expect(rekeyPlaintexts(v.epoch, hex(v.enc), v.frame_size).map((p) => toHex(p))).toEqual(v.plaintexts);
      const keys = { sealKey: hex(v.seal_key), nonceSalt: hex(v.nonce_salt) };
      v.frames.forEach((f, i) => {
        const counter = v.counters[i]!;
        const nonce = Buffer.concat([hex(v.nonce_salt), Buffer.from([counter >>> 24, (counter >>> 16) & 255, (counter >>> 8) & 255, counter & 255]), Buffer.of(1)]);
        const ref = referenceCcm(keys.sealKey, nonce, new Uint8Array(0), hex(v.plaintexts[i]!), 8);
        expect(f).toBe(toHex(nonce.subarray(8, 12)) + toHex(ref.ciphertext) + toHex(ref.tag));
        expect(toHex(openFrame(keys, hex(f), v.frame_size).plaintext)).toBe(v.plaintexts[i]);
      });
      const parts: (Uint8Array | undefined)[] = [];
      for (const p of [...v.plaintexts].reverse()) {
        const part = rekeyPart(hex(p))!;
        parts[part.index] = part.bytes;
      }
      expect(joinRekeyParts(parts)).toEqual({ epochLo16: v.epoch & 0xffff, enc: hex(v.enc) });
    });
  }
  it('a part with nonzero padding or another type is not a part; a missing part or a nonzero last byte is refused', () => {
    const v = vectors.rekey.find((x) => x.frame_size > 20)!;
    const p = hex(v.plaintexts[0]!);
    p[p.length - 1] = 1;
    expect(rekeyPart(p)).toBeUndefined();
    expect(rekeyPart(hex('35' + v.plaintexts[0]!.slice(2)))).toBeUndefined();
    expect(rekeyPart(hex('2f' + v.plaintexts[0]!.slice(2)))).toBeUndefined();
    const parts = v.plaintexts.map((x) => rekeyPart(hex(x))!.bytes);
    expect(() => joinRekeyParts([parts[0], parts[1], undefined, parts[3], undefined])).toThrow(/lack REKEY parts 2, 4 of 5/);
    parts[4]![6] = 7;
    expect(() => joinRekeyParts(parts)).toThrow(/nonzero byte/);
  });
  it('needs frames of at least 20 bytes', () => {
    expect(() => rekeyPlaintexts(1, hex(vectors.rekey[0]!.enc), 19)).toThrow(/REKEY frame needs 8/);
  });
});

describe('RENEW_ACK (section renew_ack)', () => {
  for (const v of vectors.renew_ack) {
    it(`epoch ${v.epoch}: 0xC5 || epoch || 000000 || CCM tag under the new keys with nonce nonce_salt_e || epoch || 0x03`, () => {
      expect(v.nonce).toBe(v.nonce_salt + v.epoch.toString(16).padStart(8, '0') + '03');
      expect(hex(v.nonce).length).toBe(13);
      const keys = { sealKey: hex(v.seal_key), nonceSalt: hex(v.nonce_salt) };
      const ref = referenceCcm(keys.sealKey, hex(v.nonce), new Uint8Array(0), new Uint8Array(0), 8);
      expect(v.renew_ack).toBe('c5' + v.epoch.toString(16).padStart(8, '0') + '000000' + toHex(ref.tag));
      expect(toHex(makeRenewAck(keys, v.epoch))).toBe(v.renew_ack);
      expect(verifyRenewAck(keys, v.epoch, hex(v.renew_ack))).toBe(true);
    });
  }
  it('fails with any bit flipped, for another epoch, under the old keys, from another device, or truncated', () => {
    const [a, b] = vectors.renew_ack;
    const keys = { sealKey: hex(a!.seal_key), nonceSalt: hex(a!.nonce_salt) };
    const bytes = hex(a!.renew_ack);
    for (let i = 0; i < bytes.length * 8; i++) {
      const c = bytes.slice();
      c[i >> 3] ^= 1 << (i & 7);
      expect(verifyRenewAck(keys, a!.epoch, c)).toBe(false);
    }
    expect(verifyRenewAck(keys, a!.epoch + 1, bytes)).toBe(false);
    const old = vectors.rekey[0]!;
    expect(verifyRenewAck({ sealKey: hex(old.seal_key), nonceSalt: hex(old.nonce_salt) }, a!.epoch, bytes)).toBe(false);
    expect(verifyRenewAck(keys, b!.epoch, hex(b!.renew_ack))).toBe(false);
    expect(verifyRenewAck(keys, a!.epoch, bytes.subarray(0, 15))).toBe(false);
  });
});
