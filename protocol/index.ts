// The protocol as host code imports it: the wire subset (protocol/wire/) and
// the host modules (frames, acks, HPKE provisioning, device file, keys,
// manifests, ANNOUNCE, serial and base64 rules) behind one import. The relay page and
// the firmware import single modules instead: this one pulls in node:crypto
// (ccm, hpke, keys) and Buffer (bytes).
export * from './wire/constants.js';
export * from './errors.js';
export { equalBytes, fromHex } from './bytes.js';
export { readU32BE, writeU32BE } from './wire/be.js';
export { toHex } from './wire/hex.js';
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
export * from './wire/names.js';
export * from './device-file.js';
export * from './keys.js';
export * from './manifest.js';
export * from './announce.js';
export * from './renewal.js';
