// Every board profile, for host tools (factory, server, simulation). A
// firmware bundle imports only its own board's file.
import { PROFILE as puckjs } from './puckjs.js';
import { PROFILE as mdbt42q } from './mdbt42q.js';
import { PROFILE as pixljs } from './pixljs.js';
import { PROFILE as banglejs2 } from './banglejs2.js';
import { PROFILE as nrf52840dk } from './nrf52840dk.js';
import { PROFILE as espruino_linux } from './espruino-linux.js';
import { PROFILE as sim } from './sim.js';
import type { BoardProfile, DeviceSettings } from './types.js';

export type { BoardId, BoardProfile, CounterStoreProfile, DeviceSettings, SensorId } from './types.js';

export const BOARDS: readonly BoardProfile[] = [puckjs, mdbt42q, pixljs, banglejs2, nrf52840dk, espruino_linux, sim];

export function boardProfile(id: string): BoardProfile {
  const found = BOARDS.find((b) => b.id === id);
  if (!found) throw new Error(`unknown board "${id}": expected one of ${BOARDS.map((b) => b.id).join(', ')}`);
  return found;
}

/** A copy of `profile` with some of its device settings replaced (simulations and tests). */
export function withDevice(profile: BoardProfile, settings: Partial<DeviceSettings>): BoardProfile {
  return { ...profile, device: { ...profile.device, ...settings } };
}
