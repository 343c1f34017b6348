// vitest global set-up: tests that run bin/sealpost.mjs as a process run the
// compiled build/, so build/ must match the sources. When a host source (or
// a file copied beside the output) is newer than build/'s last compile, this
// runs `npm run build:host` (tools/build-host.mjs) once, before any test.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const config = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[]; compilerOptions: { tsBuildInfoFile: string } };
  const stamp = join(ROOT, config.compilerOptions.tsBuildInfoFile);
  const sources = Math.max(...config.include.map((d) => newest(join(ROOT, d))), ...['tsconfig.json', 'tsconfig.build.json', 'tsconfig.relay-types.json'].map((f) => statSync(join(ROOT, f)).mtimeMs));
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= sources) return;
  console.log('build/ is older than the sources: npm run build:host');
  execFileSync(process.execPath, [join(ROOT, 'tools/build-host.mjs')], { stdio: 'inherit' });
}
