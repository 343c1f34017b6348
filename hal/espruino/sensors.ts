// Sensor drivers over Espruino's board builtins, in SI units keyed by codec
// channel name (style.md rule 4). Each receives the builtin it reads (E, NRF,
// Puck, Bangle: the board entry reads the globals); the board objects a build
// may lack (Puck, Bangle) are checked, throwing when absent;
// test/hal/espruino/sensors.test.ts drives them with fakes.
import type { Sensor } from '../types.js';
import type { BangleGlobal, EGlobal, NrfGlobal, PuckGlobal } from './globals.js';

// One class for every driver, and no function per sensor: a sensor is its
// builtin and which reading it takes (a small number), and sample() on the
// shared prototype reads it. A read closure per sensor kept, for good, the
// function, its code, the link to its scope and that scope with the builtin
// (about 6 variables per sensor on the interpreter, docs/firmware.md "Fifth
// pass"); a number field costs one. close() drops the builtin, so a closed
// sensor reads nothing (docs/firmware.md, "Fourth pass": no open flag).
// The kinds, in the order sample() tests them.
const TEMPERATURE = 0;
const BATTERY = 1;
const BATTERY_VOLTAGE = 2;
const LIGHT = 3;
const MAGNETIC = 4;
const ACCELERATION = 5;

type Builtin = EGlobal | NrfGlobal | PuckGlobal | BangleGlobal;

class BuiltinSensor implements Sensor {
  private b: Builtin | undefined;
  private k: number;
  constructor(builtin: Builtin, kind: number) {
    this.b = builtin;
    this.k = kind;
  }
  sample(): { [channel: string]: number } | undefined {
    const b = this.b as (EGlobal & NrfGlobal & PuckGlobal & BangleGlobal) | undefined;
    const k = this.k;
    if (!b) return undefined;
    if (k === TEMPERATURE) return { temperature: b.getTemperature() };
    // E.getBattery and NRF.getBattery: percent and volts, under their own channels.
    if (k === BATTERY) return { battery: b.getBattery() };
    if (k === BATTERY_VOLTAGE) return { battery_voltage: b.getBattery() };
    if (k === LIGHT) return { light: b.light() };
    if (k === MAGNETIC) {
      const m = b.mag();
      return { magnetic_x: m.x / 10, magnetic_y: m.y / 10, magnetic_z: m.z / 10 };
    }
    return { acceleration: b.getAccel().mag };
  }
  close(): void {
    this.b = undefined;
  }
}

function need<T>(builtin: T | undefined, name: string): T {
  if (!builtin) throw new Error(name + ' is not available on this board');
  return builtin;
}

/** The nRF52's die temperature sensor, °C (E.getTemperature). */
export function temperatureSensor(E: EGlobal): Sensor {
  return new BuiltinSensor(E, TEMPERATURE);
}

/** Battery level in percent (E.getBattery, estimated from the supply voltage). */
export function batterySensor(E: EGlobal): Sensor {
  return new BuiltinSensor(E, BATTERY);
}

/** Supply voltage in volts (NRF.getBattery). */
export function batteryVoltageSensor(NRF: NrfGlobal): Sensor {
  return new BuiltinSensor(NRF, BATTERY_VOLTAGE);
}

/** Puck.js light sensor, 0..1 (Puck.light). */
export function puckLightSensor(Puck: PuckGlobal | undefined): Sensor {
  return new BuiltinSensor(need(Puck, 'Puck'), LIGHT);
}

/**
 * Puck.js magnetometer (Puck.mag). Raw units differ by hardware revision;
 * this uses 0.1 µT per count (Puck.js v1's MAG3110, per the Puck.js reference
 * page). Other revisions need their own factor before the values are compared
 * across boards.
 */
export function puckMagnetometer(Puck: PuckGlobal | undefined): Sensor {
  return new BuiltinSensor(need(Puck, 'Puck'), MAGNETIC);
}

/** Bangle.js 2 accelerometer magnitude in g (Bangle.getAccel().mag). */
export function bangleAcceleration(Bangle: BangleGlobal | undefined): Sensor {
  return new BuiltinSensor(need(Bangle, 'Bangle'), ACCELERATION);
}
