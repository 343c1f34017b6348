// The Espruino sensor drivers (hal/espruino/sensors.ts) on hand-made E, NRF,
// Puck and Bangle objects: SI units under the codec's channel names, nothing
// after close(), and a clear error when the board lacks the builtin.
import { describe, expect, it } from 'vitest';
import { bangleAcceleration, batterySensor, batteryVoltageSensor, puckLightSensor, puckMagnetometer, temperatureSensor } from '../../../hal/espruino/sensors.js';
import type { EGlobal, NrfGlobal } from '../../../hal/espruino/globals.js';

const E = { getTemperature: () => 21.5, getBattery: () => 87 } as unknown as EGlobal;
const NRF = { getBattery: () => 3.012 } as unknown as NrfGlobal;

describe('Espruino sensor drivers on fake builtins', () => {
  it('read E, NRF, Puck and Bangle in SI units keyed by channel name', () => {
    expect(temperatureSensor(E).sample()).toEqual({ temperature: 21.5 });
    expect(batterySensor(E).sample()).toEqual({ battery: 87 });
    expect(batteryVoltageSensor(NRF).sample()).toEqual({ battery_voltage: 3.012 });
    const Puck = { light: () => 0.25, mag: () => ({ x: 123, y: -45, z: 2000 }) };
    expect(puckLightSensor(Puck).sample()).toEqual({ light: 0.25 });
    expect(puckMagnetometer(Puck).sample()).toEqual({ magnetic_x: 12.3, magnetic_y: -4.5, magnetic_z: 200 });
    expect(bangleAcceleration({ getAccel: () => ({ mag: 1.018 }) }).sample()).toEqual({ acceleration: 1.018 });
  });

  it('read the builtin at every sample, and return nothing once closed', () => {
    let t = 20;
    const sensor = temperatureSensor({ getTemperature: () => t++ } as unknown as EGlobal);
    expect(sensor.sample()).toEqual({ temperature: 20 });
    expect(sensor.sample()).toEqual({ temperature: 21 });
    sensor.close();
    expect(sensor.sample()).toBeUndefined();
  });

  it('throw when the board has no Puck or Bangle object', () => {
    expect(() => puckLightSensor(undefined)).toThrow('Puck is not available on this board');
    expect(() => puckMagnetometer(undefined)).toThrow('Puck is not available on this board');
    expect(() => bangleAcceleration(undefined)).toThrow('Bangle is not available on this board');
  });
});
