// `npm run build:native` (part of `npm run build`, and npm's install step):
// compiles native/aes.c, the server's multi-key AES addon, with node-gyp into
// native/build/Release/sealpost_aes.node against the running node's headers
// and OpenSSL. Skipped when the addon is newer than its sources. With
// --optional (the install step) a failed build is a warning, not an error:
// the server then runs the same AES through node:crypto, correct but slower
// for requests naming many devices, and says so in its start-up log.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const addon = join(dir, 'build', 'Release', 'sealpost_aes.node');
const sources = ['aes.c', 'binding.gyp', 'build.mjs'].map((f) => join(dir, f));
const optional = process.argv.includes('--optional');

function nodeGyp() {
  // npm sets npm_config_node_gyp to its own node-gyp in every script it runs; by hand, the one in node_modules.
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    throw new Error('node-gyp not found: run this through npm (`npm run build:native`), which brings its own');
  }
}

/** The running node's own headers (an official or distribution install has PREFIX/include/node), so node-gyp downloads nothing. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? ['--nodedir', prefix] : [];
}

const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
if (existsSync(addon) && statSync(addon).mtimeMs >= newest && !process.argv.includes('--force')) {
  console.log(`build:native: ${addon} is up to date`);
} else {
  try {
    execFileSync(process.execPath, [nodeGyp(), 'rebuild', '--directory', dir, ...nodedirArgs()], { stdio: 'pipe' });
    console.log(`build:native: built ${addon}`);
  } catch (e) {
    const log = String(e.stderr ?? '').split('\n').filter((l) => !l.startsWith('gyp info')).join('\n').trim();
    console.error(log || e.message);
    const why = `build:native: the AES addon did not build (above); it needs a C compiler, python3 and node's headers, as better-sqlite3 does`;
    if (!optional) {
      console.error(why);
      process.exit(1);
    }
    console.warn(`${why}. The server will use node:crypto instead (docs/server.md, "Junk uplinks"); \`npm run build:native\` retries.`);
  }
}
