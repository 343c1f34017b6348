// The request path's CCM (server/ingest/device-cipher.ts) is built on AES-128
// under many keys (aes.ts), on each route (the addon, node:crypto): it must
// agree byte for byte with protocol/frame.ts openFrame and protocol/ack.ts
// makeAck (OpenSSL's CCM) on the shared vectors, on random frames of every
// size, many devices of mixed frame sizes in one call, and reject every
// single flipped bit.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthenticationError, MAX_FRAME_SIZE, MIN_FRAME_SIZE, makeAck, openFrame, sealFrame, type DeviceKeys } from '../../../protocol/index.js';
import { nativeAes, nodeCryptoAes, type ManyKeyAes } from '../../../server/ingest/aes.js';
import { DeviceCipher as Cipher, makeAcks, openFrames } from '../../../server/ingest/device-cipher.js';
import { ackVectors, hex, sealVectors, toHex } from '../../helpers/vectors.js';

const keysOf = (v: { seal_key: string; nonce_salt: string }): DeviceKeys => ({ sealKey: hex(v.seal_key), nonceSalt: hex(v.nonce_salt) });
const randomKeys = (): DeviceKeys => ({ sealKey: new Uint8Array(randomBytes(16)), nonceSalt: new Uint8Array(randomBytes(8)) });

/** openFrame's verdict: the plaintext, or undefined for AuthenticationError. */
function reference(keys: DeviceKeys, frame: Uint8Array, size: number): { counter: number; plaintext: Uint8Array } | undefined {
  try {
    return openFrame(keys, frame, size);
  } catch (e) {
    if (e instanceof AuthenticationError) return undefined;
    throw e;
  }
}

const routes: [string, () => ManyKeyAes][] = [
  ['native', nativeAes],
  ['node:crypto', nodeCryptoAes],
];

describe.each(routes)('device CCM on the %s route', (_, make) => {
  const aes = make();
  class DeviceCipher extends Cipher {
    constructor(keys: DeviceKeys) {
      super(keys, aes);
    }
  }

  it('opens every seal vector and rejects each with any one bit flipped', () => {
    for (const v of sealVectors()) {
      const cipher = new DeviceCipher(keysOf(v));
      const frame = hex(v.frame);
      const [opened] = cipher.openFrames([frame], v.frame_size);
      expect(opened).toBeDefined();
      expect(opened!.counter).toBe(v.counter);
      expect(toHex(opened!.plaintext)).toBe(v.plaintext);
      const flips: Uint8Array[] = [];
      for (let i = 4; i < frame.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const f = frame.slice();
          f[i]! ^= 1 << bit;
          flips.push(f);
        }
      }
      // The counter is in the nonce: a frame claiming another counter fails too.
      const moved = frame.slice();
      moved[3]! ^= 0x01;
      if (moved[0]! | moved[1]! | moved[2]! | moved[3]!) flips.push(moved);
      for (const r of cipher.openFrames(flips, v.frame_size)) expect(r).toBeUndefined();
    }
  });

  it('makes every ack vector', () => {
    for (const v of ackVectors()) expect(toHex(new DeviceCipher(keysOf(v)).ack(v.counter))).toBe(v.ack);
  });

  it('agrees with openFrame and makeAck on random keys, counters and frame sizes, genuine and junk frames mixed in one call', () => {
    for (let round = 0; round < 40; round++) {
      const keys = randomKeys();
      const size = round < 2 ? [MIN_FRAME_SIZE, MAX_FRAME_SIZE][round]! : MIN_FRAME_SIZE + Math.floor(Math.random() * (MAX_FRAME_SIZE - MIN_FRAME_SIZE + 1));
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 30; i++) {
        const counter = 1 + Math.floor(Math.random() * 0xfffffffe);
        if (i % 3 === 0) {
          const junk = new Uint8Array(randomBytes(size));
          junk[0] = 0x10;
          frames.push(junk);
        } else {
          frames.push(sealFrame(keys, counter, new Uint8Array(randomBytes(size - 12)), size));
        }
      }
      const cipher = new DeviceCipher(keys);
      const got = cipher.openFrames(frames, size);
      frames.forEach((f, i) => expect(got[i], `frame ${i}, size ${size}`).toEqual(reference(keys, f, size)));
      expect(got.filter((g) => g !== undefined).length).toBe(20);
      for (const n of [1, 2, 0xffff, 0x10000, 0xfffffffe, 0xffffffff]) expect(cipher.ack(n)).toEqual(makeAck(keys, n));
    }
  });

  it('keeps no state between calls: the same frame opens the same way before and after others', () => {
    const keys = randomKeys();
    const frame = sealFrame(keys, 7, new Uint8Array(8).fill(3), 20);
    const cipher = new DeviceCipher(keys);
    const first = cipher.openFrames([frame], 20);
    cipher.openFrames([new Uint8Array(randomBytes(20))], 20);
    cipher.ack(99);
    expect(cipher.openFrames([frame], 20)).toEqual(first);
    expect(first[0]).toEqual({ counter: 7, plaintext: new Uint8Array(8).fill(3) });
  });

  it('checks its arguments and names them', () => {
    expect(() => new DeviceCipher({ sealKey: new Uint8Array(15), nonceSalt: new Uint8Array(8) })).toThrow(/sealKey/);
    expect(() => new DeviceCipher({ sealKey: new Uint8Array(16), nonceSalt: new Uint8Array(7) })).toThrow(/nonceSalt/);
    const cipher = new DeviceCipher(randomKeys());
    expect(() => cipher.openFrames([new Uint8Array(19)], 20)).toThrow(/frame.*expected 20 bytes/);
    expect(() => cipher.openFrames([new Uint8Array(12)], 12)).toThrow(/frameSize/);
    expect(() => cipher.openFrames([new Uint8Array(245)], 245)).toThrow(/frameSize/);
    expect(cipher.openFrames([], 20)).toEqual([]);
    for (const bad of [0, -1, 1.5, 2 ** 32]) expect(() => cipher.ack(bad)).toThrow(/counter/);
  });

  it('opens many devices of mixed frame sizes in one call exactly as each device alone, and makes their acks in one', () => {
    for (let round = 0; round < 10; round++) {
      const devices = Array.from({ length: 1 + Math.floor(Math.random() * 40) }, () => ({
        keys: randomKeys(),
        size: Math.random() < 0.5 ? 20 : MIN_FRAME_SIZE + Math.floor(Math.random() * (MAX_FRAME_SIZE - MIN_FRAME_SIZE + 1)),
      }));
      const sealKeys = new Uint8Array(16 * devices.length);
      const nonceSalts = new Uint8Array(8 * devices.length);
      devices.forEach((d, i) => {
        sealKeys.set(d.keys.sealKey, 16 * i);
        nonceSalts.set(d.keys.nonceSalt, 8 * i);
      });
      const frames: Uint8Array[] = [];
      const slots: number[] = [];
      devices.forEach((d, i) => {
        // Some devices have no frame at all; genuine and junk frames mixed.
        for (let f = Math.floor(Math.random() * 4); f > 0; f--) {
          const counter = 1 + Math.floor(Math.random() * 0xfffffffe);
          frames.push(Math.random() < 0.5 ? sealFrame(d.keys, counter, new Uint8Array(randomBytes(d.size - 12)), d.size) : new Uint8Array(randomBytes(d.size)));
          slots.push(i);
        }
      });
      const got = openFrames(aes, { sealKeys, nonceSalts }, frames, new Uint32Array(slots));
      frames.forEach((f, i) => expect(got[i], `frame ${i}`).toEqual(reference(devices[slots[i]!]!.keys, f, devices[slots[i]!]!.size)));
      const counters = devices.map(() => 1 + Math.floor(Math.random() * 0xfffffffe));
      const acks = makeAcks(aes, { sealKeys, nonceSalts }, devices.map((_, i) => i), counters);
      devices.forEach((d, i) => expect(acks[i]).toEqual(makeAck(d.keys, counters[i]!)));
    }
  });

  it('checks the batch\'s arguments and names them', () => {
    const keys = { sealKeys: new Uint8Array(32), nonceSalts: new Uint8Array(16) };
    const frame = new Uint8Array(20).fill(1);
    expect(() => openFrames(aes, { sealKeys: new Uint8Array(32), nonceSalts: new Uint8Array(8) }, [frame], [0])).toThrow(/keys/);
    expect(() => openFrames(aes, keys, [frame], [])).toThrow(/slots/);
    expect(() => openFrames(aes, keys, [frame, frame], [1, 0])).toThrow(/slots.*non-decreasing/);
    expect(() => openFrames(aes, keys, [frame], [2])).toThrow(/slots/);
    expect(() => openFrames(aes, keys, [new Uint8Array(12)], [0])).toThrow(/frameSize/);
    expect(openFrames(aes, keys, [], [])).toEqual([]);
    expect(() => makeAcks(aes, keys, [0, 1], [5])).toThrow(/counters/);
    expect(() => makeAcks(aes, keys, [0], [0])).toThrow(/counter/);
  });
});
