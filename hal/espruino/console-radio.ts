// The radio of the espruino-linux target: no BLE, so the "relay" is whoever
// reads the console. Frames go out as `FRAME <hex>` lines; an ack comes back
// by calling `sealpostAck("<24 hex>")` at the console, and
// `sealpostConnect()` / `sealpostDisconnect()` play the relay's connection
// and `sealpostSubscribe(on)` its write of the frames CCCD.
// The entry passes in how to print and how to make a console function.
import { RADIO_ACK, RADIO_CONNECT, RADIO_DISCONNECT, RADIO_SUBSCRIBE, RADIO_UNSUBSCRIBE, type RadioHal, type RadioOptions } from '../types.js';
import { fromHexUnchecked, toHex } from '../../protocol/wire/hex.js';

export function consoleRadio(print: (line: string) => void, expose: (name: string, fn: unknown) => void): RadioHal {
  let isConnected = false;
  return {
    start: function (opts: RadioOptions): void {
      print('INFO ' + opts.info);
      expose('sealpostConnect', function () {
        if (isConnected) return;
        isConnected = true;
        opts.onEvent(RADIO_CONNECT);
      });
      expose('sealpostDisconnect', function () {
        if (!isConnected) return;
        isConnected = false;
        opts.onEvent(RADIO_DISCONNECT);
      });
      expose('sealpostSubscribe', function (on: unknown) {
        if (isConnected) opts.onEvent(on ? RADIO_SUBSCRIBE : RADIO_UNSUBSCRIBE);
      });
      expose('sealpostAck', function (h: string) {
        opts.onEvent(RADIO_ACK, fromHexUnchecked(h));
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
