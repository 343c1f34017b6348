// The three device crypto backends (design brief, last paragraph) against the
// committed vectors, run under Node with the stand-in for Espruino's AES.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createEspruinoAes } from '../../sim/espruino/aes.js';
import { kernelImage, kernelMachine } from '../../sim/espruino/kernel.js';
import { kernelCrypto, imageNumbers } from '../../hal/espruino/kernel.js';
import type { EGlobal, EspruinoStorageModule } from '../../hal/espruino/globals.js';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import { KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { crc32 } from '../../protocol/wire/crc32.js';
import { nativeAesCcm, nativeCcm } from '../../hal/espruino/crypto.js';
import { plainCcm } from '../../hal/plain/crypto.js';
import { aes128, expandKey, sbox } from '../../hal/plain/aes128.js';
import { createSealer, ackCounter } from '../../firmware/sealer.js';
import type { Ccm, CryptoBackend } from '../../hal/types.js';
import { openFrame, makeAck, makeRenewAck } from '../../protocol/index.js';
import { readFileSync } from 'node:fs';
import { referenceAesBlock } from '../reference/ccm.js';
import { ackVectors, hex, sealVectors, toHex } from '../helpers/vectors.js';

const quiet = () => {};
const BACKENDS: Record<CryptoBackend, (key: Uint8Array, maxMsgLen: number) => Ccm> = {
  'native-ccm': (key) => nativeCcm(createEspruinoAes({ print: quiet }), key),
  'native-aes': (key, max) => nativeAesCcm(createEspruinoAes({ features: { ccm: false }, print: quiet }), key, max),
  'native-kernel': (key, max) => kernelOnStandIn().ccm(key, max),
  'plain-js': (key, max) => plainCcm(key, max),
};

/** The native-kernel backend on the interpreter stand-in (sim/espruino/kernel.ts), the kernel file in its Storage. */
function kernelOnStandIn(options: { xip?: boolean; wrongOutput?: boolean; file?: Uint8Array } = {}) {
  const files = new Map([[KERNEL_FILE_NAME, options.file ?? kernelImage()]]);
  const m = kernelMachine({ files: () => files, xip: options.xip, wrongOutput: options.wrongOutput });
  const E = { ...m.E, CRC32: (s: string) => crc32(Uint8Array.from(Buffer.from(s, 'latin1'))) } as unknown as EGlobal;
  return Object.assign(kernelCrypto(E, { read: m.read } as unknown as EspruinoStorageModule, imageNumbers(IMAGE)), { machine: m });
}

/** A sealer over a one-frame ring, as the device builds it over its outbox. */
function sealerWithRing(ccm: Ccm, nonceSalt: Uint8Array, frameSize: number) {
  const ring = new Uint8Array(frameSize);
  const sealer = createSealer({ ccm, nonceSalt, frameSize, ring });
  return { sealer, ring, seal: (counter: number, pt: Uint8Array) => (sealer.sealInto(counter, pt, 0), ring.slice()) };
}

for (const [name, make] of Object.entries(BACKENDS)) {
  describe(`device backend ${name}`, () => {
    it('seals every frame of seal.json byte for byte into the outbox ring, touching nothing around it', () => {
      for (const v of sealVectors()) {
        const ring = new Uint8Array(v.frame_size * 3).fill(0xee);
        const sealer = createSealer({ ccm: make(hex(v.seal_key), v.frame_size - 12), nonceSalt: hex(v.nonce_salt), frameSize: v.frame_size, ring });
        sealer.sealInto(v.counter, hex(v.plaintext), v.frame_size);
        expect(toHex(ring.subarray(v.frame_size, 2 * v.frame_size))).toBe(v.frame);
        expect(ring[v.frame_size - 1]).toBe(0xee);
        expect(ring[2 * v.frame_size]).toBe(0xee);
      }
    });

    it('accepts every ack of ack.json and rejects each with any bit flipped', () => {
      for (const v of ackVectors()) {
        const { sealer } = sealerWithRing(make(hex(v.seal_key), 8), hex(v.nonce_salt), 20);
        const ack = hex(v.ack);
        expect(sealer.ackValid(ack)).toBe(true);
        expect(ackCounter(ack)).toBe(v.counter);
        for (let bit = 0; bit < 96; bit++) {
          const bad = ack.slice();
          bad[bit >> 3] ^= 1 << (bit & 7);
          expect(sealer.ackValid(bad)).toBe(false);
        }
      }
    });

    it('seals frames the host opens, for random keys, counters and sizes', () => {
      for (let i = 0; i < 40; i++) {
        const keys = { sealKey: new Uint8Array(randomBytes(16)), nonceSalt: new Uint8Array(randomBytes(8)) };
        const frameSize = 13 + ((i * 37) % 232);
        const counter = 1 + randomBytes(4).readUInt32BE(0) % 0xfffffffe;
        const plaintext = new Uint8Array(randomBytes(frameSize - 12));
        const { sealer, seal } = sealerWithRing(make(keys.sealKey, frameSize - 12), keys.nonceSalt, frameSize);
        const opened = openFrame(keys, seal(counter, plaintext), frameSize);
        expect(opened.counter).toBe(counter);
        expect(toHex(opened.plaintext)).toBe(toHex(plaintext));
        expect(sealer.ackValid(makeAck(keys, counter))).toBe(true);
      }
    });

    it('gives the RENEW_ACK tag of every renewal.json vector (domain 3, empty message) as firmware/renewal.ts checks it, then seals under the same engine', () => {
      const vectors = (JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as { renew_ack: { seal_key: string; nonce_salt: string; epoch: number; renew_ack: string }[] }).renew_ack;
      expect(vectors.length).toBeGreaterThan(3);
      for (const v of vectors) {
        // firmware/renewal.ts renewAck: an engine for the new key, a domain-3 framer of the empty message.
        const ccm = make(hex(v.seal_key), 20 - 12);
        const t = new Uint8Array(12);
        ccm.framer(hex(v.nonce_salt), 0, t, 3)(v.epoch, new Uint8Array(0), 0);
        expect(toHex(t), `epoch ${v.epoch}`).toBe(v.renew_ack.slice(2, 10) + v.renew_ack.slice(16));
        // The sealer the device then switches to runs on that same engine.
        const keys = { sealKey: hex(v.seal_key), nonceSalt: hex(v.nonce_salt) };
        const ring = new Uint8Array(20);
        const sealer = createSealer({ ccm, nonceSalt: keys.nonceSalt, frameSize: 20, ring });
        sealer.sealInto((v.epoch % 1000) + 5, new Uint8Array(8).fill(7), 0);
        expect(openFrame(keys, ring, 20).counter).toBe((v.epoch % 1000) + 5);
        expect(sealer.ackValid(makeAck(keys, (v.epoch % 1000) + 5))).toBe(true);
      }
      for (let i = 0; i < 20; i++) {
        const keys = { sealKey: new Uint8Array(randomBytes(16)), nonceSalt: new Uint8Array(randomBytes(8)) };
        const epoch = 1 + (randomBytes(4).readUInt32BE(0) % 0xfffffffe);
        const t = new Uint8Array(12);
        make(keys.sealKey, 8).framer(keys.nonceSalt, 0, t, 3)(epoch, new Uint8Array(0), 0);
        expect(toHex(t.subarray(4))).toBe(toHex(makeRenewAck(keys, epoch).subarray(8)));
        const wrong = new Uint8Array(12);
        make(keys.sealKey, 8).framer(keys.nonceSalt, 0, wrong, 2)(epoch, new Uint8Array(0), 0);
        expect(toHex(wrong.subarray(4))).not.toBe(toHex(t.subarray(4)));
      }
    });

    it('rejects malformed acks without throwing: wrong length, N = 0, another device\'s ack', () => {
      const keys = { sealKey: new Uint8Array(16).fill(1), nonceSalt: new Uint8Array(8).fill(2) };
      const { sealer } = sealerWithRing(make(keys.sealKey, 8), keys.nonceSalt, 20);
      const good = makeAck(keys, 7);
      expect(sealer.ackValid(good.subarray(0, 11))).toBe(false);
      expect(sealer.ackValid(new Uint8Array(13))).toBe(false);
      expect(sealer.ackValid(new Uint8Array(12))).toBe(false);
      expect(sealer.ackValid(undefined as unknown as Uint8Array)).toBe(false);
      const other = makeAck({ sealKey: keys.sealKey, nonceSalt: new Uint8Array(8).fill(3) }, 7);
      expect(sealer.ackValid(other)).toBe(false);
    });

    it('refuses counters and plaintexts out of range', () => {
      const { seal, ring } = sealerWithRing(make(new Uint8Array(16), 8), new Uint8Array(8), 20);
      expect(() => seal(0, new Uint8Array(8))).toThrow('counter expected 1..4294967295, got 0');
      expect(() => seal(2 ** 32, new Uint8Array(8))).toThrow('counter expected 1..4294967295, got 4294967296');
      expect(() => seal(1, new Uint8Array(7))).toThrow('plaintext expected 8 bytes, got 7');
      expect(ring.every((b) => b === 0)).toBe(true);
    });
  });
}

describe('sealer set-up', () => {
  const ccm = plainCcm(new Uint8Array(16), 8);
  it('refuses a nonce salt of the wrong length', () => {
    expect(() => createSealer({ ccm, nonceSalt: new Uint8Array(7), frameSize: 20, ring: new Uint8Array(20) })).toThrow('nonce salt expected 8 bytes, got 7');
  });
  it('refuses frame sizes outside 13..244', () => {
    expect(() => createSealer({ ccm, nonceSalt: new Uint8Array(8), frameSize: 12, ring: new Uint8Array(12) })).toThrow('frame size expected 13..244, got 12');
    expect(() => createSealer({ ccm, nonceSalt: new Uint8Array(8), frameSize: 245, ring: new Uint8Array(245) })).toThrow('frame size expected 13..244, got 245');
  });
  it('a native-ccm engine on a build without AES.ccmEncrypt says which backend to use', () => {
    expect(() => nativeCcm(createEspruinoAes({ features: { ccm: false } }), new Uint8Array(16))).toThrow(/use crypto backend native-aes or plain-js/);
    expect(() => nativeAesCcm(createEspruinoAes({ features: { aes: false, ccm: false } }), new Uint8Array(16), 8)).toThrow(/use crypto backend plain-js/);
  });
});

describe('plain-JS AES-128', () => {
  it('computes the S-box of FIPS 197 figure 7', () => {
    const figure7 =
      'Y3x3e/Jrb8UwAWcr/terdsqCyX36WUfwrdSir5ykcsC3/ZMmNj/3zDSl5fFx2DEVBMcjwxiWBZoHEoDi6yeydQmDLBobblqgUjvWsynjL4RT0QDtIPyxW2rLvjlKTFjP0O+q+0NNM4VF+QJ/UDyfqFGjQI+SnTj1vLbaIRD/89LNDBPsX5dEF8Snfj1kXRlzYIFP3CIqkIhG7rgU3l4L2+AyOgpJBiRcwtOsYpGV5HnnyDdtjdVOqWxW9Opleq4IunglLhymtMbo3XQfS72LinA+tWZIA/YOYTVXuYbBHZ7h+JgRadmOlJseh+nOVSjfjKGJDb/mQmhBmS0PsFS7Fg==';
    expect(Buffer.from(sbox()).toString('base64')).toBe(figure7);
  });

  it('matches FIPS 197 appendix C.1', () => {
    const out = new Uint8Array(16);
    aes128(hex('000102030405060708090a0b0c0d0e0f'))(hex('00112233445566778899aabbccddeeff'), 0, out, 0);
    expect(toHex(out)).toBe('69c4e0d86a7b0430d8cdb78070b4c55a');
  });
  it('expands the FIPS 197 appendix A.1 key to the published last round key', () => {
    expect(toHex(expandKey(hex('2b7e151628aed2a6abf7158809cf4f3c')).subarray(160))).toBe('d014f9a8c9ee2589e13f0cc8b6630ca6');
  });
  it('matches @noble/ciphers on 500 random keys and blocks', () => {
    for (let i = 0; i < 500; i++) {
      const key = new Uint8Array(randomBytes(16));
      const block = new Uint8Array(randomBytes(16));
      const out = new Uint8Array(16);
      aes128(key)(block, 0, out, 0);
      expect(toHex(out)).toBe(toHex(referenceAesBlock(key, block)));
    }
  });
  it('refuses a key that is not 16 bytes', () => {
    expect(() => aes128(new Uint8Array(24))).toThrow('AES-128 key expected 16 bytes, got 24');
  });
});

describe('the Espruino AES stand-in behaves as documented for 2v29', () => {
  const key = hex('000102030405060708090a0b0c0d0e0f');
  const nonce = hex('101112131415161718191a1b1c');
  const lines: string[] = [];
  const aes = createEspruinoAes({ print: (l) => lines.push(l) });

  it('ccmEncrypt returns ArrayBuffers, also for an empty message (measured on the Linux build)', () => {
    const r = aes.ccmEncrypt!(hex('2021222324252627'), key, nonce, 8)!;
    expect(r.data).toBeInstanceOf(ArrayBuffer);
    expect(toHex(new Uint8Array(r.data))).toBe('5cc052629c79c8f3');
    expect(toHex(new Uint8Array(r.tag))).toBe('5ece9c1e0232b9ac');
    const empty = aes.ccmEncrypt!(new Uint8Array(0), key, nonce, 8)!;
    expect(empty.data.byteLength).toBe(0);
    expect(toHex(new Uint8Array(empty.tag))).toBe('5e5234e976e983a6');
  });
  it('errors print ERROR and return undefined instead of throwing', () => {
    lines.length = 0;
    expect(aes.ccmEncrypt!(new Uint8Array(8), key, nonce, 3)).toBeUndefined();
    expect(aes.ccmEncrypt!(new Uint8Array(8), key, 'abcdefghijklm' as unknown as Uint8Array, 8)).toBeUndefined();
    const r = aes.ccmEncrypt!(new Uint8Array(8), key, nonce, 8)!;
    const badTag = new Uint8Array(r.tag);
    badTag[0] ^= 1;
    expect(aes.ccmDecrypt!(r.data, key, nonce, badTag)).toBeUndefined();
    expect(aes.encrypt!(new Uint8Array(20), key, { mode: 'CBC' })).toBeUndefined();
    expect(aes.encrypt!(new Uint8Array(16), new Uint8Array(15), { mode: 'ECB' })).toBeUndefined();
    expect(lines).toEqual([
      'ERROR: Bad input data',
      'ERROR: Bad input data',
      'ERROR: Authenticated decryption failed',
      'ERROR: Invalid input length',
      'ERROR: Unknown error: -0x20',
    ]);
  });
  it('an unknown mode name throws', () => {
    expect(() => aes.encrypt!(new Uint8Array(16), key, { mode: 'ecb' })).toThrow('Unknown Crypto mode "ecb"');
  });
  it('CTR ignores the iv and starts from a zero counter block', () => {
    const a = new Uint8Array(aes.encrypt!(new Uint8Array(32), key, { mode: 'CTR', iv: new Uint8Array(16).fill(9) })!);
    const b = new Uint8Array(aes.encrypt!(new Uint8Array(32), key, { mode: 'CTR' })!);
    expect(toHex(a)).toBe(toHex(b));
    expect(toHex(a.subarray(0, 16))).toBe(toHex(referenceAesBlock(key, new Uint8Array(16))));
  });
  it('ECB skips a trailing partial block (left as zeros); default mode is CBC with a zero IV', () => {
    const out = new Uint8Array(aes.encrypt!(new Uint8Array(20).fill(1), key, { mode: 'ECB' })!);
    expect(out.length).toBe(20);
    expect(toHex(out.subarray(16))).toBe('00000000');
    const cbc = new Uint8Array(aes.encrypt!(new Uint8Array(16), key)!);
    expect(toHex(cbc)).toBe(toHex(referenceAesBlock(key, new Uint8Array(16))));
  });
  it('accepts strings, arrays and ArrayBuffers as data', () => {
    const fromString = new Uint8Array(aes.encrypt!('\x00'.repeat(16), key, { mode: 'ECB' })!);
    const fromArray = new Uint8Array(aes.encrypt!(new Array(16).fill(0), key, { mode: 'ECB' })!);
    const fromBuffer = new Uint8Array(aes.encrypt!(new ArrayBuffer(16), key, { mode: 'ECB' })!);
    expect(toHex(fromString)).toBe(toHex(fromArray));
    expect(toHex(fromBuffer)).toBe(toHex(fromArray));
  });
});
