// A board bundle from dist/ (puckjs.js, mdbt42q.js, ...) run unchanged under
// Node in a bare vm context that stands in for the board: NRF (GATT,
// advertising, connect events, CCCD writes, notifications), E (temperature, battery,
// CRC32, hwRand, password, console lock), Puck and Bangle sensors,
// LoopbackA, require("Storage") with NOR semantics (bits only clear until a
// file is replaced), require("Flash") free pages, require("crypto").AES with
// the builtins the board has, and a virtual clock behind getTime and
// setTimeout. It proves the minified BLE build works; only the interpreter
// proves it parses there (the opt-in half of test/firmware/board-bundles.test.ts).
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import type { BoardProfile } from '../../boards/types.js';
import { boardAesFeatures, createEspruinoAes } from './aes.js';
import { kernelMachine, type KernelMachine, type KernelMachineOptions } from './kernel.js';
import { VirtualClock } from '../../hal/sim/clock.js';
import { crc32 } from '../../protocol/wire/crc32.js';

export const PAGE = 4096;
/** The free flash area the Flash stand-in reports: four pages. */
export const FREE_AREA = { addr: 0xf0000, length: 4 * PAGE };

/** What the sensors of the stand-in read, in the builtins' own units. */
export const READINGS = { temperature: 21.25, battery: 87, batteryVoltage: 3.012, light: 0.4321, mag: { x: 123, y: -45, z: 2000 }, accelMag: 1.018 };

export interface GattCall {
  services: Record<string, Record<string, Record<string, unknown>>>;
  options: Record<string, unknown>;
}

export interface BoardRig {
  clock: VirtualClock;
  lines: string[];
  gatt: GattCall[];
  advertising: Array<{ data: unknown; options: Record<string, unknown> }>;
  scanResponse: number[][];
  /** Copies of every notified frame, in order. */
  notified: Uint8Array[];
  console: { password?: string; locked: boolean; loopback: boolean };
  storage: Map<string, Uint8Array>;
  /** Storage calls that created or replaced a file after the bundle started. */
  fileReplacements: string[];
  flash: Uint8Array;
  connect(): void;
  disconnect(): void;
  writeAck(ack: Uint8Array): void;
  /** The central writes the frames characteristic's CCCD (the firmware's onWriteDesc): 1 = notifications on, 0 = off. */
  writeCccd(value: number): void;
  /** Runs the bundle (its boot code runs now; its timers run as the clock advances). */
  start(): void;
  /** The stand-in that runs the compiled kernel for native-kernel bundles (sim/espruino/kernel.ts). */
  kernel: KernelMachine;
}

/** How the board runs a native-kernel bundle's kernel: in place from flash (default) or copied to RAM, and fault injection. */
export type RigKernelOptions = Omit<KernelMachineOptions, 'files'>;

export function boardRig(board: BoardProfile, bundleFile: string, files: Record<string, Uint8Array>, kernelOptions: RigKernelOptions = {}): BoardRig {
  const clock = new VirtualClock();
  const handlers: Record<string, () => void> = {};
  let started = false;
  const rig: BoardRig = {
    clock,
    lines: [],
    gatt: [],
    advertising: [],
    scanResponse: [],
    notified: [],
    console: { locked: false, loopback: false },
    storage: new Map(Object.entries(files).map(([k, v]) => [k, v.slice()])),
    fileReplacements: [],
    flash: new Uint8Array(FREE_AREA.length).fill(0xff),
    connect: () => handlers.connect!(),
    disconnect: () => handlers.disconnect!(),
    writeAck: (ack) => {
      const call = rig.gatt.at(-1)!;
      for (const chars of Object.values(call.services)) {
        for (const c of Object.values(chars)) if (typeof c.onWrite === 'function') (c.onWrite as (e: { data: ArrayBuffer }) => void)({ data: ack.slice().buffer });
      }
    },
    writeCccd: (value) => {
      const call = rig.gatt.at(-1)!;
      for (const chars of Object.values(call.services)) {
        for (const c of Object.values(chars)) if (typeof c.onWriteDesc === 'function') (c.onWriteDesc as (e: { data: ArrayBuffer }) => void)({ data: new Uint8Array([value, 0]).buffer });
      }
    },
    start: () => {
      started = true;
      vm.runInContext(readFileSync(bundleFile, 'utf8'), context, { filename: bundleFile });
    },
    kernel: undefined as unknown as KernelMachine,
  };
  rig.kernel = kernelMachine({ ...kernelOptions, files: () => rig.storage });

  const Storage = {
    readArrayBuffer: (name: string) => rig.storage.get(name)?.buffer,
    read: (name: string) => rig.kernel.read(name),
    write: (name: string, data: Uint8Array | string, offset?: number, size?: number) => {
      const bytes = typeof data === 'string' ? Uint8Array.from(Buffer.from(data, 'latin1')) : Uint8Array.from(data);
      if (offset) {
        // Espruino writes into the existing file's flash: bits only clear.
        const file = rig.storage.get(name);
        if (!file || offset + bytes.length > file.length) return false;
        for (let i = 0; i < bytes.length; i++) file[offset + i]! &= bytes[i]!;
        return true;
      }
      if (started) rig.fileReplacements.push(name);
      const file = new Uint8Array(Math.max(size ?? 0, bytes.length)).fill(0xff);
      file.set(bytes);
      rig.storage.set(name, file);
      return true;
    },
  };

  const inArea = (addr: number, n: number) => {
    if (addr < FREE_AREA.addr || addr + n > FREE_AREA.addr + FREE_AREA.length) throw new Error(`flash access at ${addr.toString(16)} outside the free area`);
    return addr - FREE_AREA.addr;
  };
  const Flash = {
    getFree: () => [{ ...FREE_AREA }],
    getPage: (addr: number) => (addr >= FREE_AREA.addr && addr < FREE_AREA.addr + FREE_AREA.length ? { addr: addr - (addr % PAGE), length: PAGE } : undefined),
    read: (n: number, addr: number) => rig.flash.slice(inArea(addr, n), inArea(addr, n) + n),
    write: (data: Uint8Array, addr: number) => {
      const at = inArea(addr, data.length);
      for (let i = 0; i < data.length; i++) rig.flash[at + i]! &= data[i]!;
    },
    erasePage: (addr: number) => rig.flash.fill(0xff, inArea(addr, PAGE), inArea(addr, PAGE) + PAGE),
  };

  const aes = createEspruinoAes({ features: boardAesFeatures(board.crypto), print: (l) => rig.lines.push(l) });
  const context = vm.createContext({
    print: (text: unknown) => rig.lines.push(String(text)),
    require: (name: string) => {
      if (name === 'Storage') return Storage;
      if (name === 'Flash') return Flash;
      if (name === 'crypto') return { AES: aes };
      throw new Error(`Module ${name} not found`);
    },
    getTime: () => clock.now() / 1000,
    // Passes its argument on, as Espruino's does (the device's one timer handler reads it).
    setTimeout: (fn: (arg: unknown) => void, ms: number, arg?: unknown) => clock.setTimeout(() => fn(arg), ms),
    clearTimeout: (id: number) => clock.clearTimeout(id),
    Uint8Array,
    Uint32Array,
    ArrayBuffer,
    DataView,
    Error,
    NRF: {
      setServices: (services: GattCall['services'], options: Record<string, unknown>) => rig.gatt.push({ services, options }),
      setAdvertising: (data: unknown, options: Record<string, unknown>) => rig.advertising.push({ data, options }),
      setScanResponse: (data: ArrayLike<number>) => rig.scanResponse.push(Array.from(data)),
      on: (event: string, fn: () => void) => (handlers[event] = fn),
      updateServices: (update: Record<string, Record<string, { value: Uint8Array; notify?: boolean }>>) => {
        for (const chars of Object.values(update)) for (const c of Object.values(chars)) if (c.notify) rig.notified.push(Uint8Array.from(c.value));
      },
      getBattery: () => READINGS.batteryVoltage,
    },
    atob: (b64: string) => Buffer.from(b64, 'base64').toString('latin1'),
    E: {
      ...rig.kernel.E,
      getTemperature: () => READINGS.temperature,
      getBattery: () => READINGS.battery,
      CRC32: (data: Uint8Array | string) => crc32(typeof data === 'string' ? Uint8Array.from(Buffer.from(data, 'latin1')) : data),
      hwRand: () => randomInt(0, 2 ** 32) | 0,
      setPassword: (pw: string) => (rig.console.password = pw),
      lockConsole: () => (rig.console.locked = true),
    },
    Puck: { light: () => READINGS.light, mag: () => ({ ...READINGS.mag }) },
    Bangle: { getAccel: () => ({ x: 0, y: 0, z: -1, mag: READINGS.accelMag }) },
    LoopbackA: { setConsole: (force: boolean) => (rig.console.loopback = force) },
  });
  vm.runInContext('var global = this;', context);
  return rig;
}
