// `sealpost sim`: a fleet of simulated devices relayed to a server. Parse
// arguments (cli/args.ts), call sim/run.ts, print, return an exit code
// (style.md rule 12): 0 done, 1 failed; cli/main.ts holds the usage and
// prints usage errors (exit 2).
import { resolve } from 'node:path';
import { boardProfile, withDevice } from '../boards/index.js';
import type { BoardProfile, SensorId } from '../boards/types.js';
import { numberOption, parseFlags, stringOption, UsageError, type Values } from '../cli/args.js';
import { formatSummary, runSimFleet } from './run.js';

/** "90", "90s", "1500ms", "15m", "2h" -> ms. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag} must be a duration such as 90, 90s, 15m or 2h, got ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
  const ms = Math.round(Number(m[1]) * unit);
  if (ms > 30 * 24 * 3_600_000) throw new UsageError(`${flag} is longer than 30 days`);
  return ms;
}

function profileWith(sensors: string | undefined): BoardProfile {
  const sim = boardProfile('sim');
  if (sensors === undefined) return sim;
  const list = sensors.split(',').map((s) => s.trim()).filter(Boolean);
  const known = sim.device.sensors as string[];
  const unknown = list.filter((s) => !known.includes(s));
  if (list.length === 0 || unknown.length > 0) throw new UsageError(`--sensors takes a comma-separated list from ${known.join(', ')}${unknown.length ? `; not known: ${unknown.join(', ')}` : ''}`);
  return withDevice(sim, { sensors: list as SensorId[] });
}

function relayKeyOption(key: string | undefined): { relayKey?: string } {
  if (key === undefined) return {};
  // Printable ASCII without spaces: it goes into an HTTP header as is.
  if (!/^[\x21-\x7e]{1,256}$/.test(key)) throw new UsageError('--relay-key must be the key `sealpost relay-key new NAME` printed (printable characters, no spaces)');
  return { relayKey: key };
}

/** A duration option in ms: `fallback` when not given. */
function durationOption(values: Values, name: string, fallback: number): number {
  const text = stringOption(values, name);
  return text === undefined ? fallback : parseDuration(text, `--${name}`);
}

function serverUrl(server: string | undefined): string {
  if (!server) throw new UsageError('--server URL is required (the ingest server, e.g. http://127.0.0.1:8080)');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new UsageError(`--server must be a URL such as http://127.0.0.1:8080, got ${JSON.stringify(server)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--server must be http:// or https://, got ${url.protocol}`);
  return url.toString().replace(/\/+$/, '');
}

export async function runSim(args: string[]): Promise<number> {
  const { values } = parseFlags(
    args,
    {
      server: { type: 'string' },
      devices: { type: 'string' },
      duration: { type: 'string' },
      keys: { type: 'string' },
      'manifest-out': { type: 'string' },
      speed: { type: 'string' },
      seed: { type: 'string' },
      sensors: { type: 'string' },
      queue: { type: 'string' },
      'fail-rate': { type: 'string' },
      'mean-link': { type: 'string' },
      'status-every': { type: 'string' },
      wait: { type: 'string' },
      drain: { type: 'string' },
      'relay-key': { type: 'string' },
    },
    0,
  );
  const abort = new AbortController();
  const str = (k: string) => stringOption(values, k);
  const options: Parameters<typeof runSimFleet>[0] = {
    server: serverUrl(str('server')),
    devices: numberOption(values, 'devices', { min: 1, max: 1000, whole: true }, 5),
    durationMs: durationOption(values, 'duration', 60_000),
    keysDir: resolve(str('keys') ?? '.sealpost/sim-keys'),
    ...(str('manifest-out') !== undefined ? { manifestOut: resolve(str('manifest-out')!) } : {}),
    profile: profileWith(str('sensors')),
    speed: numberOption(values, 'speed', { min: 0.1, max: 1000 }, 1),
    seed: numberOption(values, 'seed', { min: 0, max: 2 ** 31, whole: true }, 1),
    ...(str('queue') !== undefined ? { queueFile: resolve(str('queue')!) } : {}),
    chaos: {
      failureRate: numberOption(values, 'fail-rate', { min: 0, max: 1 }, 0),
      meanLinkMs: durationOption(values, 'mean-link', 0),
    },
    statusEveryMs: durationOption(values, 'status-every', 5000),
    waitImportMs: durationOption(values, 'wait', 600_000),
    drainMs: durationOption(values, 'drain', 60_000),
    ...relayKeyOption(str('relay-key') ?? process.env.SEALPOST_RELAY_KEY),
    signal: abort.signal,
    print: (line) => console.log(line),
    // From the environment, not a flag: a flag would show in the process list.
    ...(process.env.SEALPOST_TOKEN ? { token: process.env.SEALPOST_TOKEN } : {}),
  };
  // The first Ctrl-C ends the run and prints the summary; with the listener
  // gone, a second one quits at once.
  const stop = () => {
    console.log('stopping (Ctrl-C again to quit at once)');
    abort.abort();
  };
  process.once('SIGINT', stop);
  try {
    const summary = await runSimFleet(options);
    console.log('');
    console.log(formatSummary(summary));
    if (summary.uploads > 0 && summary.uploads === summary.failedUploads) {
      console.error(`sealpost sim: no upload to ${options.server} succeeded; is the server running, and is the manifest imported?`);
      return 1;
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
  }
}
