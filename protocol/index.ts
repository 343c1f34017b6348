export * from './constants.js';
export * from './errors.js';
export { equalBytes, fromHex, readU32BE, toHex, writeU32BE } from './bytes.js';
export * from './frame.js';
export * from './ack.js';
export * from './kcv.js';
export * from './hpke.js';
export * from './provision.js';
