// Sensor drivers over Espruino's board builtins, in SI units keyed by codec
// channel name (style.md rule 4). Each constructor checks that the builtin
// exists and throws otherwise.
import type { Sensor } from '../types.js';
import { boardGlobal, espruinoE, nrf } from './globals.js';

function sensor(read: () => { [channel: string]: number }): Sensor {
  let open = true;
  return {
    sample: function () {
      return open ? read() : undefined;
    },
    close: function (): void {
      open = false;
    },
  };
}

function need(name: string): { [fn: string]: () => unknown } {
  const g = boardGlobal(name) as { [fn: string]: () => unknown } | undefined;
  if (!g) throw new Error(name + ' is not available on this board');
  return g;
}

/** The nRF52's die temperature sensor, °C (E.getTemperature). */
export function temperatureSensor(): Sensor {
  const E = espruinoE();
  return sensor(function () {
    return { temperature: E.getTemperature() };
  });
}

/** Battery level in percent (E.getBattery, estimated from the supply voltage). */
export function batterySensor(): Sensor {
  const E = espruinoE();
  return sensor(function () {
    return { battery: E.getBattery() };
  });
}

/** Supply voltage in volts (NRF.getBattery). */
export function batteryVoltageSensor(): Sensor {
  const N = nrf();
  return sensor(function () {
    return { battery_voltage: N.getBattery() };
  });
}

/** Puck.js light sensor, 0..1 (Puck.light). */
export function puckLightSensor(): Sensor {
  const Puck = need('Puck');
  return sensor(function () {
    return { light: Puck.light!() as number };
  });
}

/**
 * Puck.js magnetometer (Puck.mag). Raw units differ by hardware revision;
 * this uses 0.1 µT per count (Puck.js v1's MAG3110, per the Puck.js reference
 * page). Other revisions need their own factor before the values are compared
 * across boards.
 */
export function puckMagnetometer(): Sensor {
  const Puck = need('Puck');
  return sensor(function () {
    const m = Puck.mag!() as { x: number; y: number; z: number };
    return { magnetic_x: m.x / 10, magnetic_y: m.y / 10, magnetic_z: m.z / 10 };
  });
}

/** Bangle.js 2 accelerometer magnitude in g (Bangle.getAccel().mag). */
export function bangleAcceleration(): Sensor {
  const Bangle = need('Bangle');
  return sensor(function () {
    return { acceleration: (Bangle.getAccel!() as { mag: number }).mag };
  });
}
