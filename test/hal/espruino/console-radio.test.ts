// consoleRadio (hal/espruino/console-radio.ts), the Linux target's radio, on
// a hand-made print and console: frames leave as FRAME lines, the relay's
// connection and acks come back through the exposed console functions.
import { describe, expect, it } from 'vitest';
import { consoleRadio } from '../../../hal/espruino/console-radio.js';
import { RADIO_ACK } from '../../../hal/types.js';

describe('consoleRadio', () => {
  it('prints the info and frames, and turns console calls into connection events and acks', () => {
    const lines: string[] = [];
    const exposed: Record<string, (...args: unknown[]) => void> = {};
    const events: string[] = [];
    const acks: Uint8Array[] = [];
    const radio = consoleRadio(
      (l) => lines.push(l),
      (name, fn) => (exposed[name] = fn as (...args: unknown[]) => void),
    );
    radio.start({
      name: 'sealpost 000001',
      info: '{"serial":"SP-000001"}',
      frameSize: 20,
      onEvent: (e, d) => (e === RADIO_ACK ? acks.push(d!) : events.push(['', 'connect', 'disconnect', 'subscribe', 'unsubscribe'][e]!)),
    });
    expect(lines).toEqual(['INFO {"serial":"SP-000001"}']);
    expect(Object.keys(exposed).sort()).toEqual(['sealpostAck', 'sealpostConnect', 'sealpostDisconnect', 'sealpostSubscribe']);
    exposed.sealpostSubscribe!(1);
    exposed.sealpostConnect!();
    exposed.sealpostConnect!();
    expect(radio.connected()).toBe(true);
    exposed.sealpostSubscribe!(1);
    exposed.sealpostSubscribe!(0);
    radio.notify(new Uint8Array([0, 1, 0xab, 0xff]));
    expect(lines[1]).toBe('FRAME 0001abff');
    exposed.sealpostAck!('0000000a0102030405060708');
    expect(acks).toEqual([new Uint8Array([0, 0, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8])]);
    exposed.sealpostDisconnect!();
    exposed.sealpostDisconnect!();
    expect(radio.connected()).toBe(false);
    expect(events).toEqual(['connect', 'subscribe', 'unsubscribe', 'disconnect']);
  });
});
