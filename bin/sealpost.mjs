#!/usr/bin/env node
// Entry of the `sealpost` command: runs the compiled JavaScript in build/
// (npm run build makes it; a packed sealpost ships it), so nothing compiles
// TypeScript at run time.
import { existsSync } from 'node:fs';

const entry = new URL('../build/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error(`sealpost: ${entry.pathname} is missing: run npm run build in ${new URL('..', import.meta.url).pathname} first`);
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
