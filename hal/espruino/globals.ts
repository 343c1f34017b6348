// The interpreter's globals that hal/espruino may touch (style.md rule 1:
// nothing else in the firmware reaches for them). Declared at module scope,
// not globally, so the firmware typechecks against lib ES5 and these names do
// not leak into the Node side's types.
import type { EspruinoAes } from '../types.js';

export interface EspruinoCryptoModule {
  AES?: EspruinoAes;
}

declare function require(name: 'crypto'): EspruinoCryptoModule;
declare function print(text: string): void;

export function cryptoAes(): EspruinoAes {
  const mod = require('crypto');
  return (mod && mod.AES) || {};
}

export function printLine(text: string): void {
  print(text);
}
