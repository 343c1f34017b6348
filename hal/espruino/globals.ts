// The interpreter's globals that hal/espruino may touch (style.md rule 1:
// nothing else in the firmware reaches for them). Declared here so the
// firmware typechecks against lib ES5 without DOM or Node types.
import type { EspruinoAes } from '../types.js';

export interface EspruinoCryptoModule {
  AES?: EspruinoAes;
}

declare global {
  function require(name: 'crypto'): EspruinoCryptoModule;
  function print(text: string): void;
}

export function cryptoAes(): EspruinoAes {
  const mod = require('crypto');
  return (mod && mod.AES) || {};
}
