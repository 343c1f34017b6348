/** The firmware's version, sent in the info characteristic; kept equal to package.json's version by test/firmware/device.test.ts. */
export const FIRMWARE_VERSION = '0.1.0';
