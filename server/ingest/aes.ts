// AES-128 under many keys in one call: the block cipher under every device's
// CCM on the request path (device-cipher.ts). Two routes, byte-identical
// (test/server/ingest/aes.test.ts): the addon native/aes.c, which re-keys one
// OpenSSL context per key inside a single call, and node:crypto, one cipher
// object per key. Both run OpenSSL's AES, the code node:crypto always ran
// (AES-NI or vector-permutation AES: constant time); the addon only removes
// the ~5 us of object making and calls per key around it, which a request
// naming 100 devices paid 100 times (docs/server.md, "Junk uplinks";
// docs/decisions.md, "Junk uplinks, fourth pass"). The addon is built by
// `npm run build:native` (and at install); without it the server runs the
// node:crypto route and says so at start.
import { createCipheriv } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../../cli/package-root.js';

const BLOCK = 16;

export interface ManyKeyAes {
  /** 'native' (native/aes.c) or 'node:crypto'. */
  readonly route: 'native' | 'node:crypto';
  /**
   * AES-128-ECB: key i (keys[16i..16i+16)) encrypts the next counts[i]
   * blocks of input into the same place of output, which may be input
   * itself. Lengths are checked: 16 bytes per count, 16 per block.
   */
  encrypt(keys: Uint8Array, counts: Uint32Array, input: Uint8Array, output: Uint8Array): void;
}

/** The addon's file, from the package root (the same from the sources and from build/). */
export function addonPath(): string {
  return join(packageRoot(), 'native', 'build', 'Release', 'sealpost_aes.node');
}

/** The addon's route; throws when it is not built or does not load (the message says which). */
export function nativeAes(): ManyKeyAes {
  const file = addonPath();
  let addon: { encrypt: ManyKeyAes['encrypt'] };
  try {
    addon = createRequire(import.meta.url)(file) as typeof addon;
  } catch (e) {
    throw new Error(`the AES addon ${file} does not load (${(e as Error).message.split('\n')[0]}); build it with \`npm run build:native\``);
  }
  return { route: 'native', encrypt: addon.encrypt };
}

/** The node:crypto route: one AES-128-ECB object per key with blocks. */
export function nodeCryptoAes(): ManyKeyAes {
  return {
    route: 'node:crypto',
    encrypt(keys, counts, input, output) {
      let blocks = 0;
      for (const c of counts) blocks += c;
      if (keys.length !== counts.length * BLOCK) throw new RangeError('keys: expected 16 bytes per entry of counts');
      if (input.length !== blocks * BLOCK) throw new RangeError('input: expected 16 bytes per block that counts names');
      if (output.length !== input.length) throw new RangeError('output: expected as many bytes as input');
      let at = 0;
      for (let i = 0; i < counts.length; i++) {
        const len = counts[i]! * BLOCK;
        if (len === 0) continue;
        const ecb = createCipheriv('aes-128-ecb', keys.subarray(i * BLOCK, (i + 1) * BLOCK), null).setAutoPadding(false);
        output.set(ecb.update(input.subarray(at, at + len)), at);
        at += len;
      }
    },
  };
}

let chosen: { aes: ManyKeyAes; fallback: string | undefined } | undefined;

/**
 * The route the server uses: the addon when it loads, else node:crypto with
 * the reason (the server logs it once at start). SEALPOST_AES=node:crypto
 * forces the second (for comparison and tests).
 */
export function deviceAes(): { aes: ManyKeyAes; fallback: string | undefined } {
  if (chosen) return chosen;
  if (process.env.SEALPOST_AES === 'node:crypto') {
    chosen = { aes: nodeCryptoAes(), fallback: 'SEALPOST_AES=node:crypto' };
    return chosen;
  }
  try {
    chosen = { aes: nativeAes(), fallback: undefined };
  } catch (e) {
    chosen = { aes: nodeCryptoAes(), fallback: (e as Error).message };
  }
  return chosen;
}
