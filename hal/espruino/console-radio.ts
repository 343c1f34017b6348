// The radio of the espruino-linux target: no BLE, so the "relay" is whoever
// reads the console. Frames go out as `FRAME <hex>` lines; an ack comes back
// by calling `sealpostAck("<24 hex>")` at the console, and
// `sealpostConnect()` / `sealpostDisconnect()` play the relay's connection.
import type { RadioHal, RadioOptions } from '../types.js';
import { exposeGlobal, printLine } from './globals.js';

function hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

export function consoleRadio(): RadioHal {
  let isConnected = false;
  return {
    start: function (opts: RadioOptions): void {
      printLine('INFO ' + opts.info);
      exposeGlobal('sealpostConnect', function () {
        if (isConnected) return;
        isConnected = true;
        opts.onConnect();
      });
      exposeGlobal('sealpostDisconnect', function () {
        if (!isConnected) return;
        isConnected = false;
        opts.onDisconnect();
      });
      exposeGlobal('sealpostAck', function (h: string) {
        const b = new Uint8Array(h.length >> 1);
        for (let i = 0; i < b.length; i++) b[i] = parseInt(h.substr(i * 2, 2), 16);
        opts.onAck(b);
      });
    },
    connected: function (): boolean {
      return isConnected;
    },
    notify: function (frame: Uint8Array): void {
      printLine('FRAME ' + hex(frame));
    },
  };
}
