// The relay core carries key renewal's downlink (issue #17 item 4; docs/api.md `downlink`, docs/relay.md):
// the ack, RENEW_ACK and the six ANNOUNCE writes of an answer go to the device in order, one list per
// link at a time; a malformed downlink leaves only the ack; writes wait for the next connection.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { VirtualClock } from '../../hal/sim/clock.js';
import { seededRandom } from '../../hal/sim/random.js';
import { Relay } from '../../relay/index.js';
import { MemoryQueueStore } from '../../relay/memory-queue.js';
import { FakeLink, FakeServer, ackFor, b64, frame, response } from '../helpers/relay-fakes.js';
import type { RenewalVectors } from '../vectors/generate.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as RenewalVectors;
const announce = vectors.announce[0]!.writes.map((w) => Buffer.from(w, 'hex'));
const renewAck = Buffer.from(vectors.renew_ack[0]!.renew_ack, 'hex');
const hex = (w: Uint8Array) => Buffer.from(w).toString('hex');

async function setup(downlink: (n: number) => unknown[] | undefined, ack: (n: number) => Uint8Array | null = ackFor) {
  const server = new FakeServer();
  const clock = new VirtualClock();
  server.script = (body, n) => {
    const d = body.devices[0]!;
    const a = ack(n);
    const extra = downlink(n);
    return response(200, { devices: [{ serial: d.serial, ack: a ? b64(a) : null, accepted: d.frames.length, duplicates: 0, rejected: [], ...(extra ? { downlink: extra } : {}) }] });
  };
  const relay = await Relay.open({ relayId: 'r', clock, upload: server.upload, store: new MemoryQueueStore(), log: () => undefined, random: seededRandom(3), flushDelayMs: 100, stallMs: 0 });
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      clock.advance(50);
      for (let i = 0; i < 4; i++) {
        await new Promise<void>((r) => setImmediate(r));
        await relay.idle();
      }
    }
  };
  return { relay, run };
}

describe('relay core: key renewal downlink', () => {
  it('writes ack, RENEW_ACK and the six ANNOUNCE parts in the order the server gave, once', async () => {
    const { relay, run } = await setup((n) => (n === 1 ? [b64(ackFor(1)), b64(renewAck), ...announce.map(b64)] : undefined));
    const link = new FakeLink('SP-R1');
    await relay.connect(link);
    link.send(frame(1));
    await run(300);
    expect(link.acks.map(hex)).toEqual([hex(ackFor(1)), hex(renewAck), ...announce.map(hex)]);
    link.send(frame(2));
    await run(300);
    expect(link.acks.slice(8).map(hex)).toEqual([hex(ackFor(2))]); // the next answer had the ack only
  });

  it('writes a downlink that comes without an ack, and ignores one with a write over 20 bytes or not base64', async () => {
    let answer = 0;
    const lists = [[b64(renewAck)], [b64(new Uint8Array(21)), ...announce.map(b64)], ['not base64!', b64(renewAck)]];
    const { relay, run } = await setup(() => lists[answer++], () => null);
    const link = new FakeLink('SP-R2');
    await relay.connect(link);
    for (const c of [1, 2, 3]) {
      link.send(frame(c));
      await run(300);
    }
    expect(link.acks.map(hex)).toEqual([hex(renewAck)]);
  });

  it('keeps the writes of a device that left and writes them after its ack on the next connection', async () => {
    const { relay, run } = await setup((n) => (n === 1 ? [b64(ackFor(1)), ...announce.map(b64)] : undefined));
    const link = new FakeLink('SP-R3');
    await relay.connect(link);
    link.send(frame(1));
    link.drop();
    await run(300);
    expect(link.acks).toEqual([]);
    const again = new FakeLink('SP-R3');
    await relay.connect(again);
    await run(100);
    expect(again.acks.map(hex)).toEqual([hex(ackFor(1)), ...announce.map(hex)]);
  });
});
