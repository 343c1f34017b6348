// `sealpost SUBCOMMAND ...`: a table of subcommands, each a thin wrapper that
// parses its arguments, calls library code and returns an exit code (style.md
// rule 12). Only bin/sealpost.mjs sets the process exit code.
import { readFileSync } from 'node:fs';
import { runDemo } from './demo.js';
import { main as checkBundle } from '../tools/espruino-check/cli.js';
import type { Command } from './command.js';
import { factoryCommands } from '../factory/cli.js';
import { serverCommands } from '../server/cli.js';
import { relayKeyCommands } from '../server/relay-key-cli.js';
import { relayCommands } from '../relay/cli.js';

export type { Command } from './command.js';

export const COMMANDS: Record<string, Command> = {
  ...factoryCommands,
  ...serverCommands,
  ...relayKeyCommands,
  ...relayCommands,
  demo: {
    summary: 'the whole path on this machine: keys, simulated devices, ingest server on SQLite, relay, dashboard (until Ctrl-C)',
    usage: 'sealpost demo [--dir DIR] [--devices N] [--port PORT] [--speed X] [--duration SECONDS] [--seed N]',
    run: runDemo,
  },
  'check-bundle': {
    summary: 'check firmware bundles for constructs the Espruino interpreter rejects',
    usage: 'sealpost check-bundle FILE.js [FILE.js ...]',
    run: checkBundle,
  },
  version: {
    summary: 'print the sealpost and protocol versions',
    usage: 'sealpost version',
    run: async () => {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
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

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const which = args[0] !== undefined ? COMMANDS[args[0]] : undefined;
    console.log(which ? `usage: ${which.usage}\n\n${which.summary}` : usage());
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`sealpost: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(args);
  } catch (error) {
    console.error(`sealpost ${name}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
