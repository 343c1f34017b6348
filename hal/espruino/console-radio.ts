// The radio of the espruino-linux target: no BLE, so the "relay" is whoever
// reads the console. Frames go out as `FRAME <hex>` lines; an ack comes back
// by calling `sealpostAck("<24 hex>")` at the console, and
// `sealpostConnect()` / `sealpostDisconnect()` play the relay's connection.
import type { RadioHal, RadioOptions } from '../types.js';
import { exposeGlobal, printLine } from './globals.js';
import { fromHexUnchecked, toHex } from '../../protocol/wire/hex.js';

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
        opts.onAck(fromHexUnchecked(h));
      });
    },
    connected: function (): boolean {
      return isConnected;
    },
    notify: function (frame: Uint8Array): void {
      printLine('FRAME ' + toHex(frame));
    },
  };
}
