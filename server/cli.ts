// `sealpost` subcommands of the ingest server and its registry.
import type { Command } from '../cli/command.js';

export const serverCommands: Record<string, Command> = {};
