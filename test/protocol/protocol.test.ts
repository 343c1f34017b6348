// Frames, acks and key check values against the committed vectors; bad arguments get an error that names them.
import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  AuthenticationError,
  buildNonce,
  DOMAIN_ACK,
  DOMAIN_UPLINK,
  frameCounter,
  keyCheckValue,
  makeAck,
  openFrame,
  plaintextLength,
  sealFrame,
  verifyAck,
  type DeviceKeys,
} from '../../protocol/index.js';
import { ackVectors, hex, sealVectors, toHex } from '../helpers/vectors.js';

const keysOf = (v: { seal_key: string; nonce_salt: string }): DeviceKeys => ({ sealKey: hex(v.seal_key), nonceSalt: hex(v.nonce_salt) });
const KEYS: DeviceKeys = { sealKey: new Uint8Array(16).fill(7), nonceSalt: new Uint8Array(8).fill(9) };

describe('seal vectors', () => {
  const vectors = sealVectors();

  it('cover every required frame size and counter', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(30);
    for (const f of [13, 20, 50, 128, 244]) expect(vectors.some((v) => v.frame_size === f)).toBe(true);
    for (const c of [1, 255, 256, 65536, 2 ** 32 - 1]) expect(vectors.some((v) => v.counter === c)).toBe(true);
  });

  it('seal to the committed frame and open back to the plaintext', () => {
    for (const v of vectors) {
      const frame = sealFrame(keysOf(v), v.counter, hex(v.plaintext), v.frame_size);
      expect(toHex(frame)).toBe(v.frame);
      expect(frame.length).toBe(v.frame_size);
      expect(frameCounter(frame)).toBe(v.counter);
      const opened = openFrame(keysOf(v), hex(v.frame), v.frame_size);
      expect(opened.counter).toBe(v.counter);
      expect(toHex(opened.plaintext)).toBe(v.plaintext);
    }
  });

  it('reject every frame with any one byte flipped, with one error and no plaintext', () => {
    let rejected = 0;
    for (const v of vectors) {
      const good = hex(v.frame);
      for (let i = 0; i < good.length; i++) {
        const bad = good.slice();
        bad[i] ^= 0xff;
        let result: unknown;
        try {
          result = openFrame(keysOf(v), bad, v.frame_size);
        } catch (e) {
          // A flipped counter may become 0, which is a counter error, not a tag check.
          if (e instanceof ArgumentError) {
            expect(e.argument).toBe('frame counter');
            expect(i).toBeLessThan(4);
          } else {
            expect(e).toBeInstanceOf(AuthenticationError);
            expect((e as Error).message).toBe('frame authentication failed');
          }
          rejected++;
          continue;
        }
        throw new Error(`flipped byte ${i} of a ${v.frame_size}-byte frame opened: ${JSON.stringify(result)}`);
      }
    }
    expect(rejected).toBe(vectors.reduce((n, v) => n + v.frame_size, 0));
  });

  it('reject a frame opened with another device\'s key or salt', () => {
    const v = vectors[5]!;
    const other = { sealKey: hex(v.seal_key).map((b) => b ^ 1), nonceSalt: hex(v.nonce_salt) };
    expect(() => openFrame(other, hex(v.frame), v.frame_size)).toThrow(AuthenticationError);
    const otherSalt = { sealKey: hex(v.seal_key), nonceSalt: hex(v.nonce_salt).map((b) => b ^ 0x80) };
    expect(() => openFrame(otherSalt, hex(v.frame), v.frame_size)).toThrow(AuthenticationError);
  });
});

describe('acknowledgements', () => {
  it('match ack.json and verify', () => {
    for (const v of ackVectors()) {
      const ack = makeAck(keysOf(v), v.counter);
      expect(toHex(ack)).toBe(v.ack);
      expect(ack.length).toBe(12);
      expect(verifyAck(keysOf(v), hex(v.ack))).toBe(v.counter);
    }
  });

  it('reject any flipped byte, a changed N, and a frame tag replayed as an ack', () => {
    for (const v of ackVectors()) {
      const good = hex(v.ack);
      for (let i = 0; i < 12; i++) {
        const bad = good.slice();
        bad[i] ^= 1;
        expect(() => verifyAck(keysOf(v), bad)).toThrow(AuthenticationError);
      }
    }
    // The domain byte separates acks from frames: a frame's tag over an empty
    // message under the same counter is not an ack.
    const nonceUplink = buildNonce(KEYS.nonceSalt, 5, DOMAIN_UPLINK);
    const nonceAck = buildNonce(KEYS.nonceSalt, 5, DOMAIN_ACK);
    expect(toHex(nonceUplink.subarray(0, 12))).toBe(toHex(nonceAck.subarray(0, 12)));
    expect(nonceUplink[12]).toBe(1);
    expect(nonceAck[12]).toBe(2);
  });

  it('reject N = 0 and wrong lengths', () => {
    const ack = makeAck(KEYS, 1);
    ack.fill(0, 0, 4);
    expect(() => verifyAck(KEYS, ack)).toThrow(AuthenticationError);
    expect(() => verifyAck(KEYS, new Uint8Array(11))).toThrow(/ack expected 12 bytes, got 11/);
    expect(() => verifyAck(KEYS, new Uint8Array(13))).toThrow(/ack expected 12 bytes, got 13/);
  });
});

describe('bad arguments are rejected with an error naming the argument', () => {
  const pt8 = new Uint8Array(8);
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['short seal key', () => sealFrame({ ...KEYS, sealKey: new Uint8Array(15) }, 1, pt8, 20), /^sealKey expected 16 bytes, got 15$/],
    ['long seal key', () => sealFrame({ ...KEYS, sealKey: new Uint8Array(17) }, 1, pt8, 20), /^sealKey expected 16 bytes, got 17$/],
    ['seal key as string', () => sealFrame({ ...KEYS, sealKey: 'abc' as unknown as Uint8Array }, 1, pt8, 20), /^sealKey expected a Uint8Array, got a string/],
    ['empty nonce salt', () => sealFrame({ ...KEYS, nonceSalt: new Uint8Array(0) }, 1, pt8, 20), /^nonceSalt expected 8 bytes, got 0$/],
    ['9-byte nonce salt', () => openFrame({ ...KEYS, nonceSalt: new Uint8Array(9) }, new Uint8Array(20), 20), /^nonceSalt expected 8 bytes, got 9$/],
    ['counter 0', () => sealFrame(KEYS, 0, pt8, 20), /^counter expected 1\.\.4294967295, got 0$/],
    ['counter 2^32', () => sealFrame(KEYS, 2 ** 32, pt8, 20), /^counter expected 1\.\.4294967295, got 4294967296$/],
    ['counter -1', () => sealFrame(KEYS, -1, pt8, 20), /^counter expected 1\.\.4294967295, got -1$/],
    ['counter 1.5', () => sealFrame(KEYS, 1.5, pt8, 20), /^counter expected an integer, got 1\.5$/],
    ['counter NaN', () => sealFrame(KEYS, NaN, pt8, 20), /^counter expected an integer, got NaN$/],
    ['counter as string', () => sealFrame(KEYS, '1' as unknown as number, pt8, 20), /^counter expected an integer, got a string/],
    ['frame size 12', () => sealFrame(KEYS, 1, new Uint8Array(0), 12), /^frameSize expected 13\.\.244, got 12$/],
    ['frame size 245', () => sealFrame(KEYS, 1, new Uint8Array(233), 245), /^frameSize expected 13\.\.244, got 245$/],
    ['frame size 20.5', () => plaintextLength(20.5), /^frameSize expected an integer/],
    ['plaintext too short', () => sealFrame(KEYS, 1, new Uint8Array(7), 20), /^plaintext expected 8 bytes for frame size 20 \(F - 12\), got 7; pad with zeros$/],
    ['plaintext too long', () => sealFrame(KEYS, 1, new Uint8Array(9), 20), /^plaintext expected 8 bytes.*got 9/],
    ['plaintext as array', () => sealFrame(KEYS, 1, [0, 0, 0, 0, 0, 0, 0, 0] as unknown as Uint8Array, 20), /^plaintext expected a Uint8Array, got an array$/],
    ['frame of the wrong size', () => openFrame(KEYS, new Uint8Array(21), 20), /^frame expected 20 bytes \(the device's frame size\), got 21$/],
    ['frame with counter 0', () => openFrame(KEYS, new Uint8Array(20), 20), /^frame counter expected 1\.\.4294967295, got 0$/],
    ['frame size out of range on open', () => openFrame(KEYS, new Uint8Array(300), 300), /^frameSize expected 13\.\.244, got 300$/],
    ['frameCounter of 5 bytes', () => frameCounter(new Uint8Array(5)), /^frame expected at least 13 bytes, got 5$/],
    ['ack counter 0', () => makeAck(KEYS, 0), /^counter expected 1\.\.4294967295, got 0$/],
    ['ack counter 2^32', () => makeAck(KEYS, 2 ** 32), /^counter expected 1\.\.4294967295/],
    ['ack with a bad key', () => makeAck({ ...KEYS, sealKey: new Uint8Array(8) }, 1), /^sealKey expected 16 bytes, got 8$/],
    ['nonce with domain 3', () => buildNonce(KEYS.nonceSalt, 1, 3), /^domain expected 0x01 \(uplink\) or 0x02 \(ack\), got 3$/],
    ['nonce with counter 0', () => buildNonce(KEYS.nonceSalt, 0, DOMAIN_UPLINK), /^counter expected 1\.\.4294967295, got 0$/],
    ['kcv of a 32-byte key', () => keyCheckValue(new Uint8Array(32)), /^sealKey expected 16 bytes, got 32$/],
    ['keys null', () => sealFrame(null as unknown as DeviceKeys, 1, pt8, 20), /^keys expected an object/],
  ];
  for (const [name, call, message] of cases) {
    it(name, () => {
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ArgumentError);
      expect((error as Error).message).toMatch(message);
    });
  }
});

describe('key check value', () => {
  it('is the first 3 bytes of AES-128-ECB(seal_key, zero block)', () => {
    // AES-128 under the all-zero key maps the zero block to 66e94bd4ef8a2c3b884cfa59ca342b2e
    // (the first entry of NIST's AESAVS GFSbox/VarKey tables).
    expect(toHex(keyCheckValue(new Uint8Array(16)))).toBe('66e94b');
  });
});
