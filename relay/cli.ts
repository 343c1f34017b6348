// `sealpost` subcommands of the relay and the simulated fleet.
import type { Command } from '../cli/command.js';

export const relayCommands: Record<string, Command> = {};
