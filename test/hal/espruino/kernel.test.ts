// The native-kernel backend (hal/espruino/kernel.ts) on the interpreter stand-in
// (sim/espruino/kernel.ts): which kernel it runs and where from, what it refuses before executing
// anything, its boot self-test, and what it hands the kernel. Byte-identity with every vector is in
// test/firmware/device-crypto.test.ts; the real kernel on the real interpreter in
// test/firmware/kernel-arm.test.ts.
import { describe, expect, it } from 'vitest';
import { kernelCrypto, imageNumbers, SELFTEST_COUNTER, SELFTEST_VECTOR } from '../../../hal/espruino/kernel.js';
import type { EGlobal, EspruinoStorageModule } from '../../../hal/espruino/globals.js';
import { IMAGE } from '../../../kernel/aes-ccm/image.js';
import { kernelImage, kernelMachine } from '../../../sim/espruino/kernel.js';
import { KERNEL_FILE_NAME } from '../../../protocol/wire/names.js';
import { crc32 } from '../../../protocol/wire/crc32.js';
import { keyCheckValue, makeAck, makeRenewAck, openFrame } from '../../../protocol/index.js';
import { createSealer } from '../../../firmware/sealer.js';
import { hex, sealVectors, toHex } from '../../helpers/vectors.js';

function backend(options: { xip?: boolean; wrongOutput?: boolean; file?: Uint8Array | null } = {}) {
  const files = new Map<string, Uint8Array>();
  if (options.file !== null) files.set(KERNEL_FILE_NAME, options.file ?? kernelImage());
  const m = kernelMachine({ files: () => files, xip: options.xip, wrongOutput: options.wrongOutput });
  const E = { ...m.E, CRC32: (s: string) => crc32(Uint8Array.from(Buffer.from(s, 'latin1'))) | 0 } as unknown as EGlobal;
  return { crypto: kernelCrypto(E, { read: m.read } as unknown as EspruinoStorageModule, imageNumbers(IMAGE)), machine: m };
}

const KEYS = { sealKey: hex('000102030405060708090a0b0c0d0e0f'), nonceSalt: hex('a0a1a2a3a4a5a6a7') };

describe('native-kernel backend', () => {
  it("boots on seal.json's vector 18 (counter 2^31): the self-test bytes are that vector's", () => {
    const v = sealVectors()[18]!;
    expect(Buffer.from(SELFTEST_VECTOR, 'base64').toString('hex')).toBe(v.seal_key + v.nonce_salt + v.plaintext + v.frame);
    expect(SELFTEST_COUNTER).toBe(v.counter);
  });

  it('executes the Storage file in place where it has a flash address, and copies it into a flat string only where that is 0', () => {
    const inPlace = backend({ xip: true });
    expect(toHex(inPlace.crypto.encryptBlock(KEYS.sealKey, new Uint8Array(16)).subarray(0, 3))).toBe(toHex(keyCheckValue(KEYS.sealKey)));
    expect(inPlace.machine.flatCopies).not.toContain(IMAGE.size);
    const copied = backend({ xip: false });
    expect(toHex(copied.crypto.encryptBlock(KEYS.sealKey, new Uint8Array(16)).subarray(0, 3))).toBe(toHex(keyCheckValue(KEYS.sealKey)));
    expect(copied.machine.flatCopies).toEqual([IMAGE.size]);
  });

  it('matches FIPS-197 C.1 through aes_block', () => {
    const { crypto } = backend();
    expect(toHex(crypto.encryptBlock(hex('000102030405060708090a0b0c0d0e0f'), hex('00112233445566778899aabbccddeeff')))).toBe('69c4e0d86a7b0430d8cdb78070b4c55a');
  });

  it('seals in the outbox ring frames the host opens and checks acks, through the sealer', () => {
    const { crypto, machine } = backend();
    const ring = new Uint8Array(20 * 4).fill(0xee);
    const sealer = createSealer({ ccm: crypto.ccm(KEYS.sealKey, 8), nonceSalt: KEYS.nonceSalt, frameSize: 20, ring });
    sealer.sealInto(7, hex('0102030405060708'), 40);
    expect(openFrame(KEYS, ring.subarray(40, 60), 20)).toMatchObject({ counter: 7 });
    expect(ring[39]).toBe(0xee);
    expect(ring[60]).toBe(0xee);
    expect(sealer.ackValid(makeAck(KEYS, 0xfffffffe))).toBe(true);
    const forged = makeAck(KEYS, 5);
    forged[11] ^= 0x80;
    expect(sealer.ackValid(forged)).toBe(false);
    // One self-test seal, then ours; acks go through aes_ccm_ack.
    expect(machine.calls.aes_ccm_seal).toBe(2);
    expect(machine.calls.aes_ccm_ack).toBe(2);
  });

  it('refuses a missing, damaged, truncated or foreign kernel file before executing any of it', () => {
    const damaged = kernelImage();
    damaged[700] ^= 1;
    const cases: [Uint8Array | null, RegExp][] = [
      [null, /kernel sealpost.krn is missing: provision this device with sealpost flash/],
      [damaged, /^kernel sealpost.krn is damaged or not this firmware's: flash the device again$/],
      [kernelImage().subarray(0, 1000), /is damaged or not this firmware's/],
      [new Uint8Array(IMAGE.size), /is damaged or not this firmware's/],
    ];
    for (const [file, message] of cases) {
      const { crypto, machine } = backend({ file });
      expect(() => crypto.encryptBlock(KEYS.sealKey, new Uint8Array(16))).toThrow(message);
      expect(() => crypto.ccm(KEYS.sealKey, 8)).toThrow(message);
      expect(machine.calls).toEqual({});
    }
  });

  it('refuses to seal with a kernel that seals its self-test vector wrong', () => {
    const { crypto, machine } = backend({ wrongOutput: true });
    expect(() => crypto.ccm(KEYS.sealKey, 8)).toThrow('kernel sealpost.krn failed its self-test');
    expect(() => crypto.encryptBlock(KEYS.sealKey, new Uint8Array(16))).toThrow(/failed its self-test/);
    expect(machine.calls.aes_ccm_seal).toBe(2);
  });

  it('hands the kernel only flat blocks: the 12-byte ack buffer and a 13-byte ring (address 0) still work', () => {
    const { crypto } = backend();
    const ring = new Uint8Array(13);
    const sealer = createSealer({ ccm: crypto.ccm(KEYS.sealKey, 1), nonceSalt: KEYS.nonceSalt, frameSize: 13, ring });
    sealer.sealInto(0x80000001, hex('42'), 0);
    expect(openFrame(KEYS, ring, 13)).toMatchObject({ counter: 0x80000001 });
  });

  it('computes RENEW_ACK (domain 3, empty message) from aes_block without disturbing the seal and ack framers made before it', () => {
    const { crypto } = backend();
    const ccm = crypto.ccm(KEYS.sealKey, 8);
    const ring = new Uint8Array(20);
    const frame = ccm.framer(KEYS.nonceSalt, 8, ring, 1);
    const ack = new Uint8Array(12);
    const acker = ccm.framer(KEYS.nonceSalt, 0, ack, 2);
    // Another salt for the domain-3 framer: its tag is under that salt, the others keep theirs.
    const other = { sealKey: KEYS.sealKey, nonceSalt: hex('0102030405060708') };
    const t = new Uint8Array(16).fill(0xee);
    const renew = ccm.framer(other.nonceSalt, 0, t, 3);
    renew(0xfffffffe, new Uint8Array(0), 2);
    expect(toHex(t)).toBe('eeee' + 'fffffffe' + toHex(makeRenewAck(other, 0xfffffffe).subarray(8)) + 'eeee');
    expect(() => renew(0, new Uint8Array(0), 0)).toThrow('counter expected 1..4294967295, got 0');
    expect(() => renew(1, new Uint8Array(1), 0)).toThrow('plaintext expected 0 bytes, got 1');
    expect(() => renew(1, new Uint8Array(0), 5)).toThrow('kernel sealpost.krn has no flat RAM or ring room');
    frame(9, new Uint8Array(8).fill(3), 0);
    expect(openFrame(KEYS, ring, 20).counter).toBe(9);
    acker(9, new Uint8Array(0), 0);
    expect(toHex(ack)).toBe(toHex(makeAck(KEYS, 9)));
    expect(() => ccm.framer(KEYS.nonceSalt, 8, ring, 3)).toThrow('kernel sealpost.krn has no such framer');
    expect(() => ccm.framer(KEYS.nonceSalt, 0, t, 256)).toThrow('kernel sealpost.krn has no such framer');
  });

  it('refuses framers it cannot serve and a frame past the end of the ring, naming the kernel', () => {
    const { crypto } = backend();
    const ccm = crypto.ccm(KEYS.sealKey, 8);
    const ring = new Uint8Array(40);
    expect(() => ccm.framer(KEYS.nonceSalt, 9, ring, 1)).toThrow('kernel sealpost.krn has no such framer');
    expect(() => ccm.framer(KEYS.nonceSalt, 8, ring, 3)).toThrow('kernel sealpost.krn has no such framer');
    expect(() => ccm.framer(KEYS.nonceSalt, 4, ring, 2)).toThrow('kernel sealpost.krn has no such framer');
    const frame = ccm.framer(KEYS.nonceSalt, 8, ring, 1);
    expect(() => ccm.framer(hex('0000000000000000'), 0, ring, 2)).toThrow('kernel sealpost.krn has no such framer');
    expect(() => frame(1, new Uint8Array(8), 21)).toThrow('kernel sealpost.krn has no flat RAM or ring room');
    frame(1, new Uint8Array(8), 20);
    expect(openFrame(KEYS, ring.subarray(20), 20).counter).toBe(1);
  });
});

describe('the kernel stand-in', () => {
  it('faults where the interpreter would: address 0, ARM mode, bytes that are not the image, a write to flash', () => {
    const files = new Map([[KERNEL_FILE_NAME, kernelImage()]]);
    const m = kernelMachine({ files: () => files });
    const code = m.read(KERNEL_FILE_NAME)!;
    const base = m.E.getAddressOf(code, true);
    expect(base).not.toBe(0);
    const ctx = new Uint8Array(188);
    const c = m.E.getAddressOf(ctx, true);
    const init = m.E.nativeCall(base + IMAGE.entries.aes_ccm_init + 1, 'int(int,int,int,int)');
    expect(() => init(c, 0, c, 8)).toThrow(/pointer 0x0 \(\+16\) is in no flat block/);
    expect(m.E.getAddressOf(new Uint8Array(16), true)).toBe(0);
    expect(() => m.E.nativeCall(base + IMAGE.entries.aes_ccm_init, 'int(int,int,int,int)')(c, c, c, 8)).toThrow(/ARM mode/);
    expect(() => m.E.nativeCall(base + 3, 'int(int,int,int,int)')(c, c, c, 8)).toThrow(/not an entry point/);
    expect(() => init(c, c, c, 8)).not.toThrow();
    expect(() => m.E.nativeCall(base + IMAGE.entries.aes_block + 1, 'int(int,int,int,int)')(c, c, base, 0)).toThrow(/write to flash/);
    const bad = kernelImage();
    bad[5] ^= 1;
    const other = m.E.toFlatString(bad);
    expect(() => m.E.nativeCall(IMAGE.entries.aes_ccm_init + 1, 'int(int,int,int,int)', other as string)(c, c, c, 8)).toThrow(/not the committed kernel image/);
  });
});
