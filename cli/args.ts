// The one argument parser and the one UsageError of every `sealpost` command.
// A command that finds its command line wrong throws UsageError; cli/main.ts
// prints `sealpost CMD: <what was wrong>` and the command's usage, and exits 2.
import { parseArgs } from 'node:util';
import { boardProfile, BOARDS, type BoardProfile } from '../boards/index.js';

/** A mistake in the command line: exit code 2 and the usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given more than once; the value is then a list. */
  multiple?: boolean;
}

export type Flags = Record<string, Flag>;
export type Values = Record<string, string | boolean | string[] | undefined>;

// "--speed -1" is a negative number, not a forgotten value before another option.
const NUMBER = /^-\d/;

/**
 * Options and positionals, checked against `flags`: an unknown option, a
 * string option without its value, a value given to a boolean, or more than
 * `most` positionals is a UsageError that names it. The last of a repeated
 * option wins, as with node:util parseArgs.
 */
export function parseFlags(args: string[], flags: Flags, most = Number.POSITIVE_INFINITY): { values: Values; positionals: string[] } {
  const { tokens } = parseArgs({ args, options: flags, strict: false, allowPositionals: true, tokens: true });
  const values: Values = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') {
      if (positionals.length >= most) throw new UsageError(`unexpected argument "${t.value}"`);
      positionals.push(t.value);
      continue;
    }
    if (t.kind !== 'option') continue;
    const flag = Object.hasOwn(flags, t.name) ? flags[t.name]! : undefined;
    if (flag === undefined) throw new UsageError(`unknown option ${t.rawName}`);
    if (flag.type === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value`);
      values[t.name] = true;
      continue;
    }
    if (t.value === undefined) throw new UsageError(`${t.rawName} needs a value`);
    if (!t.inlineValue && t.value.startsWith('-') && !NUMBER.test(t.value)) {
      throw new UsageError(`${t.rawName} needs a value, got the option ${t.value} (write ${t.rawName}=${t.value} if that is the value)`);
    }
    if (flag.multiple) values[t.name] = [...((values[t.name] as string[] | undefined) ?? []), t.value];
    else values[t.name] = t.value;
  }
  return { values, positionals };
}

/** A string option's value, or undefined when it was not given. */
export function stringOption(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A string option the command cannot do without. */
export function required(values: Values, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

/**
 * A numeric option: `fallback` when not given; otherwise a number in
 * [min, max] (whole when `whole`), or a UsageError naming the option, the
 * range and what was given.
 */
export function numberOption(values: Values, name: string, range: { min: number; max: number; whole?: boolean; unit?: string }, fallback: number): number {
  const text = stringOption(values, name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < range.min || n > range.max || (range.whole && !Number.isInteger(n))) {
    const kind = `${range.whole ? 'a whole number' : 'a number'}${range.unit ? ` of ${range.unit}` : ''}`;
    throw new UsageError(`--${name} must be ${kind} from ${range.min} to ${range.max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** Runs a library check of an argument (a serial range, a token name, ...); what it throws becomes a UsageError. */
export function checkedArg<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function boardArg(id: string): BoardProfile {
  try {
    return boardProfile(id);
  } catch {
    throw new UsageError(`--board "${id}" is not a board: use one of ${BOARDS.map((b) => b.id).join(', ')}`);
  }
}
