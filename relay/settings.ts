// The relay's options checked and completed with their defaults
// (docs/relay.md, "Using the core"; each option is described in RelayOptions).
import { RelayError, type RelayOptions } from './contracts.js';

const RELAY_ID_PATTERN = /^[\x21-\x7e]{1,64}$/;

const DEFAULTS = {
  maxFramesPerRequest: 200,
  maxDevicesPerRequest: 100,
  maxFramesPerDevice: 500,
  flushDelayMs: 1000,
  requestTimeoutMs: 20_000,
  backoffBaseMs: 1000,
  backoffCapMs: 30_000,
  maxRetryAfterMs: 600_000,
  maxQueueFrames: 100_000,
  linkPollMs: 1000,
  stallMs: 15_000,
};

export type RelaySettings = typeof DEFAULTS;

/** Options that count something must be at least 1; times may be 0. */
const COUNTS = new Set<keyof RelaySettings>(['maxFramesPerRequest', 'maxDevicesPerRequest', 'maxFramesPerDevice', 'maxQueueFrames']);

/** Throws a RelayError naming the first bad option. */
export function relaySettings(options: RelayOptions): RelaySettings {
  if (typeof options.relayId !== 'string' || !RELAY_ID_PATTERN.test(options.relayId)) {
    throw new RelayError(`relayId must be 1 to 64 printable ASCII characters without spaces, got ${JSON.stringify(options.relayId)}`);
  }
  const o = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS) as (keyof RelaySettings)[]) {
    const v = options[k];
    if (v === undefined) continue;
    const min = COUNTS.has(k) ? 1 : 0;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new RelayError(`${k} must be a number >= ${min}, got ${JSON.stringify(v)}`);
    o[k] = v;
  }
  return o;
}
