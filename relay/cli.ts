// `sealpost` subcommands of the relay: `sim`, a fleet of simulated devices
// relayed to a server. Parse arguments, call sim/run.ts, print, return
// an exit code (style.md rule 12): 0 done, 1 failed, 2 bad arguments.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../cli/command.js';
import { boardProfile, withDevice } from '../boards/index.js';
import type { BoardProfile, SensorId } from '../boards/types.js';
import { formatSummary, runSimFleet } from '../sim/run.js';

class UsageError extends Error {}

const SIM_USAGE =
  'sealpost sim --server URL [--devices N] [--duration D] [--keys DIR] [--manifest-out FILE] [--speed X] [--seed N] ' +
  '[--sensors LIST] [--queue FILE] [--fail-rate R] [--mean-link D] [--status-every D] [--wait D] [--drain D] [--relay-key KEY]';

const SIM_HELP = `${SIM_USAGE}

  --server URL        the ingest server, e.g. http://127.0.0.1:8080 (required)
  --devices N         simulated devices, 1..1000 (default 5)
  --duration D        simulated time to run: 90, 90s, 15m, 2h (default 60s)
  --keys DIR          fleet keys: an ingest public key and a factory private key file
                      (sealpost keys init); an empty or new DIR gets a new key set
                      (default .sealpost/sim-keys)
  --manifest-out FILE where to write the signed manifest (default DIR/<batch>.manifest.json)
  --speed X           simulated seconds per real second (default 1: real time)
  --seed N            seed of the simulation (sensors, chaos) (default 1)
  --sensors LIST      sensors of the 'sim' board, comma separated (default all five)
  --queue FILE        keep the relay's queue in this journal file (default in memory)
  --fail-rate R       share of uploads that fail on purpose, 0..1 (default 0)
  --mean-link D       the relay drops each link after about D (default never)
  --status-every D    real time between status lines, 0 for none (default 5s)
  --wait D            real time to wait for the manifest import (default 10m; 0: do not wait)
  --drain D           simulated time after the run for the last acks (default 60s)
  --relay-key KEY     sent with every upload as X-Sealpost-Relay-Key, for a server with relay_keys
                      (sealpost relay-key new NAME makes one); SEALPOST_RELAY_KEY works too and
                      keeps the key out of the process list

  SEALPOST_TOKEN      (environment) a read API token (sealpost token create --role read --name sim):
                      lets sim wait for the manifest import and report what the server stored;
                      uploads need none`;

/** "90", "90s", "1500ms", "15m", "2h" -> ms. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag} must be a duration such as 90, 90s, 15m or 2h, got ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
  const ms = Math.round(Number(m[1]) * unit);
  if (ms > 30 * 24 * 3_600_000) throw new UsageError(`${flag} is longer than 30 days`);
  return ms;
}

function number(text: string | undefined, flag: string, min: number, max: number, fallback: number, integer = false): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new UsageError(`${flag} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return v;
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

async function runSim(args: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
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
        help: { type: 'boolean', short: 'h' },
      },
    });
    values = parsed.values;
  } catch (e) {
    console.error(`sealpost sim: ${(e as Error).message}\nusage: ${SIM_USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(SIM_HELP);
    return 0;
  }
  let options: Parameters<typeof runSimFleet>[0];
  const abort = new AbortController();
  try {
    const server = values.server as string | undefined;
    if (!server) throw new UsageError('--server URL is required (the ingest server, e.g. http://127.0.0.1:8080)');
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw new UsageError(`--server must be a URL such as http://127.0.0.1:8080, got ${JSON.stringify(server)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--server must be http:// or https://, got ${url.protocol}`);
    const str = (k: string) => values[k] as string | undefined;
    options = {
      server: url.toString().replace(/\/+$/, ''),
      devices: number(str('devices'), '--devices', 1, 1000, 5, true),
      durationMs: str('duration') === undefined ? 60_000 : parseDuration(str('duration')!, '--duration'),
      keysDir: resolve(str('keys') ?? '.sealpost/sim-keys'),
      ...(str('manifest-out') !== undefined ? { manifestOut: resolve(str('manifest-out')!) } : {}),
      profile: profileWith(str('sensors')),
      speed: number(str('speed'), '--speed', 0.1, 1000, 1),
      seed: number(str('seed'), '--seed', 0, 2 ** 31, 1, true),
      ...(str('queue') !== undefined ? { queueFile: resolve(str('queue')!) } : {}),
      chaos: {
        failureRate: number(str('fail-rate'), '--fail-rate', 0, 1, 0),
        meanLinkMs: str('mean-link') === undefined ? 0 : parseDuration(str('mean-link')!, '--mean-link'),
      },
      statusEveryMs: str('status-every') === undefined ? 5000 : parseDuration(str('status-every')!, '--status-every'),
      waitImportMs: str('wait') === undefined ? 600_000 : parseDuration(str('wait')!, '--wait'),
      drainMs: str('drain') === undefined ? 60_000 : parseDuration(str('drain')!, '--drain'),
      ...relayKeyOption(str('relay-key') ?? process.env.SEALPOST_RELAY_KEY),
      signal: abort.signal,
      print: (line) => console.log(line),
      // From the environment, not a flag: a flag would show in the process list.
      ...(process.env.SEALPOST_TOKEN ? { token: process.env.SEALPOST_TOKEN } : {}),
    };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`sealpost sim: ${e.message}\nusage: ${SIM_USAGE}`);
    return 2;
  }
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

export const relayCommands: Record<string, Command> = {
  sim: {
    summary: 'run a fleet of simulated devices (real firmware, sim HAL) relayed to an ingest server',
    usage: SIM_HELP,
    run: runSim,
  },
};
