// The relay's log lines: the console logger used when none is given, and
// text from servers and errors cut to a bounded length before it is logged.
import type { LogLevel } from './contracts.js';

/** Longest server-supplied text copied into a log line. */
const MAX_ECHO = 200;

export function clip(text: unknown): string {
  const s = typeof text === 'string' ? text : JSON.stringify(text) ?? String(text);
  return s.length > MAX_ECHO ? s.slice(0, MAX_ECHO) + '...' : s;
}

/** An error's message and its cause's, clipped. */
export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    const detail = cause instanceof Error ? `: ${cause.message}` : '';
    return clip(e.message + detail);
  }
  return clip(String(e));
}

export function defaultLog(level: LogLevel, message: string): void {
  const line = `relay: ${message}`;
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}
