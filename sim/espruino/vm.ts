// Runs a firmware bundle from dist/ under Node in a bare vm context whose only
// globals are what the bundle would find on the interpreter: `print`,
// `getTime`, `setTimeout`, `clearTimeout`, `require("crypto")` (the AES
// stand-in) and whatever the caller adds. It
// proves the minified bundle works; only the real interpreter proves it parses
// there (README, "Checking a bundle on Espruino").
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { createEspruinoAes, type StandInOptions } from './aes.js';
import { kernelMachine } from './kernel.js';
import { crc32 } from '../../protocol/wire/crc32.js';

/**
 * `storage` is what require("Storage").read finds (e.g. the kernel file, sealpost.krn); E carries
 * the kernel stand-in (sim/espruino/kernel.ts) and CRC32.
 */
export function runBundle(file: string, globals: Record<string, unknown>, aesOptions: StandInOptions['features'] = {}, storage: Record<string, Uint8Array> = {}): string[] {
  const lines: string[] = [];
  const print = (text: unknown) => lines.push(String(text));
  const aes = createEspruinoAes({ features: aesOptions, print: (l) => lines.push(l) });
  const files = new Map(Object.entries(storage));
  const machine = kernelMachine({ files: () => files });
  const context = vm.createContext({
    print,
    // The interpreter's own; hal/espruino/globals.ts hands them on as values at load.
    getTime: () => performance.now() / 1000,
    setTimeout,
    clearTimeout,
    require: (name: string) => {
      if (name === 'crypto') return { AES: aes };
      if (name === 'Storage') return { read: machine.read };
      throw new Error(`Module ${name} not found`);
    },
    E: { ...machine.E, CRC32: (s: string | Uint8Array) => crc32(typeof s === 'string' ? Uint8Array.from(Buffer.from(s, 'latin1')) : s) },
    Uint8Array,
    Uint32Array,
    ArrayBuffer,
    Error,
    // Espruino has atob natively; the plain-JS AES decodes its S-box with it.
    atob: (b64: string) => Buffer.from(b64, 'base64').toString('latin1'),
    ...globals,
  });
  vm.runInContext(readFileSync(file, 'utf8'), context, { filename: file });
  return lines;
}
