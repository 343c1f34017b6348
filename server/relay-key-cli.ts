// `sealpost relay-key new NAME`: a fresh relay key, printed once, and the
// config entry (name and SHA-256 only) that admits it (server/relay-keys.ts;
// docs/server.md, "Relay keys"). Thin: parse, call, print (style.md rule 12).
import type { Command } from '../cli/command.js';
import { ConfigError } from './config.js';
import { newRelayKey } from './relay-keys.js';

const USAGE = 'sealpost relay-key new NAME';

async function runRelayKey(args: string[]): Promise<number> {
  const [action, name, ...rest] = args;
  if (action !== 'new' || name === undefined || rest.length > 0) throw new ConfigError(`usage: ${USAGE}`);
  let made: ReturnType<typeof newRelayKey>;
  try {
    made = newRelayKey(name);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  console.log(`relay key "${name}" (shown only now; build it into the relay app or pass it to sealpost sim --relay-key):`);
  console.log(`  ${made.key}`);
  console.log('');
  console.log('add this entry to "relay_keys" in the server\'s config file and restart the server (the file holds only the hash):');
  console.log(`  ${JSON.stringify(made.entry)}`);
  return 0;
}

export const relayKeyCommands: Record<string, Command> = {
  'relay-key': {
    summary: 'make a relay key for a fleet\'s relay app (the config keeps only its hash)',
    usage: USAGE,
    run: runRelayKey,
  },
};
