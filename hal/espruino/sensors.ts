// Sensor drivers over Espruino's board builtins, in SI units keyed by codec
// channel name (style.md rule 4). Each receives the builtin it reads (E, NRF,
// Puck, Bangle: the board entry reads the globals); the board objects a build
// may lack (Puck, Bangle) are checked, throwing when absent;
// test/hal/espruino/sensors.test.ts drives them with fakes.
import type { Sensor } from '../types.js';
import type { BangleGlobal, EGlobal, NrfGlobal, PuckGlobal } from './globals.js';

// One class for every driver: the instances share sample() and close() on
// the prototype, so a sensor costs the interpreter its object, two fields and
// its read function instead of two closures and their scope (docs/firmware.md,
// "Memory on the interpreter").
// close() drops the read function rather than setting an open flag: one
// field less per sensor, kept for good (docs/firmware.md, "Fourth pass").
class BuiltinSensor implements Sensor {
  private r: (() => { [channel: string]: number }) | undefined;
  constructor(read: () => { [channel: string]: number }) {
    this.r = read;
  }
  sample(): { [channel: string]: number } | undefined {
    return this.r ? this.r() : undefined;
  }
  close(): void {
    this.r = undefined;
  }
}

function need<T>(builtin: T | undefined, name: string): T {
  if (!builtin) throw new Error(name + ' is not available on this board');
  return builtin;
}

/** The nRF52's die temperature sensor, °C (E.getTemperature). */
export function temperatureSensor(E: EGlobal): Sensor {
  return new BuiltinSensor(function () {
    return { temperature: E.getTemperature() };
  });
}

/** Battery level in percent (E.getBattery, estimated from the supply voltage). */
export function batterySensor(E: EGlobal): Sensor {
  return new BuiltinSensor(function () {
    return { battery: E.getBattery() };
  });
}

/** Supply voltage in volts (NRF.getBattery). */
export function batteryVoltageSensor(NRF: NrfGlobal): Sensor {
  return new BuiltinSensor(function () {
    return { battery_voltage: NRF.getBattery() };
  });
}

/** Puck.js light sensor, 0..1 (Puck.light). */
export function puckLightSensor(Puck: PuckGlobal | undefined): Sensor {
  const P = need(Puck, 'Puck');
  return new BuiltinSensor(function () {
    return { light: P.light() };
  });
}

/**
 * Puck.js magnetometer (Puck.mag). Raw units differ by hardware revision;
 * this uses 0.1 µT per count (Puck.js v1's MAG3110, per the Puck.js reference
 * page). Other revisions need their own factor before the values are compared
 * across boards.
 */
export function puckMagnetometer(Puck: PuckGlobal | undefined): Sensor {
  const P = need(Puck, 'Puck');
  return new BuiltinSensor(function () {
    const m = P.mag();
    return { magnetic_x: m.x / 10, magnetic_y: m.y / 10, magnetic_z: m.z / 10 };
  });
}

/** Bangle.js 2 accelerometer magnitude in g (Bangle.getAccel().mag). */
export function bangleAcceleration(Bangle: BangleGlobal | undefined): Sensor {
  const B = need(Bangle, 'Bangle');
  return new BuiltinSensor(function () {
    return { acceleration: B.getAccel().mag };
  });
}
