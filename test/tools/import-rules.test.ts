// The import rules (docs/layout.md, tools/import-rules.ts): the repository
// keeps them, and the check finds every kind of import and names the file,
// line, import and rule of a violation.
import { describe, expect, it } from 'vitest';
import { checkImports, formatViolation, importsOf, REPO_ROOT, repoSources, RULES, type SourceFile } from '../../tools/import-rules.js';

describe('import rules', () => {
  it('hold for every source file of the repository', () => {
    const files = repoSources(REPO_ROOT);
    const paths = files.map((f) => f.path);
    // The scan reaches every room (an empty scan would pass silently).
    for (const p of ['protocol/wire/be.ts', 'hal/espruino/base.ts', 'firmware/device.ts', 'firmware/targets/sim.ts', 'boards/puckjs.ts', 'sim/device.ts', 'factory/flash.ts', 'test/tools/import-rules.test.ts']) expect(paths).toContain(p);
    expect(paths.some((p) => p.startsWith('node_modules/') || p.startsWith('dist/'))).toBe(false);
    expect(checkImports(files).map(formatViolation)).toEqual([]);
  });

  it('finds static, type-only, re-exported, dynamic, required and type-position imports, and nothing in comments or strings', () => {
    const file: SourceFile = {
      path: 'hal/x.ts',
      text: [
        "import { a } from './a.js';",
        "import type { B } from '../firmware/b.js';",
        "import { type C, type D } from './cd.js';",
        "import { type E, f } from './ef.js';",
        "export { g } from '../protocol/wire/g.js';",
        "export type { H } from './h.js';",
        "const i = await import('../sim/i.js');",
        "const j = require('node:fs');",
        "import k = require('./k.js');",
        "type L = import('./l.js').L;",
        "// import { m } from '../server/m.js';",
        "const n = \"import { o } from '../relay/o.js'\";",
        "import './side-effect.js';",
      ].join('\n'),
    };
    const known = new Set(['hal/a.ts', 'firmware/b.ts', 'protocol/wire/g.ts', 'hal/side-effect.js']);
    expect(importsOf(file, known).map((i) => [i.line, i.specifier, i.target, i.typeOnly])).toEqual([
      [1, './a.js', 'hal/a.ts', false],
      [2, '../firmware/b.js', 'firmware/b.ts', true],
      [3, './cd.js', 'hal/cd.ts', true],
      [4, './ef.js', 'hal/ef.ts', false],
      [5, '../protocol/wire/g.js', 'protocol/wire/g.ts', false],
      [6, './h.js', 'hal/h.ts', true],
      [7, '../sim/i.js', 'sim/i.ts', false],
      [8, 'node:fs', undefined, false],
      [9, './k.js', 'hal/k.ts', false],
      [10, './l.js', 'hal/l.ts', true],
      [13, './side-effect.js', 'hal/side-effect.js', false],
    ]);
  });

  it('catches a violation of each rule, naming file, line, import and rule', () => {
    const files: SourceFile[] = [
      { path: 'protocol/frame.ts', text: "import { x } from '../server/x.js';" },
      { path: 'protocol/wire/codec.ts', text: "import { sha256 } from '@noble/hashes/sha2.js';\nimport { y } from '../bytes.js';" },
      { path: 'hal/espruino/base.ts', text: "\n\nimport { DEVICE_FILE_NAME } from '../../firmware/names.js';" },
      { path: 'hal/plain/crypto.ts', text: "import { NorFlash } from '../sim/nor-flash.js';" },
      { path: 'firmware/device.ts', text: "import { composeCcm } from '../hal/ccm.js';\nimport { BOARDS } from '../boards/index.js';\nimport { ok } from '../hal/types.js';" },
      { path: 'firmware/targets/sim.ts', text: "import { createEspruinoAes } from '../../sim/espruino/aes.js';" },
      // An entry may take a kernel's image.ts (size, CRC, entries), nothing else of kernel/.
      { path: 'firmware/targets/mdbt42q.ts', text: "import { IMAGE } from '../../kernel/aes-ccm/image.js';\nimport { buildKernel } from '../../kernel/build.js';" },
      { path: 'boards/puckjs.ts', text: "import { z } from '../protocol/wire/codec.js';" },
      { path: 'relay/core.ts', text: "import { bleRadio } from '../hal/espruino/radio.js';\nimport { VirtualClock } from '../hal/sim/clock.js';" },
      { path: 'sim/fleet.ts', text: "import { VirtualClock } from '../hal/sim/clock.js';\nimport { plainCrypto } from '../hal/espruino/crypto-hal.js';" },
      { path: 'factory/storage-image.ts', text: "import { COUNTER_LOG_MAGIC } from '../firmware/counter-core.js';" },
      { path: 'hal/espruino/radio.ts', text: "import { nrf } from './globals.js';\nimport type { NrfGlobal } from './globals.js';" },
      { path: 'hal/espruino/globals.ts', text: "const c = require('crypto');\nconst f = require('fs');" },
      { path: 'kernel/build.ts', text: "import { sealFrame } from '../protocol/frame.js';\nimport { x } from 'node:fs';\nimport { y } from 'typescript';" },
    ];
    const found = checkImports(files).map((v) => `${v.file}:${v.line} ${v.specifier} | ${v.rule.split(' ').slice(0, 3).join(' ')}`);
    expect(found).toEqual([
      'boards/puckjs.ts:1 ../protocol/wire/codec.js | boards/ imports only',
      'factory/storage-image.ts:1 ../firmware/counter-core.js | firmware/ is imported',
      'firmware/device.ts:1 ../hal/ccm.js | firmware/ outside firmware/targets/',
      'firmware/device.ts:1 ../hal/ccm.js | only the entries',
      'firmware/device.ts:2 ../boards/index.js | firmware/ outside firmware/targets/',
      'firmware/targets/mdbt42q.ts:2 ../../kernel/build.js | firmware/targets/ imports only',
      'firmware/targets/sim.ts:1 ../../sim/espruino/aes.js | firmware/targets/ imports only',
      'hal/espruino/base.ts:3 ../../firmware/names.js | hal/ imports only',
      'hal/espruino/base.ts:3 ../../firmware/names.js | firmware/ is imported',
      'hal/espruino/globals.ts:2 fs | hal/ imports only',
      'hal/espruino/radio.ts:1 ./globals.js | only the entries',
      'hal/plain/crypto.ts:1 ../sim/nor-flash.js | the device HAL',
      'kernel/build.ts:1 ../protocol/frame.js | kernel/ imports only',
      'kernel/build.ts:3 typescript | kernel/ imports only',
      'protocol/frame.ts:1 ../server/x.js | protocol/ imports only',
      'protocol/wire/codec.ts:1 @noble/hashes/sha2.js | protocol/wire/ imports only',
      'protocol/wire/codec.ts:2 ../bytes.js | protocol/wire/ imports only',
      'relay/core.ts:1 ../hal/espruino/radio.js | only the entries',
      'relay/core.ts:2 ../hal/sim/clock.js | only the entries',
      'sim/fleet.ts:2 ../hal/espruino/crypto-hal.js | only the entries',
    ]);
    // Every rule is exercised above.
    const rulesHit = new Set(checkImports(files).map((v) => v.rule));
    expect([...rulesHit].sort()).toEqual(RULES.map((r) => r.name).sort());
  });

  it('formats a violation as file:line, the import as written and resolved, and the rule', () => {
    const [v] = checkImports([
      { path: 'hal/espruino/base.ts', text: "import { x } from './y.js';\nimport { DEVICE_FILE_NAME } from '../../firmware/names.js';" },
      { path: 'hal/espruino/y.ts', text: '' },
      { path: 'firmware/names.ts', text: '' },
    ]);
    expect(formatViolation(v!)).toBe(
      "hal/espruino/base.ts:2: import '../../firmware/names.js' (firmware/names.ts) breaks the rule: hal/ imports only hal/ and protocol/wire/ (never firmware/, sim/, server/, relay/, factory/ or packages; hal/espruino/globals.ts alone requires the interpreter's modules; hal/plain/renewal-crypto.ts, Node only and in no bundle, also protocol/, packages and node: builtins)",
    );
  });
});
