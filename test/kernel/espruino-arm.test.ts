// Opt-in (ESPRUINO_ARM_BIN, the 32-bit ARM build of Espruino 2v29 under qemu-arm, ../shared/espruino):
// the committed aes-ccm.bin, read from Storage and copied into a flat string (E.getAddressOf of a
// Storage string is 0 on Linux), called through the interpreter's own E.nativeCall with 4 int
// arguments, reproduces every frame of seal.json and every ack of ack.json and checks acks.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import { kernelFiles } from '../../kernel/build.js';
import { startEspruino, writeStorage, type Session } from '../helpers/espruino-process.js';
import { ackVectors, sealVectors } from '../helpers/vectors.js';

const BIN = process.env.ESPRUINO_ARM_BIN;
const e = IMAGE.entries;

// ES5 for the interpreter. Addresses are read again before every call: defragmentation may move flat
// strings. The context (CTX_SIZE, 188 bytes) and io (600) are flat; a 16-byte Uint8Array would not be.
const SCRIPT = `
var K = E.toFlatString(require("Storage").read("${IMAGE.file}"));
var ctx = new Uint8Array(${IMAGE.constants.CTX_SIZE}), io = new Uint8Array(600);
function call(off, a, b, c, d) { return E.nativeCall(E.getAddressOf(K, true) + off + 1, "int(int,int,int,int)")(a, b, c, d); }
function at(o) { return E.getAddressOf(io, true) + o; }
function cx() { return E.getAddressOf(ctx, true); }
function put(h, o) { for (var i = 0; i < h.length; i += 2) io[o + i / 2] = parseInt(h.substr(i, 2), 16); return h.length / 2; }
function hex(o, n) { var s = ""; for (var i = 0; i < n; i++) s += (io[o + i] + 256).toString(16).substr(1); return s; }
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
// The Linux build reads console input only while something is pending on its event loop.
setInterval(function () {}, 50);
print("ready");
`;

describe.skipIf(!BIN)('aes-ccm kernel through E.nativeCall on Espruino 2v29 for 32-bit ARM (ESPRUINO_ARM_BIN)', () => {
  let session: Session;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kernel-espruino-'));
    writeStorage(BIN!, dir, { [IMAGE.file]: new Uint8Array(readFileSync(kernelFiles('aes-ccm').bin)) });
    writeFileSync(join(dir, 'kernel.js'), SCRIPT);
    session = startEspruino(BIN!, dir, 'kernel.js');
    await session.waitFor((l) => l === 'ready', 60_000);
  }, 90_000);
  afterAll(async () => {
    await session?.stop();
  });

  const ask = async (id: number, command: string): Promise<string> => {
    session.send(command);
    const line = await session.waitFor((l) => l.startsWith(`R${id} `), 30_000);
    return line.slice(`R${id} `.length);
  };

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
