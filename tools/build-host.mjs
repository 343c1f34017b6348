// `npm run build:host`: compiles the host code (tsconfig.build.json) into
// build/ and copies every other file of the compiled folders (the pages'
// HTML, CSS and icons, the boards' JSON, worker scripts) to the same place in
// build/, so a path a module computes from import.meta.url holds in build/ as
// it does in the sources. Incremental: an unchanged tree compiles in seconds;
// outputs whose source is gone are removed. Plain JavaScript: it runs before
// anything is compiled.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const config = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8'));
const out = join(root, config.compilerOptions.outDir);
/** tsc's record of the last compile (tsconfig.build.json, tsBuildInfoFile). */
const BUILD_INFO = '.tsbuildinfo';
/** Files that stay out of build/: this script, and the worker entries only the sources need (they load tsx; build/ has read-worker.js and checkpoint-worker.js). */
const NOT_COPIED = new Set(['tools/build-host.mjs', 'server/storage/read-worker.mjs', 'server/storage/checkpoint-worker.mjs']);

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
for (const project of ['tsconfig.build.json', 'tsconfig.relay-types.json']) {
  try {
    execFileSync(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit' });
  } catch {
    console.error(`build:host: tsc -p ${project} failed (above); build/ may be incomplete`);
    process.exit(1);
  }
}

const wanted = new Set();
for (const folder of config.include) {
  for (const path of files(join(root, folder))) {
    const rel = relative(root, path);
    if (rel.endsWith('.ts')) {
      wanted.add(rel.replace(/\.ts$/, '.js'));
      // Declarations exist only for the relay's exported graph; any of them whose source is gone goes.
      wanted.add(rel.replace(/\.ts$/, '.d.ts'));
      continue;
    }
    if (NOT_COPIED.has(rel)) continue;
    wanted.add(rel);
    const target = join(out, rel);
    if (!existsSync(target) || statSync(target).mtimeMs < statSync(path).mtimeMs) {
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(path, target);
    }
  }
}

// A source deleted or moved leaves its old output behind: remove it, so build/ runs only what the sources say.
let removed = 0;
for (const path of files(out)) {
  const rel = relative(out, path);
  if (rel === BUILD_INFO || wanted.has(rel)) continue;
  rmSync(path);
  removed++;
}
if (removed > 0) console.log(`build:host: removed ${removed} files of build/ that no source makes`);
// tsc leaves its record untouched when no output changed; its time says when build/ last matched the sources (test/helpers/build-fresh.ts).
const now = new Date();
utimesSync(join(out, BUILD_INFO), now, now);
