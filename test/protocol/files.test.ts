// Device secret files, key files and signed batch manifests.
import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  crc32,
  decodeDeviceFile,
  encodeDeviceFile,
  encodeKeyFile,
  encodeManifest,
  newFactoryKey,
  newIngestKey,
  parseKeyFile,
  signManifest,
  verifyManifest,
  type ManifestBody,
} from '../../protocol/index.js';

describe('device secret file', () => {
  const secrets = { serial: 'SP-000042', frameSize: 20, sealKey: new Uint8Array(16).fill(0xab), nonceSalt: new Uint8Array(8).fill(0x5c) };

  it('has the documented layout and round-trips', () => {
    const bytes = encodeDeviceFile(secrets);
    const hex = Buffer.from(bytes).toString('hex');
    expect(hex.slice(0, 14)).toBe('53506401' + '01' + '14' + '09');
    expect(Buffer.from(bytes.subarray(7, 16)).toString('latin1')).toBe('SP-000042');
    expect(bytes.length).toBe(44);
    expect(decodeDeviceFile(bytes)).toEqual(secrets);
  });

  it('CRC-32 is the standard one (zlib, E.CRC32)', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('rejects corruption, truncation, other formats and bad fields with a reason', () => {
    const bytes = encodeDeviceFile(secrets);
    for (let i = 0; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i] ^= 0x01;
      expect(() => decodeDeviceFile(bad)).toThrow(ArgumentError);
    }
    expect(() => decodeDeviceFile(bytes.subarray(0, bytes.length - 1))).toThrow(/is 43 bytes, expected 44 for a format-1 file with a 9-character serial/);
    expect(() => decodeDeviceFile(new TextEncoder().encode('hello world'))).toThrow(/does not start with the sealpost magic/);
    const corrupt = bytes.slice();
    corrupt[20] ^= 0xff;
    expect(() => decodeDeviceFile(corrupt)).toThrow('device file fails its CRC-32 check: the file is corrupted; provision the device again');
    expect(() => encodeDeviceFile({ ...secrets, frameSize: 13 })).toThrow('frameSize expected 20..244, got 13');
    expect(() => encodeDeviceFile({ ...secrets, sealKey: new Uint8Array(15) })).toThrow('sealKey expected 16 bytes, got 15');
    expect(() => encodeDeviceFile({ ...secrets, serial: 'bad serial' })).toThrow(/serial "bad serial" is not valid/);
  });
});

describe('key files', () => {
  it('round-trip with ids derived from the public key', () => {
    const ingest = newIngestKey();
    const parsed = parseKeyFile(encodeKeyFile(ingest.privateFile), 'ingest-private');
    expect(parsed.id).toMatch(/^ik-[0-9a-f]{16}$/);
    expect(parsed.id).toBe(ingest.publicFile.id);
    const factory = newFactoryKey();
    expect(parseKeyFile(encodeKeyFile(factory.publicFile), 'factory-public').id).toMatch(/^fk-[0-9a-f]{16}$/);
  });

  it('refuse the wrong kind, an edited id, a short key and non-JSON', () => {
    const ingest = newIngestKey();
    expect(() => parseKeyFile(encodeKeyFile(ingest.publicFile), 'ingest-private', 'ingest.pub')).toThrow('ingest.pub holds a ingest-public key, expected a ingest-private key');
    const edited = encodeKeyFile(ingest.privateFile).replace(ingest.privateFile.id, 'ik-0000000000000000');
    expect(() => parseKeyFile(edited, 'ingest-private')).toThrow(/has id "ik-0000000000000000" but its key's id is ik-/);
    const short = JSON.stringify({ kind: 'sealpost-ingest-private-key', id: 'ik-00', private_key: 'abcd' });
    expect(() => parseKeyFile(short, 'ingest-private')).toThrow(/expected 32 bytes, got 2/);
    expect(() => parseKeyFile('not json', 'factory-private', 'f.key')).toThrow('f.key is not a sealpost key file (not JSON)');
  });
});

describe('batch manifests', () => {
  const factory = newFactoryKey();
  const other = newFactoryKey();
  const ingest = newIngestKey();
  const body: ManifestBody = {
    batch: 'B-0001',
    created: '2026-11-27T02:00:00.000Z',
    board: 'puckjs',
    frame_size: 20,
    ingest_key_id: ingest.publicFile.id,
    devices: [
      { serial: 'SP-1', enc: 'aa'.repeat(32) },
      { serial: 'SP-2', enc: 'bb'.repeat(32) },
    ],
  };

  it('verify with the trusted factory key and return the body', () => {
    const text = encodeManifest(signManifest(body, factory.privateFile));
    const { body: got, factoryKeyId } = verifyManifest(text, [other.publicFile, factory.publicFile]);
    expect(got).toEqual(body);
    expect(factoryKeyId).toBe(factory.publicFile.id);
  });

  it('refuse a tampered body, a signature by an untrusted key, and an unsigned manifest', () => {
    const signed = signManifest(body, factory.privateFile);
    const tampered = { ...signed, body: signed.body.replace('SP-2', 'SP-3') };
    expect(() => verifyManifest(JSON.stringify(tampered), [factory.publicFile])).toThrow(/signature does not verify with factory key fk-/);
    expect(() => verifyManifest(JSON.stringify(signed), [other.publicFile])).toThrow(`is signed by factory key ${factory.publicFile.id}, which this server does not trust`);
    const unsigned = { format: signed.format, factory_key_id: signed.factory_key_id, body: signed.body };
    expect(() => verifyManifest(JSON.stringify(unsigned), [factory.publicFile])).toThrow('manifest is unsigned or incomplete');
    const flipped = { ...signed, signature: signed.signature.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
    expect(() => verifyManifest(JSON.stringify(flipped), [factory.publicFile])).toThrow(/signature does not verify/);
    expect(() => verifyManifest('{', [factory.publicFile])).toThrow('manifest is not JSON');
  });

  it('refuse to sign a malformed body, naming the field', () => {
    expect(() => signManifest({ ...body, devices: [] }, factory.privateFile)).toThrow('manifest devices must be a non-empty array');
    expect(() => signManifest({ ...body, devices: [body.devices[0]!, body.devices[0]!] }, factory.privateFile)).toThrow('manifest devices[1].serial repeats serial SP-1');
    expect(() => signManifest({ ...body, devices: [{ serial: 'SP-1', enc: 'xyz' }] }, factory.privateFile)).toThrow('manifest devices[0].enc must be 64 lowercase hex digits');
    expect(() => signManifest({ ...body, frame_size: 19 }, factory.privateFile)).toThrow('manifest frame_size must be an integer 20..244');
    expect(() => signManifest(body, factory.publicFile)).toThrow('factoryKey expected a factory-private key, got factory-public');
  });
});
