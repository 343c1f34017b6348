// Interfaces the firmware sees. Implementations live in hal/espruino (the
// interpreter's builtins), hal/plain (portable JS) and hal/sim (Node).

/**
 * AES-128-CCM with a 13-byte nonce, an 8-byte tag and no associated data
 * (design brief, "Frames"), the key fixed when the engine is made.
 */
export interface Ccm {
  /**
   * Encrypts `msg` into `out[at .. at + msg.length)` and writes the 8-byte tag
   * right after it. `msg` may be empty (acknowledgement tags).
   */
  seal(nonce: Uint8Array, msg: Uint8Array, out: Uint8Array, at: number): void;
}

/** The two AES modes CCM is composed from (RFC 3610 section 2). */
export interface BlockModes {
  /** AES-CBC with a zero IV over whole blocks; returns the last ciphertext block (the CBC-MAC). */
  cbcMac(data: Uint8Array): Uint8Array;
  /** AES-ECB over whole blocks into `out`. */
  ecb(data: Uint8Array, out: Uint8Array): void;
}

/** The three device crypto backends of the design brief; a board profile names one. */
export type CryptoBackend = 'native-ccm' | 'native-aes' | 'plain-js';

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

/** Frame counters that survive power loss (design brief, "Counters that survive power loss"). */
export interface CounterSource {
  /** Power-ups so far, including this one, as recorded in the counter log. */
  boot: number;
  /** The next unused counter; reserves a new block durably first when needed. Throws when the log or the counter space is exhausted. */
  next(): number;
}
