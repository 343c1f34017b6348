// Opt-in (ESPRUINO_ARM_BIN, the 32-bit ARM build of Espruino 2v29 under qemu-arm, ../shared/espruino):
// the committed aes-ccm.bin, read from Storage and copied into a flat string (E.getAddressOf of a
// Storage string is 0 on Linux), called through the interpreter's own E.nativeCall with 4 int
// arguments, reproduces every frame of seal.json and every ack of ack.json and checks acks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import { ESPRUINO_ARM_BIN as BIN, kernelPrelude, startArmKernels, type ArmSession } from '../helpers/espruino-arm.js';
import { ackVectors, sealVectors } from '../helpers/vectors.js';

const e = IMAGE.entries;

// ES5 for the interpreter (K, io, call, at, put, hex: kernelPrelude). The context (CTX_SIZE, 188
// bytes) is flat too; io holds key 0, salt 16, plaintext 32, frame or ack 288.
const SCRIPT = `${kernelPrelude(IMAGE.file, 600)}
var ctx = new Uint8Array(${IMAGE.constants.CTX_SIZE});
function cx() { return E.getAddressOf(ctx, true); }
function init(key, salt, n) { put(key, 0); put(salt, 16); return call(${e.aes_ccm_init}, cx(), at(0), at(16), n); }
function S(id, key, salt, counter, pt) {
  var n = pt.length / 2, r = init(key, salt, n);
  put(pt, 32);
  r = r || call(${e.aes_ccm_seal}, cx(), at(32), at(288), counter | 0);
  print("R" + id + " " + r + " " + hex(288, n + 12));
}
function A(id, key, salt, counter) {
  var r = init(key, salt, 1) || call(${e.aes_ccm_ack}, cx(), at(288), counter | 0, 0);
  var ok = call(${e.aes_ccm_ack_check}, cx(), at(288), 0, 0);
  io[299] ^= 1;
  var forged = call(${e.aes_ccm_ack_check}, cx(), at(288), 0, 0);
  io[299] ^= 1;
  print("R" + id + " " + r + " " + hex(288, 12) + " " + ok + " " + forged);
}
`;

describe.skipIf(!BIN)('aes-ccm kernel through E.nativeCall on Espruino 2v29 for 32-bit ARM (ESPRUINO_ARM_BIN)', () => {
  let arm: ArmSession;
  beforeAll(async () => {
    arm = await startArmKernels(BIN!, ['aes-ccm'], SCRIPT);
  }, 90_000);
  afterAll(async () => {
    await arm?.stop();
  });

  const ask = (id: number, command: string): Promise<string> => arm.ask(id, command, 30_000);

  it('seals every frame of seal.json', async () => {
    let id = 0;
    for (const v of sealVectors()) {
      id++;
      expect(await ask(id, `S(${id},"${v.seal_key}","${v.nonce_salt}",${v.counter},"${v.plaintext}")`)).toBe(`${v.frame.length / 2} ${v.frame}`);
    }
  }, 300_000);

  it('makes every ack of ack.json, accepts it and rejects it with a bit flipped', async () => {
    let id = 1000;
    for (const v of ackVectors()) {
      id++;
      expect(await ask(id, `A(${id},"${v.seal_key}","${v.nonce_salt}",${v.counter})`)).toBe(`12 ${v.ack} 1 0`);
    }
  }, 300_000);
});
