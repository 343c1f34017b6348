// The set-up of the opt-in tests that call a committed kernel image through the interpreter's own
// E.nativeCall on Espruino 2v29's 32-bit ARM build under qemu-arm ($ESPRUINO_ARM_BIN, ../shared/espruino):
// a fresh directory whose Storage holds the images, a script run there that prints "ready", and a way
// to ask it one question at a time. Used by test/kernel/espruino-arm.test.ts (aes-ccm) and
// test/kernel/hkdf-sha256-espruino.test.ts.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelFiles } from '../../kernel/build.js';
import { startEspruino, writeStorageInPieces, type Session } from './espruino-process.js';

/** The 32-bit ARM interpreter binary, or undefined when the opt-in tests are to be skipped. */
export const ESPRUINO_ARM_BIN: string | undefined = process.env.ESPRUINO_ARM_BIN;

/**
 * ES5 for the interpreter, to start a script with: K, the image `file` read from Storage and copied
 * into a flat string (E.getAddressOf of a Storage string is 0 on Linux); io, a flat Uint8Array of
 * `ioBytes` (a small typed array would not be flat); call(off, a, b, c, d), the entry at byte offset
 * off called in Thumb mode with 4 int arguments; at(o), the address of io[o]; put(h, o), the hex h
 * written at io[o], returning its byte length; hex(o, n), n bytes of io from o as hex. Addresses are
 * read again before every call: defragmentation may move flat strings.
 */
export function kernelPrelude(file: string, ioBytes: number): string {
  return `
var K = E.toFlatString(require("Storage").read(${JSON.stringify(file)}));
var io = new Uint8Array(${ioBytes});
function call(off, a, b, c, d) { return E.nativeCall(E.getAddressOf(K, true) + off + 1, "int(int,int,int,int)")(a, b, c, d); }
function at(o) { return E.getAddressOf(io, true) + o; }
function put(h, o) { for (var i = 0; i < h.length; i += 2) io[o + i / 2] = parseInt(h.substr(i, 2), 16); return h.length / 2; }
function hex(o, n) { var s = ""; for (var i = 0; i < n; i++) s += (io[o + i] + 256).toString(16).substr(1); return s; }
`;
}

// The Linux build reads console input only while something is pending on its event loop.
const READY = `
setInterval(function () {}, 50);
print("ready");
`;

export interface ArmSession {
  session: Session;
  /** Sends `command` and resolves with the rest of the first line that starts "R<id> " (the script prints its answers so). */
  ask(id: number, command: string, ms?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts `bin` in a fresh directory whose Storage holds the committed image of each kernel named in
 * `kernels` (kernel/<name>/<name>.bin, under its own file name <name>.bin, as IMAGE.file) and any other
 * `files` (written in 1 KB pieces, which the 2,630-variable build needs), running `script` followed by
 * the lines that keep the console read and print "ready"; resolves once it has.
 */
export async function startArmKernels(bin: string, kernels: string[], script: string, files: Record<string, Uint8Array> = {}): Promise<ArmSession> {
  const dir = mkdtempSync(join(tmpdir(), 'kernel-espruino-arm-'));
  const storage: Record<string, Uint8Array> = { ...files };
  for (const name of kernels) storage[`${name}.bin`] = new Uint8Array(readFileSync(kernelFiles(name).bin));
  writeStorageInPieces(bin, dir, storage);
  writeFileSync(join(dir, 'kernel.js'), script + READY);
  const session = startEspruino(bin, dir, 'kernel.js');
  try {
    await session.waitFor((l) => l === 'ready', 60_000);
  } catch (e) {
    await session.stop();
    throw e;
  }
  return {
    session,
    ask: async (id, command, ms = 60_000) => {
      session.send(command);
      const line = await session.waitFor((l) => l.startsWith(`R${id} `), ms);
      return line.slice(`R${id} `.length);
    },
    stop: () => session.stop(),
  };
}
