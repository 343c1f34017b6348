// Seal benchmark under Node: 20-byte frames per second for each device
// crypto backend (native ones through the Espruino AES stand-in, so this
// measures the firmware's JS, not a board). Run: npx tsx bench/seal.ts
import { createEspruinoAes } from '../sim/espruino/aes.js';
import { nativeAesCcm, nativeCcm } from '../hal/espruino/crypto.js';
import { plainCcm } from '../hal/plain/crypto.js';
import { createSealer } from '../firmware/sealer.js';
import type { Ccm } from '../hal/types.js';

const KEY = new Uint8Array(16).fill(7);
const SALT = new Uint8Array(8).fill(3);
const F = 20;
const engines: Record<string, () => Ccm> = {
  'native-ccm': () => nativeCcm(createEspruinoAes(), KEY),
  'native-aes': () => nativeAesCcm(createEspruinoAes({ features: { ccm: false } }), KEY, F - 12),
  'plain-js': () => plainCcm(KEY, F - 12),
};

console.log('backend      frames/s   µs/frame   (Node ' + process.version + ', 20-byte frames, median of 5 runs of 1 s)');
for (const [name, make] of Object.entries(engines)) {
  const ring = new Uint8Array(F);
  const sealer = createSealer({ ccm: make(), nonceSalt: SALT, frameSize: F, ring });
  const pt = new Uint8Array(F - 12);
  const rates: number[] = [];
  let counter = 1;
  for (let run = 0; run < 5; run++) {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < 1000) {
      for (let i = 0; i < 100; i++) sealer.sealInto(counter++, pt, 0);
      n += 100;
    }
    rates.push((n * 1000) / (performance.now() - t0));
  }
  rates.sort((a, b) => a - b);
  const median = rates[2]!;
  console.log(`${name.padEnd(12)} ${Math.round(median).toString().padStart(8)}   ${(1e6 / median).toFixed(2).padStart(8)}`);
}
