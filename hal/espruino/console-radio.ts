// The radio of the espruino-linux target: no BLE, so the "relay" is whoever
// reads the console. Frames go out as `FRAME <hex>` lines; an ack comes back
// by calling `sealpostAck("<24 hex>")` at the console, and
// `sealpostConnect()` / `sealpostDisconnect()` play the relay's connection
// and `sealpostSubscribe(on)` its write of the frames CCCD.
// The entry passes in how to print and how to make a console function.
import type { RadioHal, RadioOptions } from '../types.js';
import { fromHexUnchecked, toHex } from '../../protocol/wire/hex.js';

export function consoleRadio(print: (line: string) => void, expose: (name: string, fn: unknown) => void): RadioHal {
  let isConnected = false;
  return {
    start: function (opts: RadioOptions): void {
      print('INFO ' + opts.info);
      expose('sealpostConnect', function () {
        if (isConnected) return;
        isConnected = true;
        opts.onConnect();
      });
      expose('sealpostDisconnect', function () {
        if (!isConnected) return;
        isConnected = false;
        opts.onDisconnect();
      });
      expose('sealpostSubscribe', function (on: unknown) {
        if (isConnected) opts.onSubscribe(!!on);
      });
      expose('sealpostAck', function (h: string) {
        opts.onAck(fromHexUnchecked(h));
      });
    },
    connected: function (): boolean {
      return isConnected;
    },
    notify: function (frame: Uint8Array): void {
      print('FRAME ' + toHex(frame));
    },
  };
}
