// Secrets hygiene: run keys init, a 1,000-device provisioning run (and its
// progress bar), a resume, failing commands and flashing as real processes
// (everything a process prints, not only what goes through console),
// collect everything they print, and look for every device's seal key, nonce
// salt, chain secret and secret file and every private key (ingest, factory,
// renewal, and the ingest key of a `keys renew`) in hex (either case) and base64
// (standard and URL alphabets, at every byte alignment).
import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { boardProfile } from '../../boards/index.js';
import { decodeDeviceFile } from '../../protocol/index.js';
import { createProgress } from '../../factory/progress.js';
import { provisionBatch } from '../../factory/provision.js';
import { parseSerialRange } from '../../factory/serials.js';
import { FIRMWARE, makeKeys, provisionArgs, sealpostProcess, tempDir, removeTempDirs } from '../fixtures/factory/setup.js';

afterAll(removeTempDirs);

/** Every printable form of `bytes`: hex in both cases and the base64 characters that depend on `bytes` alone, at offsets 0, 1, 2 mod 3. */
function forms(bytes: Uint8Array): string[] {
  const hex = Buffer.from(bytes).toString('hex');
  const out = [hex, hex.toUpperCase()];
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k), Buffer.from(bytes)]).toString('base64');
    const inner = b64.slice(Math.ceil((k * 8) / 6), Math.floor(((k + bytes.length) * 8) / 6));
    out.push(inner, inner.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return out;
}

describe('no secret in any output', () => {
  it('keys init, provision (with progress), resume, failures and flashing print no key material', async () => {
    const printed: string[] = [];
    const record = (r: { stdout: string; stderr: string }) => printed.push(r.stdout, r.stderr);

    const keyDir = tempDir('hygiene-keys');
    const init = await sealpostProcess(['keys', 'init', '--dir', keyDir]);
    expect(init.status).toBe(0);
    record(init);
    const names = readdirSync(keyDir);
    const keyFile = (prefix: string, ext: string) => join(keyDir, names.find((n) => n.startsWith(prefix) && n.endsWith(ext))!);
    const paths = {
      ingestPublic: keyFile('ingest', '.pub'),
      ingestPrivate: keyFile('ingest', '.key'),
      factoryPrivate: keyFile('factory', '.key'),
      factoryPublic: keyFile('factory', '.pub'),
      renewalPrivate: keyFile('renewal', '.key'),
      renewalPublic: keyFile('renewal', '.pub'),
    };
    const renewed = await sealpostProcess(['keys', 'renew', '--keys', keyDir]);
    expect(renewed.status).toBe(0);
    record(renewed);
    const privateFiles = readdirSync(keyDir).filter((n) => n.endsWith('.key'));
    expect(privateFiles.length).toBe(4);
    const privateKeys = privateFiles.map((n) => new Uint8Array(Buffer.from((JSON.parse(readFileSync(join(keyDir, n), 'utf8')) as { private_key: string }).private_key, 'hex')));

    const out = tempDir('hygiene-out');
    const args = provisionArgs(paths, out, 'SP-000001-SP-001000');
    const run = await sealpostProcess(args);
    expect(run.status).toBe(0);
    record(run);
    record(await sealpostProcess(args)); // already complete
    record(await sealpostProcess(provisionArgs({ ...paths, ingestPublic: paths.ingestPrivate }, out, 'SP-002001-SP-002002')));
    record(await sealpostProcess(provisionArgs({ ...paths, factoryPrivate: paths.ingestPrivate }, out, 'SP-002001-SP-002002')));
    record(await sealpostProcess(provisionArgs({ ...paths, renewalPublic: paths.renewalPrivate }, out, 'SP-002001-SP-002002')));

    // The progress bar as a terminal would show it, for a second batch in-process.
    const keys = makeKeys();
    let bar = '';
    const progress = createProgress({ isTTY: true, columns: 100, write: (t: string) => (bar += t) }, 'provision', (() => {
      let t = 0;
      return () => (t += 1000);
    })());
    const range = parseSerialRange('SQ-000001-SQ-003000');
    const second = await provisionBatch({ out: tempDir('hygiene-bar'), batch: 'bar', board: boardProfile('puckjs'), range, ingest: keys.ingestPub, factory: keys.factoryPriv, groupSize: 256, onProgress: (d, t) => progress.update(d, t) });
    progress.finish();
    expect(bar).toMatch(/\rprovision \[#+\] 3000\/3000 \d+\/s \n$/);
    printed.push(bar);

    const batchDir = join(out, 'SP-000001-SP-001000');
    const device = (serial: string) => join(batchDir, 'devices', `${serial}.dev`);
    record(await sealpostProcess(['flash', '--ohex', join(tempDir('hygiene-hex'), 'a.hex'), '--device', device('SP-000001'), '--board', 'puckjs', '--firmware', FIRMWARE]));
    record(await sealpostProcess(['flash', '--port', 'tcp://127.0.0.1:1', '--device', device('SP-000002'), '--firmware', FIRMWARE]));
    record(await sealpostProcess(['flash', '--port', '/dev/ttyNONEXISTENT0', '--device', device('SP-000003'), '--board', 'pixljs']));
    const info = await sealpostProcess(['info', device('SP-000004')]);
    expect(info.stdout).toContain('can renew: fleet');
    record(info);

    const text = printed.join('\n');
    expect(text).toContain('batch SP-000001-SP-001000: 1000 devices');
    expect(text).toContain('step 1/7 (connect and check the device) failed');
    const secrets: Uint8Array[] = [...privateKeys];
    for (const dir of [join(batchDir, 'devices'), join(second.batchDir, 'devices')]) {
      for (const name of readdirSync(dir)) {
        const file = new Uint8Array(readFileSync(join(dir, name)));
        const d = decodeDeviceFile(file);
        secrets.push(d.sealKey, d.nonceSalt, file.subarray(7 + d.serial.length));
        if (d.renewal) secrets.push(d.renewal.chain);
      }
    }
    expect(secrets.length).toBe(4 + 3 * 4000 + 1000);
    const leaks: string[] = [];
    for (const s of secrets) for (const f of forms(s)) if (text.includes(f)) leaks.push(f);
    expect(leaks).toEqual([]);
  }, 180_000);
});
