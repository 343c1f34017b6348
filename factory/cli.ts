// `sealpost` subcommands of the factory (keys, provisioning, flashing).
import type { Command } from '../cli/command.js';

export const factoryCommands: Record<string, Command> = {};
