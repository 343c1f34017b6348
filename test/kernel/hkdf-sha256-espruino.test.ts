// Opt-in (ESPRUINO_ARM_BIN, the 32-bit ARM build of Espruino 2v29 under qemu-arm, ../shared/espruino):
// the committed hkdf-sha256.bin, read from Storage and copied into a flat string, called through the
// interpreter's own E.nativeCall with 4 int arguments in the order the renewal glue (issue #17, item 3)
// will use: hpke_extract_and_expand, hpke_key_schedule, hpke_export. It reproduces RFC 9180 A.1.2
// (PSK mode) and chain_0 of every device of test/vectors/renewal.json (base mode), and refuses an
// info of 65 bytes.
import { x25519 } from '@noble/curves/ed25519.js';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE } from '../../kernel/hkdf-sha256/image.js';
import { ESPRUINO_ARM_BIN as BIN, kernelPrelude, startArmKernels, type ArmSession } from '../helpers/espruino-arm.js';

const e = IMAGE.entries;
const c = IMAGE.constants;

// ES5 for the interpreter (K, io, call, at, put, hex: kernelPrelude). io: dh 0, enc 32, pkR 64,
// shared secret 96, info (LP) 128, psk block 200, context block 300, exporter context (LP) 440,
// output 480.
const SCRIPT = `${kernelPrelude(IMAGE.file, 600)}
function lp(h, o) { io[o] = put(h, o + 1); }
function R(id, aead, dh, enc, pkr, info, psk, pskId, ctxs, Ls) {
  put(dh, 0); put(enc, 32); put(pkr, 64);
  var r = call(${e.hpke_extract_and_expand}, at(96), at(0), at(32), at(64));
  var out = [r, hex(96, 32)];
  lp(info, 128);
  if (psk) { put(psk, 200); lp(pskId, 232); }
  put(aead, 300 + ${c.CTX_AEAD_ID});
  r = call(${e.hpke_key_schedule}, at(300), at(96), at(128), psk ? at(200) : 0);
  out.push(r, hex(300 + ${c.CTX_EXPORTER_SECRET}, 32));
  for (var i = 0; i < ctxs.length; i++) {
    lp(ctxs[i], 440);
    r = call(${e.hpke_export}, at(480), at(300), at(440), Ls[i]);
    out.push(r, hex(480, Ls[i]));
  }
  for (i = 0; i < io.length; i++) io[i] = 0;
  print("R" + id + " " + out.join(" "));
}
`;

describe.skipIf(!BIN)('hkdf-sha256 kernel through E.nativeCall on Espruino 2v29 for 32-bit ARM (ESPRUINO_ARM_BIN)', () => {
  let arm: ArmSession;
  beforeAll(async () => {
    arm = await startArmKernels(BIN!, ['hkdf-sha256'], SCRIPT);
  }, 90_000);
  afterAll(async () => {
    await arm?.stop();
  });

  const ask = (id: number, command: string): Promise<string> => arm.ask(id, command, 60_000);

  it('runs RFC 9180 A.1.2 (PSK mode) call by call', async () => {
    const skRm = 'c5eb01eb457fe6c6f57577c5413b931550a162c71a03ac8d196babbd4e5ce0fd';
    const enc = '0ad0950d9fb9588e59690b74f1237ecdf1d775cd60be2eca57af5a4b0471c91b';
    const dh = Buffer.from(x25519.getSharedSecret(Buffer.from(skRm, 'hex'), Buffer.from(enc, 'hex'))).toString('hex');
    const command = `R(1,"0001","${dh}","${enc}","9fed7e8c17387560e92cc6462a68049657246a09bfa8ade7aefe589672016366","4f6465206f6e2061204772656369616e2055726e","0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82","456e6e796e20447572696e206172616e204d6f726961",["","00","54657374436f6e74657874"],[32,32,32])`;
    expect((await ask(1, command)).split(' ')).toEqual([
      '0', '727699f009ffe3c076315019c69648366b69171439bd7dd0807743bde76986cd',
      '0', '3d76025dbbedc49448ec3f9080a1abab6b06e91c0b11ad23c912f043a0ee7655',
      '0', 'dff17af354c8b41673567db6259fd6029967b4e1aad13023c2ae5df8f4f43bf6',
      '0', '6a847261d8207fe596befb52928463881ab493da345b10e1dcc645e3b94e2d95',
      '0', '8aff52b45a1be3a734bc7a41e20b4e055ad4c4d22104b0c20285a7c4302401cd',
    ]);
  }, 120_000);

  it('derives chain_0 of every device of test/vectors/renewal.json (base mode) and refuses a 65-byte info', async () => {
    const { provision } = JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as {
      provision: { ingest_public_key: string; serial: string; ephemeral_private_key: string; enc: string; chain_0: string }[];
    };
    let id = 10;
    for (const p of provision) {
      id++;
      const dh = Buffer.from(x25519.getSharedSecret(Buffer.from(p.ephemeral_private_key, 'hex'), Buffer.from(p.ingest_public_key, 'hex'))).toString('hex');
      const info = Buffer.from(`sealpost/v1 device ${p.serial}`).toString('hex');
      const answer = await ask(id, `R(${id},"ffff","${dh}","${p.enc}","${p.ingest_public_key}","${info}",0,"",["${Buffer.from('sealpost/v1 chain').toString('hex')}"],[32])`);
      expect(answer.split(' ').slice(4)).toEqual(['0', p.chain_0]);
    }
    const answer = await ask(99, `R(99,"ffff","${'11'.repeat(32)}","${'22'.repeat(32)}","${'33'.repeat(32)}","${'ab'.repeat(65)}",0,"",[],[])`);
    expect(answer.split(' ')[2]).toBe(String(-c.ERR_LENGTH));
  }, 300_000);
});
