// The JavaScript prelude that stands in, on Espruino's Linux builds, for what a board has and the
// Linux build lacks (NRF, Puck, Bangle, battery), for the opt-in real-interpreter runs of the board
// bundles (test/firmware/board-bundles.test.ts on ESPRUINO_BIN, test/firmware/kernel-arm.test.ts on
// ESPRUINO_ARM_BIN). It keeps the console on stdout and runs the clock 50 times faster, so a
// sampling period takes a second; its timeline connects, enables notifications 200 ms later (the
// CCCD write, handed to the characteristic's onWriteDesc as an ArrayBuffer as 2v29's
// bluetooth_utils.c does), then writes a forged and a valid ack. With `kernelInPlace`, the kernel
// file reads back as a flat string with a non-zero address, as a Storage file in memory-mapped
// flash does on an nRF52, so the native-kernel backend runs it in place (on the Linux builds a
// Storage string's address is 0 and the backend copies the image instead). The timeline starts
// once the bundle's boot has run (a timer set by the prelude fires only after the script's own code):
// a boot slower than the first 100 ms of the timeline, as under load, would otherwise find CONNECT,
// SUBSCRIBE and SETTLE all due at once. With `kernelStandIn`, the x86-64 builds, which cannot
// execute Thumb code, run a native-kernel bundle on kernelStandIn() below.
import { READINGS } from '../../sim/espruino/board.js';
import { KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { IMAGE } from '../../kernel/aes-ccm/image.js';

export const SCALE = 50;

export interface PreludeOptions {
  kernelInPlace?: boolean;
  /** The x86-64 build's stand-in for the compiled kernel (kernelStandIn()), for a native-kernel bundle. */
  kernelStandIn?: boolean;
  /** Prints "MEM <usage>" (process.memory(), after a collection) at this prelude time, in ms. */
  memoryAt?: number;
  /**
   * A host drives the link instead of the fixed timeline (test/helpers/board-server.ts): after boot
   * the prelude connects, enables notifications and prints "LINKED"; then the host writes on the ack
   * characteristic with SP_WRITE(hex) and cuts and restores the link with SP_RELINK(), through the
   * console. `acks` and `forged` are unused.
   */
  hostDriven?: boolean;
}

export function prelude(acks: Record<number, string>, forged: string, options: PreludeOptions = {}): string {
  const inPlace = options.kernelInPlace
    ? `
var SP_S = require("Storage"), SP_RD = SP_S.read, SP_K = E.toFlatString(SP_RD.call(SP_S, ${JSON.stringify(KERNEL_FILE_NAME)}));
print("KERNEL at " + E.getAddressOf(SP_K, true));
SP_S.read = function (n) { return n === ${JSON.stringify(KERNEL_FILE_NAME)} ? SP_K : SP_RD.call(SP_S, n); };`
    : '';
  const standIn = options.kernelStandIn ? kernelStandIn() : '';
  const memory = options.memoryAt !== undefined ? `\nsetTimeout(function () { print("MEM " + process.memory().usage); }, ${options.memoryAt});` : '';
  return `
var SP_ST = setTimeout, SP_GT = getTime, SP_T0 = getTime(), SP_H = {}, SP_W, SP_D, SP_LAST = 0;
global.setTimeout = function (f, ms, a) { return a === undefined ? SP_ST(f, ms / ${SCALE}) : SP_ST(f, ms / ${SCALE}, a); };
global.getTime = function () { return SP_T0 + (SP_GT() - SP_T0) * ${SCALE}; };
E.getTemperature = function () { return ${READINGS.temperature}; };
E.getBattery = function () { return ${READINGS.battery}; };
E.setPassword = function (pw) { print("LOCK password " + pw.length); };
E.lockConsole = function () { print("LOCK console"); };
LoopbackA.setConsole = function (f) { print("LOCK loopback " + f); };
var Puck = { light: function () { return ${READINGS.light}; }, mag: function () { return { x: ${READINGS.mag.x}, y: ${READINGS.mag.y}, z: ${READINGS.mag.z} }; } };
var Bangle = { getAccel: function () { return { x: 0, y: 0, z: -1, mag: ${READINGS.accelMag} }; } };
function spHex(a) { var s = "", i; for (i = 0; i < a.length; i++) s += (a[i] < 16 ? "0" : "") + a[i].toString(16); return s; }
function spBytes(h) { var b = new Uint8Array(h.length / 2), i; for (i = 0; i < b.length; i++) b[i] = parseInt(h.substr(2 * i, 2), 16); return b; }
var NRF = {
  setServices: function (s, o) { var u, c, n = []; for (u in s) for (c in s[u]) { n.push(u + "/" + c); if (s[u][c].onWrite) SP_W = s[u][c].onWrite; if (s[u][c].onWriteDesc) SP_D = s[u][c].onWriteDesc; } print("GATT " + n.join(" ") + " uart " + o.uart + " adv " + o.advertise[0]); },
  setAdvertising: function () {},
  setScanResponse: function (d) { print("SCAN " + d.join(",")); },
  on: function (e, f) { SP_H[e] = f; },
  updateServices: function (u) { var s, c, v; for (s in u) for (c in u[s]) if (u[s][c].notify) { v = u[s][c].value; SP_LAST = Math.max(SP_LAST, (v[0] << 24 | v[1] << 16 | v[2] << 8 | v[3]) >>> 0); print("FRAME " + spHex(v)); } },
  getBattery: function () { return ${READINGS.batteryVoltage}; }
};
var SP_ACKS = ${JSON.stringify(acks)};${inPlace}${standIn}
SP_ST(function () {${memory}
setTimeout(function () { print("CONNECT"); SP_H.connect(); }, 4000);
setTimeout(function () { print("SUBSCRIBE"); SP_D({ data: new Uint8Array([1, 0]).buffer }); }, 4200);${options.hostDriven ? 'setTimeout(function () { print("LINKED"); }, 4300);' : TIMELINE(forged)}
}, 0);${options.hostDriven ? HOST_DRIVEN : ''}
`;
}

const TIMELINE = (forged: string) => `
setTimeout(function () { print("SETTLE"); }, 5000);
setTimeout(function () { print("FORGED"); SP_W({ data: spBytes(${JSON.stringify(forged)}).buffer }); }, 68000);
setTimeout(function () { var n = SP_LAST; print("ACK " + n); if (SP_ACKS[n]) SP_W({ data: spBytes(SP_ACKS[n]).buffer }); }, 90000);
setTimeout(function () { print("DONE"); }, 160000);`;

// SP_RELINK: a disconnect, and 200 ms (prelude time) later a new connection with notifications on,
// as a relay that comes back does.
const HOST_DRIVEN = `
function SP_WRITE(h) { SP_W({ data: spBytes(h).buffer }); }
function SP_RELINK() { print("DISCONNECT"); SP_H.disconnect(); setTimeout(function () { print("CONNECT"); SP_H.connect(); }, 200); setTimeout(function () { SP_D({ data: new Uint8Array([1, 0]).buffer }); print("LINKED"); }, 400); }`;

/**
 * For a native-kernel bundle on the x86-64 Linux builds (ESPRUINO_BIN), which cannot execute the
 * Thumb kernel: E.nativeCall hands back JavaScript functions that keep each entry point's contract
 * (docs/firmware.md, "Compiled kernel") with the build's own AES.ccmEncrypt and AES.encrypt, reading
 * and writing the bytes at the addresses the backend passes, as sim/espruino/kernel.ts does under
 * Node. E.getAddressOf is wrapped to remember the typed arrays whose addresses it gave, so an address
 * finds its bytes again. Only the copy path is modelled (a Storage string's address is 0 on these
 * builds): a call must name the kernel's flat copy, whose CRC must be the committed image's, and an
 * entry offset of image.ts. The first call of each entry prints "KERNEL standin <entry>", so a test
 * shows the backend ran through it. Everything else in the bundle runs as on the board: the file's
 * length and CRC check, the flat copy, the boot self-test and the addresses of every call; the Thumb
 * code itself runs on the 32-bit ARM build (test/firmware/kernel-arm.test.ts).
 */
export function kernelStandIn(): string {
  const e = IMAGE.entries;
  const CTX = IMAGE.constants.CTX_SIZE;
  return `
var SP_KA = require("crypto").AES, SP_KG = E.getAddressOf, SP_KM = [], SP_KS = {};
E.getAddressOf = function (v, f) { var a = SP_KG(v, f), i; if (a && v && v.buffer) { for (i = SP_KM.length - 1; i >= 0; i--) if (SP_KM[i][0] === a) SP_KM.splice(i, 1); SP_KM.push([a, v]); if (SP_KM.length > 8) SP_KM.shift(); } return a; };
function spAt(p, n) { var i, m; for (i = SP_KM.length - 1; i >= 0; i--) { m = SP_KM[i]; if (p >= m[0] && p + n <= m[0] + m[1].length) return new Uint8Array(m[1].buffer, m[1].byteOffset + p - m[0], n); } throw new Error("kernel stand-in: no flat block at " + p + " (+" + n + ")"); }
function spNonce(c, n, d) { var o = new Uint8Array(13); o.set(c.subarray(${CTX - 12}, ${CTX - 4})); o[8] = n >>> 24; o[9] = n >> 16 & 255; o[10] = n >> 8 & 255; o[11] = n & 255; o[12] = d; return o; }
var SP_KE = {};
SP_KE[${e.aes_ccm_init}] = ["init", function (ctx, key, salt, len) { var c = spAt(ctx, ${CTX}); if (len < 1 || len > ${IMAGE.constants.MAX_MSG}) return -1; c.set(spAt(key, 16), 0); c.set(spAt(salt, 8), ${CTX - 12}); c[${CTX - 4}] = len; return 0; }];
SP_KE[${e.aes_ccm_seal}] = ["seal", function (ctx, msg, dst, n) { var c = spAt(ctx, ${CTX}), len = c[${CTX - 4}], o = spNonce(c, n, 1), r = SP_KA.ccmEncrypt(new Uint8Array(spAt(msg, len)), c.subarray(0, 16), o, 8), d = spAt(dst, len + 12); d.set(o.subarray(8, 12), 0); d.set(new Uint8Array(r.data), 4); d.set(new Uint8Array(r.tag), 4 + len); return len + 12; }];
SP_KE[${e.aes_ccm_ack}] = ["ack", function (ctx, dst, n) { var c = spAt(ctx, ${CTX}), o = spNonce(c, n, 2), r = SP_KA.ccmEncrypt(new Uint8Array(0), c.subarray(0, 16), o, 8), d = spAt(dst, 12); d.set(o.subarray(8, 12), 0); d.set(new Uint8Array(r.tag), 4); return 12; }];
SP_KE[${e.aes_block}] = ["block", function (ctx, inp, out) { var c = spAt(ctx, ${CTX}); spAt(out, 16).set(new Uint8Array(SP_KA.encrypt(new Uint8Array(spAt(inp, 16)), c.subarray(0, 16), { mode: "ECB" }))); return 0; }];
E.nativeCall = function (addr, sig, data) {
  var k = SP_KE[addr - 1];
  if (sig !== "int(int,int,int,int)" || !data || E.CRC32(data) >>> 0 !== ${IMAGE.crc32} || !k) throw new Error("kernel stand-in: no such entry (" + addr + ", " + sig + ")");
  return function (a, b, c, d) { if (!SP_KS[k[0]]) { SP_KS[k[0]] = 1; print("KERNEL standin " + k[0]); } return k[1](a, b, c, d); };
};`;
}
