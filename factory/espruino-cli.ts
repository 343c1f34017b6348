// Runs the real espruino CLI (npm package `espruino`, bin/espruino-cli.js)
// as a child process and collects what it printed. The CLI prints the
// device's console output on stdout as lines starting with "--] ", its own
// messages without that prefix, and connection errors on stderr; it exits 0
// even when it could not connect, so callers judge the output, not the code.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

export interface EspruinoRun {
  /** Exit code, or null when it was stopped or timed out. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Console lines of the device (the "--] " lines), without the prefix. */
  deviceLines: string[];
  timedOut: boolean;
  /** Stopped by the caller's stopWhen() (e.g. the boot line arrived). */
  stopped: boolean;
  /** The CLI's own reason when it could not reach the device. */
  connectError?: string;
}

export interface RunOptions {
  timeoutMs: number;
  cwd?: string;
  /** Checked after every device line; true stops the CLI early. */
  stopWhen?: (deviceLines: string[]) => boolean;
}

export type EspruinoRunner = (args: string[], options: RunOptions) => Promise<EspruinoRun>;

/** Path of the espruino CLI's entry script in node_modules. */
export function espruinoCliPath(): string {
  return createRequire(import.meta.url).resolve('espruino/bin/espruino-cli.js');
}

const DEVICE_PREFIX = '--] ';

/** Why the CLI could not reach the device, from its output, if it says so. */
export function connectErrorOf(stdout: string, stderr: string): string | undefined {
  const text = `${stderr}\n${stdout}`;
  const refused = /RECEIVE ERROR: (\{.*\})/.exec(text);
  if (refused) {
    try {
      const info = JSON.parse(refused[1]!) as { code?: string; address?: string; port?: number };
      return `${info.code ?? 'socket error'}${info.address ? ` (${info.address}:${info.port ?? ''})` : ''}`;
    } catch {
      return 'socket error';
    }
  }
  const notFound = /serial: (Port .* not found)/.exec(text);
  if (notFound) return notFound[1]!;
  const other = /^(Error: .*|.*Unable to connect!.*|Port named .* not found)$/m.exec(text);
  return other ? other[1]!.trim() : undefined;
}

export const runEspruinoCli: EspruinoRunner = (args, options) =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [espruinoCliPath(), ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    const deviceLines: string[] = [];
    let timedOut = false;
    let stopped = false;
    let finished = false;
    const stop = (why: 'timeout' | 'stop') => {
      if (finished) return;
      if (why === 'timeout') timedOut = true;
      else stopped = true;
      child.kill('SIGTERM');
      setTimeout(() => {
        if (!finished) child.kill('SIGKILL');
      }, 2000).unref();
    };
    const timer = setTimeout(() => stop('timeout'), options.timeoutMs);
    child.stdout.setEncoding('latin1');
    child.stderr.setEncoding('latin1');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).replace(/\r$/, '');
        pending = pending.slice(nl + 1);
        if (line.startsWith(DEVICE_PREFIX)) {
          deviceLines.push(line.slice(DEVICE_PREFIX.length));
          if (options.stopWhen?.(deviceLines)) stop('stop');
        }
      }
    });
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      // The CLI gives up on a missing port by itself but may linger; no device will answer.
      if (/Unable to connect!|RECEIVE ERROR/.test(stderr)) stop('stop');
    });
    child.on('close', (code) => {
      finished = true;
      clearTimeout(timer);
      resolve({ code: timedOut || stopped ? null : code, stdout, stderr, deviceLines, timedOut, stopped, connectError: connectErrorOf(stdout, stderr) });
    });
    child.on('error', (e) => {
      finished = true;
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}${e.message}`, deviceLines, timedOut, stopped, connectError: `cannot start the espruino CLI: ${e.message}` });
    });
  });

/**
 * Device output for an operator's eyes: any run of 16 or more base64 or hex
 * characters is cut out, so an echoed upload command (which carries the
 * device file as base64) can never reach a log.
 */
export function redactDeviceText(text: string): string {
  return text.replace(/[A-Za-z0-9+/=_-]{16,}/g, '[...]').replace(/[^\x20-\x7e]/g, '?');
}
