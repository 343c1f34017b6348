// `sealpost COMMAND ...`: the table of commands with their usage, and the one
// place that turns a command's outcome into what the operator sees. Each
// command is a thin function that parses its arguments (cli/args.ts), calls
// library code, prints and returns an exit code (style.md rule 12); its module
// is imported only when the command runs, so `sealpost help` loads none of
// them. Exit codes: 0 done, 1 failed (the message says what to do), 2 a usage
// error (the message and the usage). Only bin/sealpost.mjs sets the process
// exit code.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags, UsageError } from './args.js';
import { packageRoot } from './package-root.js';

/** One `sealpost` command: parse args, call library code, print, return an exit code. */
export interface Command {
  summary: string;
  /** The synopsis, printed with every usage error. */
  usage: string;
  /** What each option means, for `sealpost help COMMAND` and `COMMAND --help`. */
  help?: string;
  run(args: string[]): Promise<number>;
}

const SIM_OPTIONS = `  --server URL        the ingest server, e.g. http://127.0.0.1:8080 (required)
  --devices N         simulated devices, 1..1000 (default 5)
  --duration D        simulated time to run: 90, 90s, 15m, 2h (default 60s)
  --keys DIR          fleet keys: an ingest public key and a factory private key file
                      (sealpost keys init); an empty or new DIR gets a new key set
                      (default .sealpost/sim-keys)
  --manifest-out FILE where to write the signed manifest (default DIR/<batch>.manifest.json)
  --speed X           simulated seconds per real second (default 1: real time)
  --seed N            seed of the simulation (sensors, chaos) (default 1)
  --sensors LIST      sensors of the 'sim' board, comma separated (default all five)
  --queue FILE        keep the relay's queue in this journal file (default in memory)
  --fail-rate R       share of uploads that fail on purpose, 0..1 (default 0)
  --mean-link D       the relay drops each link after about D (default never)
  --status-every D    real time between status lines, 0 for none (default 5s)
  --wait D            real time to wait for the manifest import (default 10m; 0: do not wait)
  --drain D           simulated time after the run for the last acks (default 60s)
  --relay-key KEY     sent with every upload as X-Sealpost-Relay-Key, for a server with relay_keys
                      (sealpost relay-key new NAME makes one); SEALPOST_RELAY_KEY works too and
                      keeps the key out of the process list

  SEALPOST_TOKEN      (environment) a read API token (sealpost token create --role read --name sim):
                      lets sim wait for the manifest import and report what the server stored;
                      uploads need none`;

const DB = '(--config FILE | --db PATH|URL)';

export const COMMANDS: Record<string, Command> = {
  keys: {
    summary: 'make a key set (ingest, factory and renewal key pairs, fleet id), or the next ingest key and its signed ANNOUNCE (private files 0600, never printed)',
    usage: ['sealpost keys init --dir DIR', 'sealpost keys renew --keys DIR'].join('\n       '),
    help: [
      '  init --dir DIR    a new key set in DIR: ingest (X25519), factory (Ed25519) and renewal (Ed25519) key pairs; the renewal',
      '                    files carry the fleet id (4 random bytes)',
      '  renew --keys DIR  in the key set DIR (with its renewal .key file brought back from offline): the ingest key pair of',
      '                    the next epoch and announce-<epoch>.bin, the 108-byte ANNOUNCE signed with the renewal key',
    ].join('\n'),
    run: async (args) => (await import('../factory/cli.js')).runKeys(args),
  },
  provision: {
    summary: 'provision a batch of devices: one secret file per serial and a signed manifest; resumes after interruption',
    usage: 'sealpost provision --board BOARD --serials FIRST-LAST --ingest-pub FILE --factory-key FILE [--renewal-pub FILE] --out DIR [--batch ID]',
    help: [
      '  --renewal-pub FILE  the renewal-<id>.pub of the key set: device file format 2, whose devices can renew;',
      '                      without it format 1, whose devices keep their factory key for life',
    ].join('\n'),
    run: async (args) => (await import('../factory/cli.js')).runProvision(args),
  },
  info: {
    summary: 'what a device file (format, serial, key check value, whether it can renew) or an ANNOUNCE file holds; never a secret',
    usage: 'sealpost info FILE [--renewal-pub FILE]',
    help: '  --renewal-pub FILE  for an ANNOUNCE file: check its signature with this renewal public key',
    run: async (args) => (await import('../factory/cli.js')).runInfo(args),
  },
  flash: {
    summary: 'write a device secret file, counter log, crypto kernels and firmware to a board with the espruino CLI, or an SWD hex of its Storage',
    usage: [
      'sealpost flash --port PORT --device OUT/BATCH/devices/SERIAL.dev [--firmware FILE.js] [--kernel FILE.bin] [--board BOARD] [--timeout SECONDS]',
      'sealpost flash --ohex FILE.hex --device OUT/BATCH/devices/SERIAL.dev --board BOARD [--firmware FILE.js] [--kernel FILE.bin]',
    ].join('\n       '),
    help: [
      "  --firmware FILE.js  the firmware bundle (default: the board's bundle in this package's dist/, built by npm run build)",
      '  --kernel FILE.bin   the compiled AES-CCM kernel for native-kernel boards (MDBT42Q, Pixl.js, nRF52840 DK), written as sealpost.krn',
      "                      (default: dist/aes-ccm.bin; it must be the image the firmware was built for)",
      '  The key-renewal kernels of every nRF52 board, sealpost.c25 and sealpost.hkd, come from the same dist/',
      '  (curve25519.bin, hkdf-sha256.bin) and must be its images too.',
    ].join('\n'),
    run: async (args) => (await import('../factory/flash-cli.js')).flashCommand(args),
  },
  server: {
    summary: 'run the ingest server (HTTP API, registry, readings store)',
    usage:
      'sealpost server [--config FILE] [--db PATH|postgres://URL] [--listen HOST:PORT] [--ingest-key FILE]... [--trust FILE]... ' +
      '[--tls-cert FILE --tls-key FILE] [--log-level LEVEL]',
    run: async (args) => (await import('../server/cli.js')).runServer(args),
  },
  registry: {
    summary: 'import signed batch manifests, revoke devices, list the registry',
    usage: [
      `sealpost registry import MANIFEST (--config FILE | --db PATH|URL --trust FACTORY.pub... --ingest-key FILE...)`,
      `sealpost registry revoke SERIAL ${DB}`,
      `sealpost registry list [--json] ${DB}`,
    ].join('\n       '),
    run: async (args) => (await import('../server/cli.js')).runRegistry(args),
  },
  token: {
    summary: 'create, list and revoke API tokens (bearer tokens for the read API and the dashboard)',
    usage: [`sealpost token create --role read|admin --name NAME ${DB}`, `sealpost token list [--json] ${DB}`, `sealpost token revoke NAME ${DB}`].join('\n       '),
    run: async (args) => (await import('../server/cli.js')).runToken(args),
  },
  fleet: {
    summary: 'how much of the fleet is on the latest key epoch (GET /v1/fleet as a table)',
    usage: 'sealpost fleet status --server URL [--token-file FILE] [--json]',
    help: [
      '  --server URL        the ingest server, e.g. http://127.0.0.1:8080 (required)',
      '  --token-file FILE   a file holding a read token (sealpost token create --role read --name NAME)',
      '  --json              print the server\'s answer as JSON instead of the table',
      '',
      '  SEALPOST_TOKEN      (environment) the read token, when no --token-file is given; there is no',
      '                      --token option: a token on the command line shows in the process list',
    ].join('\n'),
    run: async (args) => (await import('./fleet.js')).runFleet(args),
  },
  'relay-key': {
    summary: "make a relay key for a fleet's relay app (the config keeps only its hash)",
    usage: 'sealpost relay-key new NAME',
    run: async (args) => (await import('../server/cli.js')).runRelayKey(args),
  },
  sim: {
    summary: 'run a fleet of simulated devices (real firmware, sim HAL) relayed to an ingest server',
    usage:
      'sealpost sim --server URL [--devices N] [--duration D] [--keys DIR] [--manifest-out FILE] [--speed X] [--seed N] ' +
      '[--sensors LIST] [--queue FILE] [--fail-rate R] [--mean-link D] [--status-every D] [--wait D] [--drain D] [--relay-key KEY]',
    help: SIM_OPTIONS,
    run: async (args) => (await import('../sim/cli.js')).runSim(args),
  },
  demo: {
    summary: 'the whole path on this machine: keys, simulated devices, ingest server on SQLite, relay, dashboard (until Ctrl-C)',
    usage: 'sealpost demo [--dir DIR] [--devices N] [--port PORT] [--speed X] [--duration SECONDS] [--seed N]',
    run: async (args) => (await import('./demo.js')).runDemo(args),
  },
  'check-bundle': {
    summary: 'check firmware bundles for constructs the Espruino interpreter rejects',
    usage: 'sealpost check-bundle FILE.js [FILE.js ...]',
    run: async (args) => (await import('../tools/espruino-check/cli.js')).checkBundles(args),
  },
  version: {
    summary: 'print the sealpost and protocol versions',
    usage: 'sealpost version',
    run: async (args) => {
      parseFlags(args, {}, 0);
      const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
      console.log(`sealpost ${pkg.version} (protocol v1)`);
      return 0;
    },
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return ['usage: sealpost COMMAND [ARGS]', '', 'commands:', ...lines, '', 'sealpost help COMMAND shows the arguments of one command.'].join('\n');
}

function commandHelp(c: Command): string {
  return `usage: ${c.usage}\n\n${c.summary}${c.help ? `\n\n${c.help}` : ''}`;
}

// Errors a program makes (a bug in sealpost), as opposed to an operator's
// mistake or the world refusing (a missing file, a port in use).
const BUGS = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError];

// What to do about an operating-system error that reached the top unexplained.
const SYSTEM_ADVICE: Record<string, string> = {
  ENOENT: 'check the path',
  ENOTDIR: 'check the path',
  EISDIR: 'give a file, not a folder',
  EACCES: 'check the permissions of the path, or run as a user who may use it',
  EPERM: 'check the permissions of the path, or run as a user who may use it',
  EROFS: 'give a path on a writable file system',
  ENOSPC: 'free some disk space, then run the same command again',
  EMFILE: 'raise the open-files limit (ulimit -n), then run the same command again',
};

/** What the operator reads for a failure: what went wrong and what to do. */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return `${String(error)}`;
  if (BUGS.some((k) => error.constructor === k)) {
    return `internal error: ${error.stack ?? error.message}\nthis is a bug in sealpost: please report it with the command you ran and the lines above`;
  }
  const code = (error as NodeJS.ErrnoException).code;
  const syscall = (error as NodeJS.ErrnoException).syscall;
  if (typeof code === 'string' && typeof syscall === 'string') {
    return `${error.message}; ${SYSTEM_ADVICE[code] ?? 'check the path and the system, then run the same command again'}`;
  }
  return error.message;
}

/**
 * Runs one command and maps its outcome to an exit code: a UsageError prints
 * `sealpost NAME: message` and the usage (2); any other error prints
 * `sealpost NAME: message` (1). `run` is replaceable for tests (a flash runner).
 */
export async function runCommand(name: string, args: string[], run: (args: string[]) => Promise<number> = COMMANDS[name]!.run): Promise<number> {
  const command = COMMANDS[name]!;
  try {
    return await run(args);
  } catch (error) {
    if (error instanceof UsageError) {
      const more = command.help ? `\nsealpost help ${name} explains each option` : '';
      console.error(`sealpost ${name}: ${error.message}\nusage: ${command.usage}${more}`);
      return 2;
    }
    console.error(`sealpost ${name}: ${describeFailure(error)}`);
    return 1;
  }
}

const isHelp = (a: string) => a === '--help' || a === '-h';

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || isHelp(name)) {
    if (args[0] === undefined) {
      console.log(usage());
      return 0;
    }
    const which = Object.hasOwn(COMMANDS, args[0]) ? COMMANDS[args[0]] : undefined;
    if (!which) {
      console.error(`sealpost help: unknown command "${args[0]}"\n\n${usage()}`);
      return 2;
    }
    console.log(commandHelp(which));
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    console.error(`sealpost: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const end = args.indexOf('--');
  if ((end < 0 ? args : args.slice(0, end)).some(isHelp)) {
    console.log(commandHelp(command));
    return 0;
  }
  return runCommand(name, args);
}
