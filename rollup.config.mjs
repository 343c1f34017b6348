// One minified bundle per firmware entry, compiled to ES5 for the Espruino
// interpreter (../shared/espruino.md). `npm run build` then runs the bundle
// checker (tools/espruino-check/checker.ts) over every file in dist/.
import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';
import { readFileSync } from 'node:fs';
import { fixBareReturns } from './tools/espruino-return.ts';
import { BOARDS as PROFILES, boardProfile } from './boards/index.ts';

// Espruino 2v29 cannot parse `if(x)return}` (an argument-less return as the
// whole body of if/else/for right before a brace), which is what terser
// writes: put the semicolon back (tools/espruino-return.ts). The checker
// fails the build if any remain. Run under tsx so this file can import TS.
function espruinoReturns() {
  return {
    name: 'espruino-returns',
    renderChunk(code) {
      return { code: fixBareReturns(code), map: null };
    },
  };
}

// Fails the build when a board bundle outgrows its profile's bundleBytes
// (docs/firmware.md, "Bundle size"), the way a size budget should: before
// anyone flashes it.
function sizeBudget(board) {
  const limit = boardProfile(board).bundleBytes;
  return {
    name: 'size-budget',
    generateBundle(_options, bundle) {
      for (const chunk of Object.values(bundle)) {
        const size = Buffer.byteLength(chunk.code ?? '', 'utf8');
        if (limit !== undefined && size > limit) {
          this.error(`${chunk.fileName} is ${size} bytes, over the ${limit} bytes its board allows (bundleBytes in boards/${board}.ts): make it smaller before flashing it`);
        }
      }
    },
  };
}

// A native-kernel bundle runs the compiled AES-CCM kernel (kernel/aes-ccm/), which the factory
// writes as the Storage file sealpost.krn, and a board that renews with the kernels runs
// kernel/curve25519/ and kernel/hkdf-sha256/ (sealpost.c25, sealpost.hkd): put the committed images
// next to the bundle in dist/, where `sealpost flash` looks for them (docs/factory.md).
function kernelImage(board) {
  return {
    name: 'kernel-image',
    generateBundle() {
      const profile = boardProfile(board);
      const kernels = [...(profile.crypto === 'native-kernel' ? ['aes-ccm'] : []), ...(profile.renewalCrypto === 'native-kernel' ? ['curve25519', 'hkdf-sha256'] : [])];
      for (const k of kernels) this.emitFile({ type: 'asset', fileName: `${k}.bin`, source: readFileSync(`kernel/${k}/${k}.bin`) });
    },
  };
}

// hal/features.ts per bundle: the switches a build turns off (terser
// then drops the code they guard). RENEWAL: no board bundle carries key
// renewal yet (docs/firmware.md, "Key renewal on the device"), so it is off
// for them (and for bench-seal, whose figures are the boards'); on for the
// bundles that check the crypto on the interpreter (crypto-selftest runs
// RENEW_ACK through every backend, test/firmware/kernel-arm.test.ts).
// SEALPOST_BOARD_RENEWAL=1 writes the board bundles with RENEWAL on into
// dist/renewal/ (with SEALPOST_BUNDLE_NAMES=1, dist/names/renewal/), with no
// size budget: the trial build of docs/firmware.md, "Renewal on the
// interpreter, end to end" (test/firmware/renewal-boot-only-arm.test.ts).
const BOARD_RENEWAL = process.env.SEALPOST_BOARD_RENEWAL === '1';
function features(renewal) {
  return {
    name: 'features',
    transform(code, id) {
      if (!id.replace(/\\/g, '/').endsWith('/hal/features.ts')) return null;
      if (renewal) return null;
      const out = code.replace(/export (const|var) RENEWAL = true;/, 'export $1 RENEWAL = false;');
      if (out === code) this.error('hal/features.ts: expected `export const RENEWAL = true;` in the compiled module');
      return { code: out, map: null };
    },
  };
}

// Every board with a firmware bundle; its entry is generated from its profile
// (tools/board-entries.ts). The sim target runs under Node and has no bundle.
const BOARDS = PROFILES.filter((b) => b.radio !== 'sim').map((b) => b.id);

const ENTRIES = {
  ...Object.fromEntries(BOARDS.map((b) => [b, `firmware/targets/${b}.ts`])),
  'crypto-selftest': 'firmware/targets/selftest.ts',
  'bench-seal': 'firmware/targets/bench-seal.ts',
  // The renewal crypto on the kernels, with console commands for test/firmware/renewal-crypto-arm.test.ts.
  'renewal-check': 'firmware/targets/renewal-check.ts',
};

// SEALPOST_BUNDLE_NAMES=1 writes the same bundles without name mangling into
// dist/names/ (no size budget), so the memory bench's --trace breakdown
// (bench/firmware-memory.ts --names) names the source's own variables.
const NAMES = process.env.SEALPOST_BUNDLE_NAMES === '1';

// format 'es' (no export, so plain top-level code), not 'iife': on the
// interpreter every function keeps a link to the scope it was made in, a
// function made inside a function that is itself inside another keeps a
// copied array of all those scopes (jspeiGetScopesAsVar, 2v29), and a
// top-level function keeps none. Without the wrapper the bundle's own
// functions cost one variable less each and the device's closures one scope
// level less: measured 2026-12-07, puckjs after boot on the 32-bit ARM build
// 1,558 -> 1,403 variables (docs/firmware.md, "Memory on the interpreter").
// The price: the bundle's minified top-level names (single letters) are
// globals, so code a product adds must keep its own names out of the global
// scope (docs/firmware.md). The seal benchmark's harness stays an IIFE: its
// own loop variables would otherwise be globals, and every lookup of one
// walks the interpreter's whole root scope, which the benchmark would count
// as seal cost (measured 2026-12-07, 100 seals under callgrind: native-aes
// 0.506 M instructions as es, 0.477 M as IIFE, 0.488 M before this change;
// on the device the seal path's names live in startDevice's scope).
// Top-level functions (and one string) that only boot uses: being top-level
// declarations they would stay for good, each about 6 variables on the
// interpreter (the function, its code, a name per parameter). The build
// appends `a=b=...=void 0` after the boot code of every board bundle, so the
// interpreter frees them once boot is done; terser's name cache gives their
// mangled names. A name missing from a bundle (inlined by terser, or not part
// of that board's backend) is skipped. Only boot may call these: whatever
// runs later (timers, radio events) reaching one would fail with "is not a
// function", which the bundle tests on the interpreter would show
// (docs/firmware.md, "Fourth pass"). Not the aliases of builtins (`print`,
// `E`, `Storage`): a name holding a reference costs one variable whether the
// value is the builtin or undefined (measured: no change).
const BOOT_ONLY = ['createOutbox', 'createSealer', 'sealerOf', 'openCounters', 'kernelEngine', 'kernelFramer', 'refuse', 'addressOf', 'boardGlobal', 'need', 'PROVISION_HINT'];
// What hal.crypto.ccm() reaches on the native-kernel backend (hal/espruino/kernel.ts): a renewal
// makes the new key's engine after boot (firmware/renewal.ts, RENEW_ACK), so a bundle with RENEWAL
// on keeps these. With RENEWAL off (every board bundle today) they are freed as before, and their
// resident variables with them (docs/firmware.md, "Fifth pass").
const CCM_AFTER_BOOT = ['kernelEngine', 'kernelFramer', 'kernelEmpty', 'refuse', 'addressOf'];
function dropBootOnly(nameCache, renewal) {
  return {
    name: 'drop-boot-only',
    renderChunk(code) {
      const props = (nameCache.vars && nameCache.vars.props) || {};
      const names = BOOT_ONLY.filter((n) => !(renewal && CCM_AFTER_BOOT.includes(n))).map((n) => (NAMES ? n : props['$' + n])).filter((m) => m && new RegExp('(^|[^\\w$.])' + m.replace(/\$/g, '\\$') + '\\b').test(code));
      return names.length ? { code: code + names.join('=') + '=void 0;', map: null } : null;
    },
  };
}

export default Object.entries(ENTRIES).map(([name, input]) => {
  const nameCache = {};
  const board = BOARDS.includes(name);
  const renewal = board ? BOARD_RENEWAL : name !== 'bench-seal';
  const dir = (NAMES ? 'dist/names' : 'dist') + (board && BOARD_RENEWAL ? '/renewal' : '');
  return {
  input,
  output: { file: `${dir}/${name}.js`, format: name === 'bench-seal' ? 'iife' : 'es', strict: false },
  plugins: [
    typescript({
      // Comments are kept into terser, which reads /*@__NOINLINE__*/ and
      // /*@__PURE__*/ from them (firmware/device.ts, protocol/wire/ble.ts),
      // and drops every comment from the bundle (format.comments: false).
      tsconfig: './tsconfig.firmware.json',
      compilerOptions: { noEmit: false, outDir: 'dist', declaration: false, sourceMap: false, removeComments: false },
      include: ['firmware/**/*.ts', 'hal/**/*.ts', 'boards/*.ts', 'protocol/wire/*.ts', 'kernel/*/image.ts'],
      exclude: ['hal/sim/**', 'firmware/targets/sim.ts'],
      noForceEmit: false,
    }),
    features(renewal),
    // A first terser pass that hoists nothing, only to fold the top-level
    // constants (the numbers and strings of protocol/wire/constants.ts,
    // codec.ts, names.ts, firmware/version.ts; arrays such as CHANNEL_NAMES
    // stay) into their uses. With hoist_vars (the pass below) terser keeps each of them as a
    // top-level variable, since the hoisted functions read them before their
    // `var` line runs; on the interpreter each such global costs its name
    // and value for good (measured 2026-12-07, puckjs on the 32-bit ARM
    // build: about 30 variables, docs/firmware.md "Memory on the
    // interpreter"). The second pass hoists every declaration as before, so
    // what the board runs means what the source meant.
    terser({
      ecma: 5,
      // collapse_vars off: it would fold firmware/counter-log.ts's
      // `const c = /*@__NOINLINE__*/ f(); return c` back into a return,
      // whose annotation terser then prints before `return`, out of reach.
      compress: { passes: 2, toplevel: true, hoist_vars: false, hoist_funs: false, inline: 1, collapse_vars: false },
      mangle: false,
      format: { comments: false, preserve_annotations: true, ascii_only: true },
    }),
    terser({
      ecma: 5,
      // Espruino hoists neither `var` nor function declarations (measured on 2v29):
      // a name used before its declaration runs resolves to the enclosing scope.
      // hoist_vars and hoist_funs put every declaration first, as the source meant.
      // inline: 1 inlines only functions without variables of their own. With
      // inline: 2 terser also inlines those and declares their variables after
      // the first use (measured 2026-12-07: the checker then finds
      // use-before-declaration in five of the six board bundles), and Espruino
      // would resolve such a use to a global.
      compress: { passes: 2, toplevel: true, hoist_vars: true, hoist_funs: true, inline: 1 },
      mangle: NAMES ? false : { toplevel: true },
      format: { comments: false, ascii_only: true },
      nameCache,
    }),
    espruinoReturns(),
    ...(board ? [dropBootOnly(nameCache, renewal), ...(NAMES || BOARD_RENEWAL ? [] : [sizeBudget(name)]), kernelImage(name)] : []),
  ],
  };
});
