// Argument handling shared by the factory's subcommands (factory/cli.ts,
// factory/flash-cli.ts): usage errors exit with 2 and print the usage.
import { parseArgs } from 'node:util';
import { boardProfile, BOARDS, type BoardProfile } from '../boards/index.js';

/** A mistake in the command line: exit code 2 and the usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;

/** parseArgs, with its errors turned into UsageErrors. */
export function parseFlags(args: string[], options: Options): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

export function boardArg(id: string): BoardProfile {
  try {
    return boardProfile(id);
  } catch {
    throw new UsageError(`--board "${id}" is not a board: use one of ${BOARDS.map((b) => b.id).join(', ')}`);
  }
}

/** Runs a command body; usage errors print the usage and return 2, others propagate to cli/main.ts (exit 1). */
export async function withUsage(name: string, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`sealpost ${name}: ${e.message}\nusage: ${usage}`);
      return 2;
    }
    throw e;
  }
}

