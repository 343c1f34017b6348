// The GATT service of docs/protocol.md section 7 on Espruino's NRF object.
// The 128-bit service UUID fills most of the 31-byte advertisement, so the
// name goes into the scan response. The NRF object is passed in (the board
// entry reads the global), so test/hal/espruino/radio.test.ts drives it with a
// fake. Not verified on a board in this repository's CI (no radio here);
// hal/sim/radio.ts models the behaviour.
import { gattUuid } from '../../protocol/wire/ble.js';
import type { RadioHal, RadioOptions } from '../types.js';
import type { NrfGlobal } from './globals.js';

export function bleRadio(NRF: NrfGlobal): RadioHal {
  let isConnected = false;
  // Made at start-up, kept for notify (protocol/wire/ble.ts: why not constants).
  let SERVICE_UUID = '';
  let FRAMES_UUID = '';
  return {
    start: function (opts: RadioOptions): void {
      SERVICE_UUID = gattUuid(1);
      FRAMES_UUID = gattUuid(2);
      const chars: { [uuid: string]: object } = {};
      chars[FRAMES_UUID] = {
        value: new Uint8Array(opts.frameSize),
        maxLen: opts.frameSize,
        readable: false,
        notify: true,
        // A CCCD write (2v15+); evt.data is an ArrayBuffer, bit 0 = notifications on.
        onWriteDesc: function (evt: { data: ArrayBuffer }): void {
          opts.onSubscribe((new Uint8Array(evt.data)[0]! & 1) === 1);
        },
      };
      chars[gattUuid(3)] = {
        value: new Uint8Array(12),
        maxLen: 12,
        writable: true,
        onWrite: function (evt: { data: ArrayBuffer }): void {
          opts.onAck(new Uint8Array(evt.data));
        },
      };
      chars[gattUuid(4)] = { value: opts.info, maxLen: opts.info.length, readable: true };
      const services: { [uuid: string]: object } = {};
      services[SERVICE_UUID] = chars;
      NRF.setServices(services, { uart: false, advertise: [SERVICE_UUID] });
      NRF.setAdvertising({}, { showName: false, connectable: true, discoverable: true });
      const scan: number[] = [opts.name.length + 1, 0x09];
      for (let i = 0; i < opts.name.length; i++) scan.push(opts.name.charCodeAt(i));
      NRF.setScanResponse(scan);
      NRF.on('connect', function () {
        isConnected = true;
        opts.onConnect();
      });
      NRF.on('disconnect', function () {
        isConnected = false;
        opts.onDisconnect();
      });
    },
    connected: function (): boolean {
      return isConnected;
    },
    notify: function (frame: Uint8Array): void {
      const chars: { [uuid: string]: object } = {};
      chars[FRAMES_UUID] = { value: frame, notify: true };
      const services: { [uuid: string]: object } = {};
      services[SERVICE_UUID] = chars;
      NRF.updateServices(services);
    },
  };
}
