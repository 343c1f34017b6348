// bleRadio (hal/espruino/radio.ts) on a hand-made NRF: the GATT service of
// docs/protocol.md section 7, advertising with the name in the scan response,
// connection events, ack writes and notifications, all without a board.
import { describe, expect, it } from 'vitest';
import { bleRadio } from '../../../hal/espruino/radio.js';
import type { NrfGlobal } from '../../../hal/espruino/globals.js';
import { RADIO_ACK, type RadioOptions } from '../../../hal/types.js';
import { ACK_UUID, FRAMES_UUID, INFO_UUID, SERVICE_UUID } from '../../../protocol/wire/ble.js';

type Chars = Record<string, Record<string, unknown>>;

function fakeNrf() {
  const calls = {
    services: [] as { services: Record<string, Chars>; options: Record<string, unknown> }[],
    advertising: [] as { data: unknown; options: Record<string, unknown> }[],
    scanResponse: [] as Uint8Array[],
    updates: [] as Record<string, Chars>[],
  };
  const handlers: Record<string, () => void> = {};
  const NRF: NrfGlobal = {
    setServices: (services, options) => calls.services.push({ services: services as Record<string, Chars>, options: options as Record<string, unknown> }),
    updateServices: (services) => calls.updates.push(services as Record<string, Chars>),
    setAdvertising: (data, options) => calls.advertising.push({ data, options: options as Record<string, unknown> }),
    setScanResponse: (data) => calls.scanResponse.push(data),
    on: (event, fn) => (handlers[event] = fn),
    getBattery: () => 3,
  };
  return { NRF, calls, handlers };
}

function options(events: string[], acks: Uint8Array[]): RadioOptions {
  return {
    name: 'sealpost 000042',
    info: '{"serial":"SP-000042"}',
    frameSize: 20,
    onEvent: (e, data) => (e === RADIO_ACK ? acks.push(data!) : events.push(['', 'connect', 'disconnect', 'subscribe', 'unsubscribe'][e]!)),
  };
}

describe('bleRadio on a fake NRF', () => {
  it('sets up the sealpost service with the UART off and the name in the scan response', () => {
    const { NRF, calls } = fakeNrf();
    bleRadio(NRF).start(options([], []));
    expect(calls.services).toHaveLength(1);
    const { services, options: opts } = calls.services[0]!;
    expect(opts).toEqual({ uart: false, advertise: [SERVICE_UUID] });
    expect(Object.keys(services)).toEqual([SERVICE_UUID]);
    const chars = services[SERVICE_UUID]!;
    expect(Object.keys(chars).sort()).toEqual([FRAMES_UUID, ACK_UUID, INFO_UUID].sort());
    // Frames are notified, never read; the ack characteristic takes a 12-byte write; the info is
    // read whole (NRF sizes it from the value when maxLen is absent).
    expect(chars[FRAMES_UUID]).toMatchObject({ maxLen: 20, notify: true });
    expect((chars[FRAMES_UUID] as { readable?: boolean }).readable).toBeFalsy();
    expect(chars[ACK_UUID]).toMatchObject({ maxLen: 12, writable: true });
    expect(chars[INFO_UUID]).toEqual({ value: '{"serial":"SP-000042"}', readable: true });
    expect(calls.advertising).toEqual([{ data: {}, options: { showName: false, discoverable: true } }]);
    const name = 'sealpost 000042';
    // Bytes, not an array of numbers: NRF keeps the scan response for good (one variable per array element on the interpreter).
    expect(calls.scanResponse).toHaveLength(1);
    expect(calls.scanResponse[0]).toBeInstanceOf(Uint8Array);
    expect(Array.from(calls.scanResponse[0]!)).toEqual([name.length + 1, 0x09, ...Array.from(name, (c) => c.charCodeAt(0))]);
  });

  it('follows connect and disconnect events and hands ack writes over as bytes', () => {
    const { NRF, calls, handlers } = fakeNrf();
    const events: string[] = [];
    const acks: Uint8Array[] = [];
    const radio = bleRadio(NRF);
    radio.start(options(events, acks));
    // Called once: the radio drops start() once it has run; connected() and notify() stay.
    expect(radio.start).toBeUndefined();
    expect(radio.connected()).toBe(false);
    handlers.connect!();
    expect(radio.connected()).toBe(true);
    const onWrite = calls.services[0]!.services[SERVICE_UUID]![ACK_UUID]!.onWrite as (evt: { data: ArrayBuffer }) => void;
    onWrite({ data: new Uint8Array([1, 2, 3]).buffer });
    expect(acks).toEqual([new Uint8Array([1, 2, 3])]);
    handlers.disconnect!();
    expect(radio.connected()).toBe(false);
    expect(events).toEqual(['connect', 'disconnect']);
  });

  it('hands a CCCD write on the frames characteristic (onWriteDesc, an ArrayBuffer) over as notifications on or off', () => {
    const { NRF, calls } = fakeNrf();
    const events: string[] = [];
    bleRadio(NRF).start(options(events, []));
    const onWriteDesc = calls.services[0]!.services[SERVICE_UUID]![FRAMES_UUID]!.onWriteDesc as (evt: { data: ArrayBuffer }) => void;
    onWriteDesc({ data: new Uint8Array([1, 0]).buffer });
    onWriteDesc({ data: new Uint8Array([0, 0]).buffer });
    // Indications only (bit 1) is not a subscription to notifications.
    onWriteDesc({ data: new Uint8Array([2, 0]).buffer });
    expect(events).toEqual(['subscribe', 'unsubscribe', 'unsubscribe']);
  });

  it('notifies a frame through updateServices on the frames characteristic', () => {
    const { NRF, calls } = fakeNrf();
    const radio = bleRadio(NRF);
    radio.start(options([], []));
    const frame = new Uint8Array(20).fill(7);
    radio.notify(frame);
    expect(calls.updates).toEqual([{ [SERVICE_UUID]: { [FRAMES_UUID]: { value: frame, notify: true } } }]);
  });
});
