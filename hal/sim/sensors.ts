// Sensor models for the simulation, in SI units with the codec's channel
// names (style.md rule 4). Each has a daily cycle, a slow drift and Gaussian
// noise from a seeded PRNG, so two runs with one seed read the same values.
import type { Sensor } from '../types.js';
import { gaussian, seededRandom } from './random.js';

const DAY_MS = 86_400_000;

export interface SensorModelOptions {
  /** Milliseconds of simulated time (the device's uptime or a world clock). */
  now(): number;
  seed: number;
}

type Model = (t: number, noise: () => number) => { [channel: string]: number };

const MODELS: { [id: string]: Model } = {
  temperature: (t, n) => ({ temperature: 21 + 3 * Math.sin((2 * Math.PI * t) / DAY_MS) + (0.1 * t) / DAY_MS + 0.05 * n() }),
  battery: (t, n) => ({ battery: Math.max(0, 100 - (t / DAY_MS) * 0.5 + 0.2 * n()) }),
  battery_voltage: (t, n) => ({ battery_voltage: Math.max(2, 3.0 - (t / DAY_MS) * 0.005 + 0.005 * n()) }),
  humidity: (t, n) => ({ humidity: 45 + 10 * Math.sin((2 * Math.PI * t) / DAY_MS + 1) + 0.3 * n() }),
  pressure: (t, n) => ({ pressure: 1013 + 5 * Math.sin((2 * Math.PI * t) / (3 * DAY_MS)) + 0.1 * n() }),
  light: (t, n) => ({ light: Math.min(1, Math.max(0, Math.sin((2 * Math.PI * t) / DAY_MS) + 0.01 * n())) }),
  magnetometer: (t, n) => ({ magnetic_x: 20 + n(), magnetic_y: -5 + n(), magnetic_z: 43 + n() + 0 * t }),
  acceleration: (_t, n) => ({ acceleration: 1 + 0.01 * n() }),
};

export function simSensor(id: string, options: SensorModelOptions): Sensor {
  const model = MODELS[id];
  if (!model) throw new Error(`no simulated sensor "${id}": expected one of ${Object.keys(MODELS).join(', ')}`);
  const random = seededRandom(options.seed);
  const noise = () => gaussian(random);
  let open = true;
  return {
    sample: () => (open ? model(options.now(), noise) : undefined),
    close: () => {
      open = false;
    },
  };
}

export const SIM_SENSOR_IDS = Object.keys(MODELS);
