// Interfaces the firmware sees. Implementations live in hal/espruino (the
// interpreter's builtins), hal/plain (portable JS) and hal/sim (Node).

/**
 * AES-128-CCM with a 13-byte nonce, an 8-byte tag and no associated data
 * (design brief, "Frames"), the key fixed when the engine is made.
 */
export interface Ccm {
  /**
   * Returns a function that writes counter (4, BE) || ciphertext || tag (8)
   * into ring[at ..] under the nonce nonceSalt || counter || domain
   * (docs/protocol.md), for messages of exactly msgLen bytes (0 for ack
   * tags). Salt, domain and length are fixed per device and use, so the
   * backend lays them out once here and a frame costs only the counter
   * stores and the AES work.
   */
  framer(nonceSalt: Uint8Array, msgLen: number, ring: Uint8Array, domain: number): Framer;
}

/** Seals `msg` (exactly the framer's msgLen bytes) under `counter` into ring[at .. at + msgLen + 12). */
export type Framer = (counter: number, msg: Uint8Array, at: number) => void;

/** The two AES modes CCM is composed from (RFC 3610 section 2). */
export interface BlockModes {
  /** AES-CBC with a zero IV over whole blocks; returns the last ciphertext block (the CBC-MAC). */
  cbcMac(data: Uint8Array): Uint8Array;
  /** AES-ECB over whole blocks into `out`. */
  ecb(data: Uint8Array, out: Uint8Array): void;
}

/** The four device crypto backends of the design brief; a board profile names one. */
export type CryptoBackend = 'native-ccm' | 'native-aes' | 'native-kernel' | 'plain-js';

/** Byte sources Espruino's crypto builtins accept (they iterate anything array-like). */
export type EspruinoData = Uint8Array | ArrayBuffer | number[] | string;

/**
 * `require("crypto").AES` on Espruino (../shared/espruino.md, "Crypto builtins
 * per board"). Errors do not throw: they print `ERROR: ...` and return
 * undefined. Which functions exist depends on the board's build.
 */
export interface EspruinoAes {
  encrypt?: (msg: EspruinoData, key: EspruinoData, options?: { mode?: string; iv?: EspruinoData }) => ArrayBuffer | undefined;
  decrypt?: (msg: EspruinoData, key: EspruinoData, options?: { mode?: string; iv?: EspruinoData }) => ArrayBuffer | undefined;
  ccmEncrypt?: (msg: EspruinoData, key: EspruinoData, nonce: Uint8Array | ArrayBuffer | number[], tagLen: number) => { data: ArrayBuffer; tag: ArrayBuffer } | undefined;
  ccmDecrypt?: (msg: EspruinoData, key: EspruinoData, nonce: Uint8Array | ArrayBuffer | number[], tag: EspruinoData) => ArrayBuffer | undefined;
}

/**
 * Raw NOR flash (require("Flash") on a board, hal/sim's model under Node).
 * Writes can only turn bits from 1 to 0; erasing a page sets it to 0xFF.
 */
export interface FlashHal {
  /** Bytes per erase page. */
  pageSize: number;
  read(addr: number, length: number): Uint8Array;
  /** Writes whole 4-byte words at a word-aligned address. */
  write(data: Uint8Array, addr: number): void;
  erasePage(addr: number): void;
}

/**
 * The counter-log Storage file that the factory creates pre-sized and erased
 * (docs/protocol.md section 8). The firmware may only write still-erased bytes
 * (require("Storage").write(name, data, offset)); it never creates, replaces
 * or erases the file.
 */
export interface LogFileHal {
  size: number;
  read(offset: number, length: number): Uint8Array;
  write(data: Uint8Array, offset: number): void;
}

/** The storage a board gives the counter store (board profile's counterStore). */
export type CounterMedium = { kind: 'flash-pages'; flash: FlashHal; pages: number[] } | { kind: 'storage-log'; log: LogFileHal };

/** Frame counters that survive power loss (design brief, "Counters that survive power loss"). */
export interface CounterSource {
  /** Power-ups so far, including this one, as recorded in the counter log. */
  boot: number;
  /** The next unused counter; reserves a new block durably first when needed. Throws when the log or the counter space is exhausted. */
  next(): number;
  /**
   * Key renewal records (docs/protocol.md section 8, "Renewal records"). room(w): makes sure `w`
   * slots and one block record fit in the current area (a flash-pages store starts its next page
   * now if not, carrying the kept records) and returns the first counter of the block an
   * append(record, true) of w slots would reserve next: c_e.
   */
  room?(words: number): number;
  /** Writes a record (whole slots) after the last used slot; `fresh`: then reserves a new block at once. */
  append?(record: Uint8Array, fresh?: boolean): void;
  /** Flash pages: the records every new page must start with (the current epoch's keys, a pending renewal). */
  keep?(records: Uint8Array | undefined): void;
}

/** Reads the slots of the counter log at boot (slots 0 .. used - 1 of the current area), before the reader is dropped. */
export type SlotScan = (read: (slot: number) => Uint8Array, used: number) => Uint8Array | undefined;

/**
 * One sensor contract (style.md rule 4, after ECMA-419): `sample()` returns a
 * plain object of SI-unit values, or undefined when there is nothing new.
 * Keys are the codec's channel names: temperature, battery, battery_voltage,
 * light, magnetic_x/y/z, humidity, pressure, acceleration.
 */
export interface Sensor {
  sample(): { [channel: string]: number } | undefined;
  close(): void;
}

/** Time since power-up and timers. */
export interface ClockHal {
  /** Milliseconds since power-up. */
  uptimeMs(): number;
  /**
   * Calls fn(arg) after ms, as Espruino's setTimeout(fn, ms, arg) does: the
   * device passes one timer handler and says with `arg` which timer it is
   * (docs/firmware.md, "Fourth pass").
   */
  setTimeout(fn: (arg: number) => void, ms: number, arg: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * What a radio reports to RadioOptions.onEvent: one handler for every radio
 * event, since on the interpreter each handler the radio holds is a function
 * object kept for good (docs/firmware.md, "Fourth pass").
 */
export const RADIO_CONNECT = 1;
export const RADIO_DISCONNECT = 2;
/** The central wrote the frames characteristic's CCCD (Espruino's onWriteDesc) enabling notifications. */
export const RADIO_SUBSCRIBE = 3;
/** The same write disabling them. */
export const RADIO_UNSUBSCRIBE = 4;
/** A write to the ack characteristic; its bytes are the second argument. */
export const RADIO_ACK = 5;

export interface RadioOptions {
  /** Advertised name. */
  name: string;
  /** The info characteristic's value (UTF-8 JSON). */
  info: string;
  frameSize: number;
  /** Every radio event: one of RADIO_CONNECT .. RADIO_ACK, with the written bytes for RADIO_ACK. */
  onEvent(event: number, data?: Uint8Array): void;
}

/** The BLE peripheral (design brief, "BLE interface"), or its stand-ins. */
export interface RadioHal {
  start(opts: RadioOptions): void;
  connected(): boolean;
  /** Sends one frame as a notification; may be dropped silently when the radio queue is full. */
  notify(frame: Uint8Array): void;
}

export interface ConsoleHal {
  print(line: string): void;
  /** Closes every way into the interpreter: BLE UART off, random password, locked console. */
  lock(): void;
}

/** The device crypto backend a board profile names, bound to the device's key. */
export interface CryptoHal {
  /** AES-CCM engine for the given key, sized for messages up to maxMsgLen bytes. */
  ccm(key: Uint8Array, maxMsgLen: number): Ccm;
  /** AES-128-ECB of one block, for the key check value. */
  encryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array;
}

/**
 * The public-key work of a key renewal (design brief, "Key renewal"; docs/protocol.md), needed only
 * while a renewal runs. hal/plain/renewal-crypto.ts (@noble, Node and the simulator) and
 * hal/espruino/renewal-crypto.ts (the curve25519 and hkdf-sha256 kernels through E.nativeCall)
 * implement it byte for byte alike; test/vectors/renewal.json checks both.
 */
export interface RenewalCryptoHal {
  /**
   * Ed25519 verification (RFC 8032) by protocol/announce.ts's rule (strict decoding, S < L,
   * small-order keys refused, cofactored equation): true only for a valid signature.
   */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * RFC 9180 SetupPSKS, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / export-only, with `ikm` (32 bytes)
   * as DeriveKeyPair's input for the ephemeral key, followed by the design brief's three exports.
   * Returns 88 bytes: enc (32) || seal key (16) || nonce salt (8) || chain (32). Throws an Error
   * saying why when the inputs are refused (e.g. an all-zero shared secret).
   */
  setupPskS(recipientPublicKey: Uint8Array, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array, ikm: Uint8Array): Uint8Array;
  /** One 32-bit word of the hardware random source (E.hwRand on a board); throws when the source fails. */
  hwRand(): number;
}

/** What key renewal needs of a board: its crypto, and the renewal code itself (firmware/renewal.ts). */
export interface RenewalHal {
  crypto(): RenewalCryptoHal;
  /** The renewal module: firmware/renewal.ts's exports, its RenewalModule (a Storage module on a board, loaded on demand). */
  load(): object;
}

/** Everything the firmware is given at start-up (style.md rule 1). */
export interface Hal {
  clock: ClockHal;
  radio: RadioHal;
  console: ConsoleHal;
  crypto: CryptoHal;
  /** Reads a Storage file the factory wrote; undefined when it does not exist. */
  readFile(name: string): Uint8Array | undefined;
  crc32(data: Uint8Array): number;
  /**
   * Opens the counter store (firmware/counter-store.ts) on the board's medium:
   * the entry point picks createLogCounters or createPageCounters, so a bundle
   * carries only its own.
   */
  counters(block: number, scan?: SlotScan): CounterSource;
  /**
   * Key renewal (firmware/renewal.ts), absent on a board that cannot renew: its crypto backend
   * and the renewal code, loaded when needed.
   */
  renewal?: RenewalHal;
  /** Sensors of the board profile, by SensorId. */
  sensors: { [id: string]: Sensor };
}
