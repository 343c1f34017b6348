// The JavaScript prelude that stands in, on Espruino's Linux builds, for what a board has and the
// Linux build lacks (NRF, Puck, Bangle, battery), for the opt-in real-interpreter runs of the board
// bundles (test/firmware/board-bundles.test.ts on ESPRUINO_BIN, test/firmware/kernel-arm.test.ts on
// ESPRUINO_ARM_BIN). It keeps the console on stdout and runs the clock 50 times faster, so a
// sampling period takes a second; its timeline connects, enables notifications 200 ms later (the
// CCCD write, handed to the characteristic's onWriteDesc as an ArrayBuffer as 2v29's
// bluetooth_utils.c does), then writes a forged and a valid ack. With `kernelInPlace`, the kernel
// file reads back as a flat string with a non-zero address, as a Storage file in memory-mapped
// flash does on an nRF52, so the native-kernel backend runs it in place (on the Linux builds a
// Storage string's address is 0 and the backend copies the image instead).
import { READINGS } from '../../sim/espruino/board.js';
import { KERNEL_FILE_NAME } from '../../protocol/wire/names.js';

export const SCALE = 50;

export interface PreludeOptions {
  kernelInPlace?: boolean;
  /** Prints "MEM <usage>" (process.memory(), after a collection) at this prelude time, in ms. */
  memoryAt?: number;
}

export function prelude(acks: Record<number, string>, forged: string, options: PreludeOptions = {}): string {
  const inPlace = options.kernelInPlace
    ? `
var SP_S = require("Storage"), SP_RD = SP_S.read, SP_K = E.toFlatString(SP_RD.call(SP_S, ${JSON.stringify(KERNEL_FILE_NAME)}));
print("KERNEL at " + E.getAddressOf(SP_K, true));
SP_S.read = function (n) { return n === ${JSON.stringify(KERNEL_FILE_NAME)} ? SP_K : SP_RD.call(SP_S, n); };`
    : '';
  const memory = options.memoryAt !== undefined ? `\nsetTimeout(function () { print("MEM " + process.memory().usage); }, ${options.memoryAt});` : '';
  return `
var SP_ST = setTimeout, SP_GT = getTime, SP_T0 = getTime(), SP_H = {}, SP_W, SP_D, SP_LAST = 0;
global.setTimeout = function (f, ms) { return SP_ST(f, ms / ${SCALE}); };
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
var SP_ACKS = ${JSON.stringify(acks)};${inPlace}${memory}
setTimeout(function () { print("CONNECT"); SP_H.connect(); }, 4000);
setTimeout(function () { print("SUBSCRIBE"); SP_D({ data: new Uint8Array([1, 0]).buffer }); }, 4200);
setTimeout(function () { print("SETTLE"); }, 5000);
setTimeout(function () { print("FORGED"); SP_W({ data: spBytes(${JSON.stringify(forged)}).buffer }); }, 68000);
setTimeout(function () { var n = SP_LAST; print("ACK " + n); if (SP_ACKS[n]) SP_W({ data: spBytes(SP_ACKS[n]).buffer }); }, 90000);
setTimeout(function () { print("DONE"); }, 160000);
`;
}
