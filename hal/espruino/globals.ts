// The interpreter's globals, and the only module that reads them: the board
// entries (firmware/targets/) call these accessors and hand each builtin to
// the driver that needs it (style.md rule 1), so drivers can be tested with
// fakes (test/hal/espruino/). Declared at module scope, not globally, so the
// firmware typechecks against lib ES5 and these names do not leak into the
// Node side's types. The import-rule check (tools/import-rules.ts) lets only
// firmware/targets/ import this module for more than its types.
import type { EspruinoAes } from '../types.js';

export interface EspruinoCryptoModule {
  AES?: EspruinoAes;
}

export interface EspruinoFlashModule {
  getFree(): { addr: number; length: number }[];
  getPage(addr: number): { addr: number; length: number } | undefined;
  read(length: number, addr: number): Uint8Array;
  write(data: Uint8Array, addr: number): void;
  erasePage(addr: number): void;
}

export interface EspruinoStorageModule {
  readArrayBuffer(name: string): ArrayBuffer | undefined;
  /** A file as a string: on an nRF52 one that points into memory-mapped flash (../shared/espruino.md, "Native code"). */
  read(name: string): string | undefined;
  write(name: string, data: Uint8Array | string, offset?: number, size?: number): boolean;
}

export interface NrfGlobal {
  setServices(services: object, options: object): void;
  updateServices(services: object): void;
  setAdvertising(data: object, options: object): void;
  setScanResponse(data: Uint8Array): void;
  on(event: string, fn: () => void): void;
  getBattery(): number;
}

export interface EGlobal {
  getTemperature(): number;
  getBattery(): number;
  CRC32(data: Uint8Array): number;
  hwRand(): number;
  setPassword(password: string): void;
  lockConsole(): void;
  /** With flat = true: the address of the data of a flat string, native (flash) string or flat ArrayBuffer; 0 when there is none. */
  getAddressOf(v: unknown, flat: boolean): number;
  /** A native function at addr (with data: at addr + the address of data as a flat string, copied into RAM first when it is not one). */
  nativeCall(addr: number, signature: string, data?: string): (a: number, b: number, c: number, d: number) => number;
  /** The arguments' bytes as one flat string, or undefined when no contiguous block is free. */
  toFlatString(data: unknown): string | undefined;
  /** A string's bytes (latin1) as a new Uint8Array. */
  toUint8Array(s: string): Uint8Array;
}

/** Puck.js's board object (its light sensor and magnetometer). */
export interface PuckGlobal {
  light(): number;
  mag(): { x: number; y: number; z: number };
}

/** Bangle.js's board object (its accelerometer). */
export interface BangleGlobal {
  getAccel(): { mag: number };
}

/** The loopback console device the REPL can be moved to. */
export interface LoopbackGlobal {
  setConsole(force: boolean): void;
}

declare function require(name: 'crypto'): EspruinoCryptoModule;
declare function require(name: 'Flash'): EspruinoFlashModule;
declare function require(name: 'Storage'): EspruinoStorageModule;
declare function print(text: string): void;
declare function getTime(): number;
declare function setTimeout(fn: (arg: number) => void, ms: number, arg: number): unknown;
declare function clearTimeout(handle: unknown): void;
declare const NRF: NrfGlobal;
declare const E: EGlobal;
declare const global: { [name: string]: unknown };

export function cryptoAes(): EspruinoAes {
  const mod = require('crypto');
  return (mod && mod.AES) || {};
}

export function flashModule(): EspruinoFlashModule {
  return require('Flash');
}

export function storageModule(): EspruinoStorageModule {
  return require('Storage');
}

export function nrf(): NrfGlobal {
  return NRF;
}

export function espruinoE(): EGlobal {
  return E;
}

// The interpreter's own functions, handed on as they are (native functions
// need no `this`): a wrapper function here would be one more function object
// the interpreter keeps alive for good, about four variables each, and its
// bytes in every bundle (docs/firmware.md, "Memory on the interpreter").
// Read through functions, like nrf() and espruinoE(), not kept in constants:
// terser inlines each call as the builtin's own name, where a constant stays
// a top-level name of the bundle, one variable for good (docs/firmware.md,
// "Fifth pass").
export function printLine(): (text: string) => void {
  return print;
}
export function secondsNow(): () => number {
  return getTime;
}
export function timeout(): (fn: (arg: number) => void, ms: number, arg: number) => unknown {
  return setTimeout;
}
export function cancelTimeout(): (handle: unknown) => void {
  return clearTimeout;
}

/** A board global such as Puck or Bangle, or LoopbackA; undefined when this build lacks it. */
export function boardGlobal<T>(name: string): T | undefined {
  return global[name] as T | undefined;
}

/** Makes `fn` callable from the console as `name(...)` (development targets only). */
export function exposeGlobal(name: string, fn: unknown): void {
  global[name] = fn;
}
