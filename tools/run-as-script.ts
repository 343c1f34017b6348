// Whether a module is the script node was started with (`npx tsx tools/x.ts`),
// so a tool file can be both a library for tests and a command.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** True when the module whose import.meta.url is `moduleUrl` is process.argv[1]. */
export function runAsScript(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return moduleUrl === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}
