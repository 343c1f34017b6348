// The wire contract for host code (server, factory, tools, tests) in one
// import. The relay page and the firmware import single modules instead:
// this one pulls in node:crypto (ccm, hpke, keys) and Buffer (bytes).
export * from './wire/constants.js';
export * from './errors.js';
export { equalBytes, fromHex, readU32BE, toHex, writeU32BE } from './bytes.js';
export * from './frame.js';
export * from './ack.js';
export * from './kcv.js';
export * from './hpke.js';
export * from './provision.js';
export * from './serial.js';
export * from './base64.js';
export * from './wire/codec.js';
export * from './wire/ble.js';
export * from './wire/crc32.js';
export * from './device-file.js';
export * from './keys.js';
export * from './manifest.js';
