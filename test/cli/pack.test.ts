// What `npm pack` would put in the package (package.json "files"), without
// building or packing: the entry, the compiled host code with the files it
// loads beside itself, the firmware bundles flash needs, the docs; no tests,
// no TypeScript sources, no key files, no build records (declarations only
// for the relay's exported graph). The full check (pack, install into an
// empty folder, run the demo) is by hand: docs/decisions.md, "The npm
// package"; the relay subpath's is test/cli/relay-package.test.ts.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';

const ROOT = new URL('../../', import.meta.url).pathname;

describe('npm pack', () => {
  it('packs what an installed sealpost runs, and nothing secret or for development', () => {
    const json = execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = (JSON.parse(json) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    for (const needed of [
      'package.json',
      'README.md',
      'LICENSE',
      'bin/sealpost.mjs',
      'build/cli/main.js',
      'build/server/storage/read-worker.js',
      'build/server/storage/checkpoint-worker.js',
      'build/factory/device-writer.worker.cjs',
      'build/boards/espruino/PUCKJS.json',
      'build/server/dashboard/index.html',
      'build/server/dashboard/style.css',
      'build/server/dashboard/app.js',
      'build/relay/web/index.html',
      'build/relay/web/icon.svg',
      'build/relay/web/app.js',
      'build/relay/index.d.ts',
      'build/relay/web/idb-queue.d.ts',
      'build/relay/adapters/capacitor.d.ts',
      'build/relay/adapters/react-native.d.ts',
      'dist/puckjs.js',
      'docs/server.md',
    ]) {
      expect(files, `${needed} is not packed (run npm run build first)`).toContain(needed);
    }
    const unwanted = files.filter((f) => /^(test|bench|node_modules|firmware|server|relay|factory|cli|\.sealpost)/.test(f) || (/\.(ts|key|tsbuildinfo)$/.test(f) && !/^build\/.*\.d\.ts$/.test(f)) || f.endsWith('build-host.mjs'));
    expect(unwanted).toEqual([]);
    // Declarations for the relay's subpaths and what they import, nothing else.
    expect(files.filter((f) => f.endsWith('.d.ts') && !/^build\/(relay|protocol)\//.test(f))).toEqual([]);
  });
});
