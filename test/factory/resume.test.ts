// kill -9 during real `sealpost provision` runs, at random points, several
// times, then resume with the same command. Afterwards: every serial once,
// every device file the key the server derives from its manifest row, and no
// row that was durable at any kill was ever replaced by another key.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDeviceFile, fromHex, recoverDeviceKeys, toHex, verifyManifest } from '../../protocol/index.js';
import { parseJournal } from '../../factory/journal.js';
import { BIN, makeKeys, provisionArgs, tempDir, removeTempDirs } from '../fixtures/factory/setup.js';
import { sealpost } from '../helpers/cli.js';

afterAll(removeTempDirs);

const SERIALS = 'SP-000001-SP-002500';
const COUNT = 2500;
const ROW_BYTES = 180; // one journal line for a 9-character serial

/** Starts a provisioning run and SIGKILLs it once `when` says so (polled every 2 ms). */
function runAndKill(args: string[], when: () => boolean): Promise<{ killed: boolean; status: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
    let killed = false;
    const poll = setInterval(() => {
      if (!killed && when()) {
        killed = true;
        child.kill('SIGKILL');
      }
    }, 2);
    child.on('exit', (status) => {
      clearInterval(poll);
      resolve({ killed, status });
    });
  });
}

describe('kill -9 and resume', () => {
  it('never issues a serial twice or with two keys', async () => {
    const keys = makeKeys();
    const out = tempDir('kill');
    const batchDir = join(out, SERIALS);
    const journal = join(batchDir, 'journal');
    const args = provisionArgs(keys, out, SERIALS);
    const rowsAt = () => (existsSync(journal) ? Math.floor(statSync(journal).size / ROW_BYTES) : 0);
    const filesAt = () => (existsSync(join(batchDir, 'devices')) ? readdirSync(join(batchDir, 'devices')).length : 0);
    // Durable rows seen after each kill: a later run may never change them.
    const seen = new Map<string, string>();
    const remember = () => {
      if (!existsSync(journal)) return;
      for (const [serial, row] of parseJournal(readFileSync(journal)).rows) {
        const before = seen.get(serial);
        if (before !== undefined) expect(row.enc, `${serial} changed key after it was durable`).toBe(before);
        seen.set(serial, row.enc);
      }
    };
    let kills = 0;
    // Kill points: while the batch is being set up; at random depths into
    // the device files (mostly in the middle of a group, whose rows are not
    // written yet) and into the journal; between kcv.json and the manifest.
    const depth = (f: number) => Math.floor((f + (Math.random() - 0.5) * 0.2) * COUNT);
    const points: (() => boolean)[] = [
      () => existsSync(join(batchDir, 'batch.json')),
      ...[0.2, 0.55].map((f) => {
        const at = depth(f);
        return () => filesAt() >= at;
      }),
      ...[0.5, 0.9].map((f) => {
        const at = depth(f);
        return () => rowsAt() >= at;
      }),
      () => existsSync(join(batchDir, 'kcv.json')),
    ];
    for (const point of points) {
      const r = await runAndKill(args, point);
      if (r.killed) kills++;
      remember();
    }
    expect(kills).toBeGreaterThanOrEqual(3);

    // The resume itself needs no process of its own.
    const final = await sealpost(...args);
    expect(final.err).toBe('');
    expect(final.code).toBe(0);
    remember();

    const { body } = verifyManifest(readFileSync(join(batchDir, 'manifest.json'), 'utf8'), [keys.factoryPub]);
    expect(body.devices).toHaveLength(COUNT);
    expect(new Set(body.devices.map((d) => d.serial)).size).toBe(COUNT);
    for (const d of body.devices) {
      expect(seen.get(d.serial)).toBe(d.enc);
      const file = decodeDeviceFile(new Uint8Array(readFileSync(join(batchDir, 'devices', `${d.serial}.dev`))));
      const server = recoverDeviceKeys(keys.ingestPriv.key, fromHex('enc', d.enc), d.serial);
      expect(toHex(file.sealKey)).toBe(toHex(server.sealKey));
      expect(toHex(file.nonceSalt)).toBe(toHex(server.nonceSalt));
    }
  }, 180_000);
});
