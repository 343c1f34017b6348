// The GATT service of docs/protocol.md section 7 on Espruino's NRF object.
// The 128-bit service UUID fills most of the 31-byte advertisement, so the
// name goes into the scan response. The NRF object is passed in (the board
// entry reads the global), so test/hal/espruino/radio.test.ts drives it with a
// fake. Not verified on a board in this repository's CI (no radio here);
// hal/sim/radio.ts models the behaviour.
import { gattUuid } from '../../protocol/wire/ble.js';
import { RADIO_ACK, RADIO_CONNECT, RADIO_DISCONNECT, RADIO_SUBSCRIBE, RADIO_UNSUBSCRIBE, type RadioHal, type RadioOptions } from '../types.js';
import type { NrfGlobal } from './globals.js';

export function bleRadio(NRF: NrfGlobal): RadioHal {
  let isConnected = false;
  // The handlers NRF keeps live here, not inside start(): a function made in
  // start() would keep start's whole scope (the options, the service and
  // scan response tables) alive as long as NRF holds it (docs/firmware.md,
  // "Memory on the interpreter"). They report to the device's one event
  // handler, which start() copies; the UUIDs notify needs are made per
  // notification, not kept (two 36-character strings, docs/firmware.md
  // "Fourth pass").
  let on: (event: number, data?: Uint8Array) => void;
  // A CCCD write (2v15+); evt.data is an ArrayBuffer, bit 0 = notifications on.
  function onWriteDesc(evt: { data: ArrayBuffer }): void {
    on(new Uint8Array(evt.data)[0]! & 1 ? RADIO_SUBSCRIBE : RADIO_UNSUBSCRIBE);
  }
  function onWrite(evt: { data: ArrayBuffer }): void {
    on(RADIO_ACK, new Uint8Array(evt.data));
  }
  function connected(): void {
    isConnected = true;
    on(RADIO_CONNECT);
  }
  function disconnected(): void {
    isConnected = false;
    on(RADIO_DISCONNECT);
  }
  const radio: RadioHal = {
    start: function (opts: RadioOptions): void {
      // Called once, at boot: the object drops it, so the interpreter frees the
      // function and its name instead of keeping them for good (about 7
      // variables, docs/firmware.md "Fifth pass").
      delete (radio as Partial<RadioHal>).start;
      on = opts.onEvent;
      const service = gattUuid(1);
      // Built lean, since NRF keeps this table for good: no initial value
      // where none is read (2v29 bluetooth.c takes the length from maxLen,
      // the attribute is variable-length), no `readable: false` (the
      // default), no maxLen where the value's length sets it (about 15
      // variables, docs/firmware.md "Third pass").
      const chars: { [uuid: string]: object } = {};
      chars[gattUuid(2)] = { maxLen: opts.frameSize, notify: true, onWriteDesc: onWriteDesc };
      chars[gattUuid(3)] = { maxLen: 12, writable: true, onWrite: onWrite };
      chars[gattUuid(4)] = { value: opts.info, readable: true };
      const services: { [uuid: string]: object } = {};
      services[service] = chars;
      NRF.setServices(services, { uart: false, advertise: [service] });
      // NRF keeps these options for good too (2v29 jswrap_ble_setAdvertising
      // stores them): no `connectable: true`, which only restates the default
      // (the flag changes only when the option is given), about 3 variables.
      // `discoverable: true` stays: without it the advertisement says limited
      // discoverable mode (docs/firmware.md, "Fifth pass").
      NRF.setAdvertising({}, { showName: false, discoverable: true });
      // NRF keeps the scan response for good (2v29 jswrap_ble_setScanResponse
      // stores the argument): bytes in a Uint8Array, not an array of numbers
      // of one variable each.
      const name = opts.name;
      const scan = new Uint8Array(name.length + 2);
      scan[0] = name.length + 1;
      scan[1] = 0x09;
      for (let i = 0; i < name.length; i++) scan[i + 2] = name.charCodeAt(i);
      NRF.setScanResponse(scan);
      NRF.on('connect', connected);
      NRF.on('disconnect', disconnected);
    },
    connected: function (): boolean {
      return isConnected;
    },
    notify: function (frame: Uint8Array): void {
      const chars: { [uuid: string]: object } = {};
      chars[gattUuid(2)] = { value: frame, notify: true };
      const services: { [uuid: string]: object } = {};
      services[gattUuid(1)] = chars;
      NRF.updateServices(services);
    },
  };
  return radio;
}
