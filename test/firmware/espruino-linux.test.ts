// Opt-in (ESPRUINO_BIN=/path/to/espruino, the Linux build, see README): the
// espruino-linux firmware bundle on the real interpreter. A provisioned
// device's frames open on the host in order, an ack frees the outbox, and a
// restart (power loss) continues with fresh counters.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePlaintext, keyCheckValue, makeAck, openFrame, toHex } from '../../protocol/index.js';
import { provisionSim } from '../helpers/sim-fleet.js';
import { startEspruino, writeStorage, type Session } from '../helpers/espruino-process.js';
import { counterLogImage } from '../../protocol/wire/counter-log.js';

const BIN = process.env.ESPRUINO_BIN;
const BUNDLE = new URL('../../dist/espruino-linux.js', import.meta.url).pathname;

describe.runIf(BIN)('the espruino-linux bundle on the real interpreter ($ESPRUINO_BIN)', () => {
  it('seals frames the host opens, frees them on a valid ack, and never reuses a counter across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealpost-linux-'));
    const prov = provisionSim('SP-LINUX-T');
    writeStorage(BIN!, dir, { 'sealpost.dev': prov.deviceFile, 'sealpost.ctr': counterLogImage(8192) });
    writeFileSync(join(dir, 'fw.js'), readFileSync(BUNDLE, 'utf8'));
    const seen = new Map<number, string>();
    const collect = (s: Session) => {
      for (const l of s.lines) {
        const m = /^FRAME ([0-9a-f]+)$/.exec(l);
        if (!m) continue;
        const opened = openFrame(prov.keys, Buffer.from(m[1]!, 'hex'), 20);
        const known = seen.get(opened.counter);
        if (known !== undefined) expect(known, `counter ${opened.counter} reused`).toBe(m[1]);
        seen.set(opened.counter, m[1]!);
      }
    };

    const first = startEspruino(BIN!, dir, 'fw.js');
    await first.waitFor((l) => l.startsWith('sealpost SP-LINUX-T'));
    expect(first.lines).toContain(`sealpost SP-LINUX-T kcv ${toHex(keyCheckValue(prov.keys.sealKey))} fw 0.1.0`);
    first.send('sealpostConnect()');
    await first.waitFor((l) => /^FRAME 00000004/.test(l));
    collect(first);
    const opened = [...seen.keys()].sort((a, b) => a - b);
    expect(opened.slice(0, 4)).toEqual([1, 2, 3, 4]);
    expect(decodePlaintext(openFrame(prov.keys, Buffer.from(seen.get(1)!, 'hex'), 20).plaintext)).toMatchObject({ type: 'anchor', reason: 0, boot: 1 });
    first.send(`sealpostAck("${toHex(makeAck(prov.keys, 3))}")`);
    first.send(`sealpostAck("${toHex(makeAck({ ...prov.keys, nonceSalt: new Uint8Array(8) }, 4))}")`);
    first.send('sealpostStatus()');
    const status = JSON.parse((await first.waitFor((l) => l.startsWith('STATUS '))).slice(7));
    expect(status.acked).toBe(3);
    expect(status.boot).toBe(1);
    await first.stop();
    collect(first);

    const second = startEspruino(BIN!, dir, 'fw.js');
    second.send('sealpostConnect()');
    await second.waitFor((l) => l.startsWith('FRAME '));
    await new Promise((r) => setTimeout(r, 1500));
    second.send('sealpostStatus()');
    const status2 = JSON.parse((await second.waitFor((l) => l.startsWith('STATUS '))).slice(7));
    expect(status2.boot).toBe(2);
    await second.stop();
    collect(second);
    const counters = [...seen.keys()].sort((a, b) => a - b);
    const firstOfBoot2 = counters.find((c) => c > 16)!;
    expect(firstOfBoot2).toBe(17);
    expect(decodePlaintext(openFrame(prov.keys, Buffer.from(seen.get(17)!, 'hex'), 20).plaintext)).toMatchObject({ type: 'anchor', reason: 0, boot: 2 });
  }, 60_000);
});
