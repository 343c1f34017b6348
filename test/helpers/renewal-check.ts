// dist/renewal-check.js (firmware/targets/renewal-check.ts: the board's renewal crypto with console
// commands) on one of Espruino's Linux builds, with the renewal kernel files in Storage: shared by
// test/firmware/renewal-crypto-arm.test.ts and bench/renewal-crypto-arm.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CURVE_KERNEL_FILE_NAME, HKDF_KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { kernelFiles } from '../../kernel/build.js';
import { startEspruino, writeStorageInPieces, type Session } from './espruino-process.js';

export const RENEWAL_CHECK_BUNDLE = new URL('../../dist/renewal-check.js', import.meta.url).pathname;

/** The committed images, as the factory writes them (sealpost.c25, sealpost.hkd). */
export const curveKernel = (): Uint8Array => new Uint8Array(readFileSync(kernelFiles('curve25519').bin));
export const hkdfKernel = (): Uint8Array => new Uint8Array(readFileSync(kernelFiles('hkdf-sha256').bin));

/**
 * The .boot0 that makes Storage.read return the kernel files as flat strings with an address, as a
 * Storage file in memory-mapped flash is on an nRF52 (the Linux builds' own Storage strings have
 * address 0, so the backend would copy them into RAM). The copies are made before the bundle runs:
 * what a measurement sees beside them is what a board would hold.
 */
export const KERNELS_IN_PLACE = `var SP_S = require("Storage"), SP_RD = SP_S.read, SP_K = {};
SP_K[${JSON.stringify(CURVE_KERNEL_FILE_NAME)}] = E.toFlatString(SP_RD.call(SP_S, ${JSON.stringify(CURVE_KERNEL_FILE_NAME)}));
SP_K[${JSON.stringify(HKDF_KERNEL_FILE_NAME)}] = E.toFlatString(SP_RD.call(SP_S, ${JSON.stringify(HKDF_KERNEL_FILE_NAME)}));
print("KERNELS at " + E.getAddressOf(SP_K[${JSON.stringify(CURVE_KERNEL_FILE_NAME)}], true) + " " + E.getAddressOf(SP_K[${JSON.stringify(HKDF_KERNEL_FILE_NAME)}], true));
SP_S.read = function (n) { return SP_K[n] || SP_RD.call(SP_S, n); };`;

export interface RenewalInputs {
  ingest_public_key: string;
  info: string;
  psk: string;
  psk_id: string;
  ikm: string;
}

export interface RenewalCheck {
  session: Session;
  dir: string;
  /** Sends one command made for its id and resolves with the words of its "R<id> ..." answer. */
  ask(command: (id: number) => string): Promise<string[]>;
  /** setupPskS: [88 bytes hex | "ERR" message..., ms, usage before, at the deepest kernel call (meter) or 0, after]. */
  renew(v: RenewalInputs, meter?: boolean): Promise<string[]>;
  /** verify: ["1" | "0" | "ERR" message..., ms]. */
  verify(pk: string, msg: string, sig: string): Promise<string[]>;
}

/** One interpreter (`bin`) with `files` in Storage and the check bundle as .bootcde; `boot0` runs first. */
export async function bootRenewalCheck(bin: string, files: Record<string, Uint8Array>, boot0?: string): Promise<RenewalCheck> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-renewal-check-'));
  writeStorageInPieces(bin, dir, { ...files, '.bootcde': new Uint8Array(readFileSync(RENEWAL_CHECK_BUNDLE)) });
  if (boot0 !== undefined) {
    writeFileSync(join(dir, 'setup.js'), `require("Storage").write(".boot0", ${JSON.stringify(boot0)});\n`);
    execFileSync(bin, ['setup.js'], { cwd: dir, input: '', timeout: 60_000, killSignal: 'SIGKILL' });
  }
  const session = startEspruino(bin, dir);
  try {
    await session.waitFor((l) => l === 'RENEWAL CHECK READY', 90_000);
  } catch (e) {
    await session.stop();
    throw e;
  }
  let id = 0;
  const ask = async (command: (id: number) => string): Promise<string[]> => {
    id++;
    // DLE first: the line runs without echo and stays out of the console's history, as the espruino
    // CLI sends code (2v29 jsinteractive.c); kept, the hex of many commands fragments a 2,630-variable
    // heap until no flat block for a 1,023-byte message is left (measured: "renewal has no flat RAM").
    session.send('\x10' + command(id));
    const line = await session.waitFor((l) => l.startsWith(`R${id} `), 120_000);
    return line.slice(`R${id} `.length).split(' ');
  };
  return {
    session,
    dir,
    ask,
    renew: (v, meter = false) => ask((i) => `RENEW(${i},"${v.ingest_public_key}","${v.info}","${v.psk}","${v.psk_id}","${v.ikm}",${meter})`),
    verify: (pk, msg, sig) => ask((i) => `VERIFY(${i},"${pk}","${msg}","${sig}")`),
  };
}
