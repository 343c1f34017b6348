/** Kept equal to package.json's version by test/firmware.test.ts. */
export const FIRMWARE_VERSION = '0.1.0';
