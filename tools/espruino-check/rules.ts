// What Espruino 2v29 lacks, as data: the globals, statics and methods a bundle
// must not use, each with its fix, and the operators the checks look for.
// ../shared/espruino.md is the source; syntax.ts, shifts.ts and checker.ts
// read these tables.

export const ON_ESPRUINO = 'on Espruino 2v29';

export const MISSING_GLOBALS: ReadonlyMap<string, string> = new Map([
  ['BigInt', 'use Number (exact up to 2^53) or pairs of 32-bit words'],
  ['Symbol', 'use plain string property names'],
  ['Map', 'use a plain object with string keys, or parallel arrays'],
  ['Set', 'use a plain object with keys set to true, or an array with indexOf'],
  ['WeakMap', 'store the value on the object itself or in a plain object keyed by an id'],
  ['WeakSet', 'mark the object with a property or keep an array with indexOf'],
  ['Proxy', 'call explicit accessor functions instead'],
  ['Reflect', 'call Object.* functions or Function.prototype.apply directly'],
  ['RangeError', 'throw new Error(...) and set a name/code field if callers must tell errors apart'],
  ['TextEncoder', 'encode with a loop over charCodeAt'],
  ['TextDecoder', 'decode with String.fromCharCode over the bytes'],
]);

const TYPED_ARRAYS = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
];

export const MISSING_STATICS: ReadonlyMap<string, string> = new Map([
  ['Array.from', 'copy with a for loop'],
  ['Array.of', 'use an array literal [a, b, ...]'],
  ['Number.isInteger', "use typeof x === 'number' && isFinite(x) && Math.floor(x) === x"],
  ['Math.imul', 'multiply 16-bit halves yourself so no intermediate loses precision, then | 0'],
  ['Math.trunc', 'use x < 0 ? Math.ceil(x) : Math.floor(x)'],
  ['Object.freeze', 'drop the call; freezing is only a development aid'],
  ...TYPED_ARRAYS.flatMap((t): [string, string][] => [
    [`${t}.from`, `use new ${t}(lengthOrArray) and fill it with a loop or .set()`],
    [`${t}.of`, `use new ${t}([a, b, ...])`],
  ]),
]);

/** Flagged on any receiver: the receiver's type is unknown in a bundle. */
export const MISSING_METHODS: ReadonlyMap<string, [string, string]> = new Map([
  ['startsWith', ['String.prototype.startsWith', 'use s.indexOf(prefix) === 0']],
  ['finally', ['Promise.prototype.finally', 'pass the clean-up to both arguments of .then(onDone, onFail)']],
]);

export const BUILTIN_ERRORS = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError']);

export const SHIFT_OPERATORS = new Set(['<<', '>>', '>>>', '<<=', '>>=', '>>>=']);
export const LOGICAL_ASSIGNMENT = new Set(['??=', '||=', '&&=']);

export const SHIFT_FIX =
  'mask the shift count (n & 31) or use a literal 0..31: the board does not mask shift counts (1<<32 is 0 on ARM, 1 on x86)';
