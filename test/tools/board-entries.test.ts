// The Espruino board entries are generated from the board profiles
// (tools/board-entries.ts): the committed firmware/targets/<board>.ts must be
// exactly what the generator writes, and the generator follows the profile's
// crypto backend, counter store, radio and sensors, and refuses what the
// Espruino HAL cannot serve.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { boardProfile } from '../../boards/index.js';
import { entryPath, entrySource, espruinoBoards, staleEntries } from '../../tools/board-entries.js';
import { imageNumbers } from '../../hal/espruino/kernel.js';
import { IMAGE } from '../../kernel/aes-ccm/image.js';

describe('generated board entries', () => {
  it('exist for every board with a bundle, and the committed ones equal the generated ones (else: npx tsx tools/board-entries.ts)', async () => {
    expect(espruinoBoards().map((b) => b.id).sort()).toEqual(['banglejs2', 'espruino-linux', 'mdbt42q', 'nrf52840dk', 'pixljs', 'puckjs']);
    expect(await staleEntries()).toEqual([]);
  });

  it("pick the profile's crypto backend, counter store, radio and sensors", () => {
    const puck = entrySource(boardProfile('puckjs'));
    expect(puck).toContain(`crypto: kernelCrypto(E, Storage, [${imageNumbers(IMAGE).join(', ')}]),`);
    expect(puck).not.toContain('cryptoAes');
    expect(puck).toContain('return createLogCounters(storageLog(Storage), block);');
    expect(puck).toContain('radio: bleRadio(NRF),');
    expect(puck).toContain('sensors: { temperature: temperatureSensor(E), battery: batterySensor(E), light: puckLightSensor(Puck), magnetometer: puckMagnetometer(Puck) },');
    const dk = entrySource(boardProfile('nrf52840dk'));
    expect(dk).toContain(`crypto: kernelCrypto(E, Storage, [${imageNumbers(IMAGE).join(', ')}]),`);
    expect(dk).not.toContain('IMAGE');
    expect(dk).not.toContain('cryptoAes');
    expect(dk).not.toContain('plainCrypto');
    expect(dk).toContain('const m = flashPages(Flash);');
    const linux = entrySource(boardProfile('espruino-linux'));
    expect(linux).toContain('crypto: nativeCcmCrypto(cryptoAes()),');
    expect(linux).toContain('radio: consoleRadio(printLine(), exposeGlobal),');
    expect(linux).toContain('console: openConsole(printLine()),');
    expect(linux).toContain("exposeGlobal('sealpostStatus'");
    expect(readFileSync(new URL(`../../${entryPath(boardProfile('banglejs2'))}`, import.meta.url), 'utf8')).toContain('acceleration: bangleAcceleration(Bangle)');
  });

  it('changes with the profile, and refuses sensors and targets the Espruino HAL has no code for', () => {
    const puck = boardProfile('puckjs');
    expect(entrySource({ ...puck, crypto: 'plain-js' })).toContain('crypto: plainCrypto(),');
    expect(entrySource({ ...puck, crypto: 'native-aes' })).toContain('crypto: nativeAesCrypto(cryptoAes()),');
    expect(entrySource({ ...puck, crypto: 'native-aes' })).toContain("import { nativeAesCrypto } from '../../hal/espruino/crypto-hal.js';");
    expect(entrySource({ ...puck, counterStore: { kind: 'flash-pages' } })).toContain('createPageCounters(m.flash, m.pages, block, true)');
    expect(() => entrySource({ ...puck, device: { ...puck.device, sensors: ['temperature', 'humidity'] } })).toThrow(
      'board puckjs: no Espruino driver for sensor "humidity" (hal/espruino/sensors.ts; add it to SENSORS in tools/board-entries.ts)',
    );
    expect(() => entrySource(boardProfile('sim'))).toThrow(/sim target's entry is firmware\/targets\/sim.ts/);
  });
});
