// The folder of sealpost's package.json, found from this module's own place,
// so that paths outside the compiled tree (package.json, the firmware bundles
// in dist/) resolve the same from the sources (cli/) and from build/cli/,
// in a clone and in an installed package.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}: reinstall sealpost`);
    dir = up;
  }
  root = dir;
  return dir;
}
