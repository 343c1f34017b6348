// Opt-in (ESPRUINO_ARM_BIN, as test/firmware/kernel-arm.test.ts): a board bundle with RENEWAL on can
// still make a CCM engine on the compiled kernel after boot, as firmware/renewal.ts does for the new
// key when RENEW_ACK arrives, and that engine gives RENEW_ACK's domain-3 tag; the same bundle with
// RENEWAL off (today's boards) frees the engine's helpers after boot, as the build intends
// (rollup.config.mjs, BOOT_ONLY and CCM_AFTER_BOOT). The bundles are the unmangled builds
// (SEALPOST_BUNDLE_NAMES=1) so a timer after boot can call `kernelEngine` by its name, with the
// kernel's entries made the way the backend makes them.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIRMWARE_VERSION } from '../../firmware/version.js';
import { IMAGE } from '../../kernel/aes-ccm/image.js';
import { makeAck, toHex } from '../../protocol/index.js';
import { counterLogImage } from '../../protocol/wire/counter-log.js';
import { KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { kernelImage } from '../../sim/espruino/kernel.js';
import { prelude } from '../helpers/board-prelude.js';
import { flashLikeABoard, startEspruino, writeStorageInPieces } from '../helpers/espruino-process.js';
import { provisionSim } from '../helpers/sim-fleet.js';

const BIN = process.env.ESPRUINO_ARM_BIN;
const ROOT = new URL('../../', import.meta.url).pathname;

function build(renewal: boolean): string {
  execFileSync(process.execPath, ['--import', 'tsx', 'node_modules/rollup/dist/bin/rollup', '-c', 'rollup.config.mjs'], {
    cwd: ROOT,
    env: { ...process.env, SEALPOST_BUNDLE_NAMES: '1', SEALPOST_BOARD_RENEWAL: renewal ? '1' : '' },
    stdio: 'ignore',
    timeout: 300_000,
  });
  return readFileSync(join(ROOT, renewal ? 'dist/names/renewal/mdbt42q.js' : 'dist/names/mdbt42q.js'), 'utf8');
}

/** Boots `bundle` (MDBT42Q) and, after boot, makes a kernel engine and a domain-3 framer for `v`: the line it prints. */
async function renewTagAfterBoot(bundle: string, v: { seal_key: string; nonce_salt: string; epoch: number }): Promise<string[]> {
  const prov = provisionSim('SP-MDBT42Q-RNWB', 20);
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-renewal-boot-only-'));
  writeStorageInPieces(BIN!, dir, { 'sealpost.dev': prov.deviceFile, 'sealpost.ctr': counterLogImage(8192), [KERNEL_FILE_NAME]: kernelImage(), '.bootcde': new Uint8Array(Buffer.from(bundle)) });
  const e = IMAGE.entries;
  // SP_ST is the prelude's unscaled setTimeout; the device has booted and sealed by then.
  const check = `
SP_ST(function () { try { var c = E.toFlatString(require("Storage").read(${JSON.stringify(KERNEL_FILE_NAME)})); var f = function (o) { return E.nativeCall(o + 1, "int(int,int,int,int)", c); };
var k = [f(${e.aes_ccm_init}), f(${e.aes_ccm_seal}), f(${e.aes_ccm_ack}), f(${e.aes_block})], t = new Uint8Array(12);
kernelEngine(E, k, ${IMAGE.constants.CTX_SIZE}, spBytes("${v.seal_key}"), 8).framer(spBytes("${v.nonce_salt}"), 0, t, 3)(${v.epoch}, new Uint8Array(0), 0); print("RENEWTAG " + spHex(t)); } catch (x) { print("RENEWERR " + x.message); } }, 4000);`;
  const ack = toHex(makeAck(prov.keys, 1));
  flashLikeABoard(BIN!, dir, {}, prelude({ 1: ack }, ack, {}) + check);
  const session = startEspruino(BIN!, dir);
  try {
    await session.waitFor((l) => /^RENEW(TAG|ERR) /.test(l), 240_000);
  } finally {
    await session.stop();
  }
  expect(session.lines).toContain(`sealpost ${prov.serial} kcv ${toHex(prov.kcv)} fw ${FIRMWARE_VERSION}`);
  return session.lines.filter((l) => /^RENEW(TAG|ERR) /.test(l));
}

describe.runIf(BIN)('a board bundle with RENEWAL on keeps what a CCM engine needs after boot ($ESPRUINO_ARM_BIN)', () => {
  const v = (JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as { renew_ack: { seal_key: string; nonce_salt: string; epoch: number; renew_ack: string }[] }).renew_ack[1]!;

  it('RENEWAL on: the MDBT42Q bundle makes a kernel engine after boot and gives renewal.json\'s RENEW_ACK tag; RENEWAL off: the helpers are gone after boot', async () => {
    const on = await renewTagAfterBoot(build(true), v);
    expect(on).toEqual([`RENEWTAG ${v.renew_ack.slice(2, 10)}${v.renew_ack.slice(16)}`]);
    const off = await renewTagAfterBoot(build(false), v);
    expect(off).toEqual(['RENEWERR Function "kernelEngine" not found!']);
  }, 900_000);
});
