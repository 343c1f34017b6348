// HPKE against RFC 9180 appendix A, and device provisioning (protocol/provision.ts) on top of it.
import { describe, expect, it } from 'vitest';
import {
  AEAD_AES_128_GCM,
  AEAD_EXPORT_ONLY,
  ArgumentError,
  checkSerial,
  deriveKeyPair,
  keyCheckValue,
  openFrame,
  provisionDevice,
  recoverDeviceKeys,
  sealFrame,
  setupBaseR,
  setupBaseS,
} from '../../protocol/index.js';
import { hex, loadVectors, provisionVectors, toHex } from '../helpers/vectors.js';

interface Rfc9180 {
  name: string;
  aead_id: number;
  info: string;
  ikmE: string;
  skEm: string;
  pkEm: string;
  ikmR: string;
  skRm: string;
  pkRm: string;
  enc: string;
  exports: Array<{ exporter_context: string; L: number; exported_value: string }>;
}

describe('HPKE against RFC 9180 appendix A', () => {
  const vectors = loadVectors<Rfc9180>('rfc9180.json');
  it('has both the export-only (A.7.1) and AES-128-GCM (A.1.1) sets', () => {
    expect(vectors.map((v) => v.aead_id).sort()).toEqual([AEAD_AES_128_GCM, AEAD_EXPORT_ONLY].sort());
  });
  for (const v of vectors) {
    it(`${v.name}: DeriveKeyPair`, () => {
      const e = deriveKeyPair(hex(v.ikmE));
      expect(toHex(e.privateKey)).toBe(v.skEm);
      expect(toHex(e.publicKey)).toBe(v.pkEm);
      const r = deriveKeyPair(hex(v.ikmR));
      expect(toHex(r.privateKey)).toBe(v.skRm);
      expect(toHex(r.publicKey)).toBe(v.pkRm);
    });
    it(`${v.name}: SetupBaseS gives enc and the exported values`, () => {
      const { enc, context } = setupBaseS(hex(v.pkRm), hex(v.info), { aeadId: v.aead_id, ephemeralPrivateKey: hex(v.skEm) });
      expect(toHex(enc)).toBe(v.enc);
      for (const x of v.exports) expect(toHex(context.export(hex(x.exporter_context), x.L))).toBe(x.exported_value);
    });
    it(`${v.name}: SetupBaseR gives the same exported values`, () => {
      const context = setupBaseR(hex(v.enc), hex(v.skRm), hex(v.info), { aeadId: v.aead_id });
      for (const x of v.exports) expect(toHex(context.export(hex(x.exporter_context), x.L))).toBe(x.exported_value);
    });
  }
  it('the AEAD id is part of the suite id: A.7.1 inputs under AES-128-GCM export other values', () => {
    const v = vectors.find((x) => x.aead_id === AEAD_EXPORT_ONLY)!;
    const context = setupBaseR(hex(v.enc), hex(v.skRm), hex(v.info), { aeadId: AEAD_AES_128_GCM });
    expect(toHex(context.export(new Uint8Array(0), 32))).not.toBe(v.exports[0]!.exported_value);
  });
});

describe('device provisioning', () => {
  const vectors = provisionVectors();

  it('has at least 10 vectors', () => expect(vectors.length).toBeGreaterThanOrEqual(10));

  for (const v of vectors) {
    it(`factory and server derive the same secrets for ${v.serial}`, () => {
      const device = provisionDevice(hex(v.ingest_public_key), v.serial, { ephemeralPrivateKey: hex(v.ephemeral_private_key) });
      expect(toHex(device.enc)).toBe(v.enc);
      expect(toHex(device.sealKey)).toBe(v.seal_key);
      expect(toHex(device.nonceSalt)).toBe(v.nonce_salt);
      expect(toHex(device.kcv)).toBe(v.kcv);
      expect(toHex(keyCheckValue(hex(v.seal_key)))).toBe(v.kcv);
      const recovered = recoverDeviceKeys(hex(v.ingest_private_key), hex(v.enc), v.serial);
      expect(toHex(recovered.sealKey)).toBe(v.seal_key);
      expect(toHex(recovered.nonceSalt)).toBe(v.nonce_salt);
    });
  }

  it('binds the serial: the same enc under another serial gives other keys', () => {
    const v = vectors[0]!;
    const other = recoverDeviceKeys(hex(v.ingest_private_key), hex(v.enc), v.serial + 'X');
    expect(toHex(other.sealKey)).not.toBe(v.seal_key);
  });

  it('a frame sealed with provisioned secrets opens only with the right ingest key', () => {
    const ingest = deriveKeyPair(new Uint8Array(32).fill(1));
    const stranger = deriveKeyPair(new Uint8Array(32).fill(2));
    const device = provisionDevice(ingest.publicKey, 'SP-1');
    const frame = sealFrame(device, 42, new Uint8Array(8).fill(5), 20);
    expect(openFrame(recoverDeviceKeys(ingest.privateKey, device.enc, 'SP-1'), frame, 20).counter).toBe(42);
    expect(() => openFrame(recoverDeviceKeys(stranger.privateKey, device.enc, 'SP-1'), frame, 20)).toThrow('frame authentication failed');
  });

  it('uses a fresh ephemeral key for every device', () => {
    const ingest = deriveKeyPair(new Uint8Array(32).fill(3));
    const a = provisionDevice(ingest.publicKey, 'SP-1');
    const b = provisionDevice(ingest.publicKey, 'SP-1');
    expect(toHex(a.enc)).not.toBe(toHex(b.enc));
    expect(toHex(a.sealKey)).not.toBe(toHex(b.sealKey));
  });

  const ingest = deriveKeyPair(new Uint8Array(32).fill(4));
  const bad: Array<[string, () => unknown, RegExp]> = [
    ['empty serial', () => provisionDevice(ingest.publicKey, ''), /^serial "" is not valid/],
    ['serial with a space', () => provisionDevice(ingest.publicKey, 'SP 1'), /^serial "SP 1" is not valid: use 1 to 32 characters/],
    ['serial of 33 characters', () => checkSerial('A'.repeat(33)), /^serial "A{33}" is not valid/],
    ['serial starting with a dash', () => checkSerial('-1'), /^serial "-1" is not valid/],
    ['serial as a number', () => checkSerial(12 as unknown as string), /^serial expected a string, got number$/],
    ['non-ASCII serial', () => checkSerial('SP-ü'), /^serial "SP-ü" is not valid/],
    ['31-byte ingest public key', () => provisionDevice(new Uint8Array(31), 'SP-1'), /^ingestPublicKey expected 32 bytes, got 31$/],
    ['small-order ingest public key', () => provisionDevice(new Uint8Array(32), 'SP-1'), /^public key is not a valid X25519 public key/],
    ['33-byte ingest private key', () => recoverDeviceKeys(new Uint8Array(33), new Uint8Array(32), 'SP-1'), /^ingestPrivateKey expected 32 bytes, got 33$/],
    ['31-byte enc', () => recoverDeviceKeys(ingest.privateKey, new Uint8Array(31), 'SP-1'), /^enc expected 32 bytes, got 31$/],
    ['all-zero enc', () => recoverDeviceKeys(ingest.privateKey, new Uint8Array(32), 'SP-1'), /^public key is not a valid X25519 public key/],
    ['short ephemeral key', () => provisionDevice(ingest.publicKey, 'SP-1', { ephemeralPrivateKey: new Uint8Array(16) }), /^ephemeralPrivateKey expected 32 bytes, got 16$/],
    ['unknown AEAD id', () => setupBaseS(ingest.publicKey, new Uint8Array(0), { aeadId: 2 }), /^aeadId expected 0xffff/],
    ['export length 0', () => setupBaseS(ingest.publicKey, new Uint8Array(0)).context.export(new Uint8Array(0), 0), /^length expected 1\.\.8160, got 0$/],
    ['short ikm', () => deriveKeyPair(new Uint8Array(31)), /^ikm expected at least 32 bytes, got 31$/],
  ];
  for (const [name, call, message] of bad) {
    it(`rejects ${name}`, () => {
      expect(call).toThrow(ArgumentError);
      expect(call).toThrow(message);
    });
  }
});
