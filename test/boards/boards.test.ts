// Board profiles: every profile is complete and consistent with the limits docs/firmware.md gives.
import { describe, expect, it } from 'vitest';
import { BOARDS, boardProfile } from '../../boards/index.js';
import { MIN_DEVICE_FRAME_SIZE, MAX_FRAME_SIZE } from '../../protocol/index.js';

describe('board profiles', () => {
  it('exist for every board the product supports', () => {
    expect(BOARDS.map((b) => b.id).sort()).toEqual(['banglejs2', 'espruino-linux', 'mdbt42q', 'nrf52840dk', 'pixljs', 'puckjs', 'sim']);
  });

  it('are consistent with the platform facts', () => {
    for (const b of BOARDS) {
      expect(b.frameSize).toBeGreaterThanOrEqual(MIN_DEVICE_FRAME_SIZE);
      expect(b.frameSize).toBeLessThanOrEqual(b.chip === 'nRF52832' ? 50 : MAX_FRAME_SIZE);
      if (b.counterStore.kind === 'storage-log') expect(b.counterStore.bytes).toBeLessThan(b.storageBytes / 2);
      expect(b.device.sensors.length).toBeGreaterThan(0);
    }
    // Crypto builtins per board (espruino.md): only Bangle.js 2 and the Linux build have native CCM,
    // only Puck.js has AES ECB/CBC among the nRF52832 boards; the nRF52 boards without native CCM run
    // the compiled kernel (E.nativeCall exists on every nRF52 build), Puck.js too since it measured
    // faster than its AES builtin (docs/decisions.md); none is left on plain JS or native-aes.
    expect(boardProfile('banglejs2').crypto).toBe('native-ccm');
    for (const id of ['puckjs', 'mdbt42q', 'pixljs', 'nrf52840dk']) expect(boardProfile(id).crypto).toBe('native-kernel');
    expect(BOARDS.filter((b) => b.crypto === 'native-aes')).toEqual([]);
    expect(BOARDS.filter((b) => b.crypto === 'plain-js')).toEqual([]);
  });

  it('give every board with a firmware bundle a size budget, 12 KB on the nRF52832 boards', () => {
    for (const b of BOARDS) {
      if (b.id === 'sim') expect(b.bundleBytes).toBeUndefined();
      else expect(b.bundleBytes, b.id).toBeLessThanOrEqual(b.chip === 'nRF52832' ? 12288 : 16384);
    }
  });

  it('an unknown board id lists the known ones', () => {
    expect(() => boardProfile('arduino')).toThrow('unknown board "arduino": expected one of puckjs, mdbt42q, pixljs, banglejs2, nrf52840dk, espruino-linux, sim');
  });
});
