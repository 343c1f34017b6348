// The factory: serial ranges, the fast HPKE sender against the reference,
// the journal, a 1,000-device batch end to end, resume from crafted crash
// states, duplicate serials across batches, tampered manifests, wrong key files.
import { afterAll, describe, expect, it, beforeAll } from 'vitest';
import { appendFileSync, chmodSync, existsSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { boardProfile } from '../../boards/index.js';
import {
  decodeDeviceFile,
  encodeDeviceFile,
  encodeManifest,
  fromHex,
  keyCheckValue,
  provisionDevice,
  recoverDeviceKeys,
  signManifest,
  toHex,
  verifyManifest,
  encodeAnchor,
  sealFrame,
  verifyAck,
  type ManifestBody,
} from '../../protocol/index.js';
import { importManifest, makeConfig, startServer } from '../../server/index.js';
import { createToken } from '../../server/auth/tokens.js';
import { encodeJournalRow, parseJournal } from '../../factory/journal.js';
import { provisionBatch, type ProvisionRequest } from '../../factory/provision.js';
import { createSender } from '../../factory/sender.js';
import { formatRange, indexInRange, parseSerialRange, rangesOverlap, serialAt } from '../../factory/serials.js';
import { provisionVectors, hex } from '../helpers/vectors.js';
import { makeKeys, provisionArgs, tempDir, type KeySet, removeTempDirs } from '../fixtures/factory/setup.js';
import { sealpost } from '../helpers/cli.js';

afterAll(removeTempDirs);

describe('serial ranges', () => {
  it('parse prefix, width, first, last and count', () => {
    expect(parseSerialRange('SP-000001-SP-001000')).toEqual({ prefix: 'SP-', width: 6, first: 1, last: 1000, count: 1000 });
    expect(parseSerialRange('A10001-A19999')).toEqual({ prefix: 'A', width: 5, first: 10001, last: 19999, count: 9999 });
    expect(parseSerialRange('0007-0007')).toMatchObject({ prefix: '', width: 4, count: 1 });
    const r = parseSerialRange('SP-000998-SP-001002');
    expect([0, 4].map((i) => serialAt(r, i))).toEqual(['SP-000998', 'SP-001002']);
    expect(formatRange(r)).toBe('SP-000998-SP-001002');
    expect(indexInRange(r, 'SP-001000')).toBe(2);
    expect(indexInRange(r, 'SP-001003')).toBeUndefined();
    expect(indexInRange(r, 'SP-1000')).toBeUndefined();
  });

  it('reject what is not a range, naming the problem', () => {
    expect(() => parseSerialRange('SP-000001')).toThrow(/FIRST-LAST/);
    expect(() => parseSerialRange('SP-1-SP-10')).toThrow(/equal length/);
    expect(() => parseSerialRange('SP-000010-SP-000001')).toThrow(/comes after/);
    expect(() => parseSerialRange('SP-000001-SQ-000100')).toThrow(/share prefix and number width/);
    expect(() => parseSerialRange('SP-00001A-SP-00002A')).toThrow(/does not end in a number/);
    expect(() => parseSerialRange('SP 00001-SP 00002')).toThrow(/not valid/);
    expect(() => parseSerialRange('SP-0000001-SP-9999999')).toThrow(/at most 100000/);
    expect(() => parseSerialRange('')).toThrow(/FIRST-LAST/);
  });

  it('overlap even when prefix and number are split differently', () => {
    const a = parseSerialRange('SP-000001-SP-001000');
    expect(rangesOverlap(a, parseSerialRange('SP-001000-SP-002000'))).toBe(true);
    expect(rangesOverlap(a, parseSerialRange('SP-001001-SP-002000'))).toBe(false);
    expect(rangesOverlap(a, parseSerialRange('SP-000500-SP-000600'))).toBe(true);
    expect(rangesOverlap(a, parseSerialRange('SP-000900-SP-000999'))).toBe(true);
    // "SP-0" + 5 digits names the same strings as "SP-" + 6 digits.
    expect(rangesOverlap(a, parseSerialRange('SP-000999-SP-000999'))).toBe(true);
    expect(rangesOverlap(a, { prefix: 'SP-0', width: 5, first: 999, last: 999, count: 1 })).toBe(true);
    expect(rangesOverlap(a, { prefix: 'SP-00', width: 4, first: 1001, last: 2000, count: 1000 })).toBe(false);
    expect(rangesOverlap(a, parseSerialRange('SQ-000001-SQ-001000'))).toBe(false);
    expect(rangesOverlap(a, parseSerialRange('SP-0000001-SP-0001000'))).toBe(false);
  });
});

describe('fast HPKE sender', () => {
  it('reproduces test/vectors/provision.json (RFC 9180 SetupBaseS with fixed ephemeral keys)', () => {
    for (const v of provisionVectors()) {
      const send = createSender(hex(v.ingest_public_key), { ephemeralPrivateKey: () => hex(v.ephemeral_private_key), selfCheckEvery: 1 });
      const d = send(v.serial);
      expect(toHex(d.enc)).toBe(v.enc);
      expect(toHex(d.sealKey)).toBe(v.seal_key);
      expect(toHex(d.nonceSalt)).toBe(v.nonce_salt);
      expect(toHex(d.kcv)).toBe(v.kcv);
    }
  });

  it('agrees with protocol/provision.ts on random devices, and the server re-derives them', () => {
    const keys = makeKeys();
    const send = createSender(keys.ingestPub.key, { selfCheckEvery: 1 });
    for (let i = 0; i < 20; i++) {
      const d = send(`SP-${i}`);
      const r = recoverDeviceKeys(keys.ingestPriv.key, d.enc, `SP-${i}`);
      expect(toHex(r.sealKey)).toBe(toHex(d.sealKey));
      expect(toHex(r.nonceSalt)).toBe(toHex(d.nonceSalt));
    }
  });

  it('refuses small-order and malformed ingest keys and bad serials', () => {
    expect(() => createSender(new Uint8Array(32))('SP-1')).toThrow(/not a valid X25519 public key/);
    expect(() => createSender(new Uint8Array(31))).toThrow(/32 bytes/);
    expect(() => createSender(makeKeys().ingestPub.key)('bad serial')).toThrow(/serial "bad serial" is not valid/);
  });
});

describe('journal', () => {
  const keys = makeKeys();
  const row = (serial: string) => {
    const d = provisionDevice(keys.ingestPub.key, serial);
    return { serial, enc: toHex(d.enc), kcv: toHex(d.kcv), file: encodeDeviceFile({ serial, frameSize: 20, sealKey: d.sealKey, nonceSalt: d.nonceSalt }) };
  };
  const a = row('SP-1');
  const b = row('SP-2');
  const text = encodeJournalRow(a) + encodeJournalRow(b);

  it('round-trips rows; the last row of a serial wins', () => {
    const b2 = row('SP-2');
    const p = parseJournal(Buffer.from(text + encodeJournalRow(b2)));
    expect(p.lines).toBe(3);
    expect(p.damagedTail).toBe(false);
    expect(p.rows.get('SP-1')!.enc).toBe(a.enc);
    expect(p.rows.get('SP-2')!.enc).toBe(b2.enc);
    expect(Buffer.from(p.rows.get('SP-2')!.file).equals(Buffer.from(b2.file))).toBe(true);
  });

  it('stops at a torn, corrupted or inconsistent line', () => {
    for (let cut = 1; cut < encodeJournalRow(b).length; cut += 17) {
      const p = parseJournal(Buffer.from(text.slice(0, text.length - cut)));
      expect(p.lines).toBe(1);
      expect(p.damagedTail).toBe(true);
      expect(p.goodBytes).toBe(encodeJournalRow(a).length);
    }
    const flipped = Buffer.from(text);
    flipped[encodeJournalRow(a).length + 20] ^= 0x01;
    expect(parseJournal(flipped).lines).toBe(1);
    // A row whose CRC is right but whose kcv does not belong to its file.
    const liar = encodeJournalRow({ ...b, kcv: a.kcv });
    expect(parseJournal(Buffer.from(encodeJournalRow(a) + liar)).lines).toBe(1);
  });
});

function request(keys: KeySet, out: string, serials: string, extra: Partial<ProvisionRequest> = {}): ProvisionRequest {
  const range = parseSerialRange(serials);
  return { out, batch: formatRange(range), board: boardProfile('puckjs'), range, ingest: keys.ingestPub, factory: keys.factoryPriv, ...extra };
}

/** Every device file decodes to the keys the server derives from the manifest row; kcv.json agrees. */
function checkBatch(keys: KeySet, batchDir: string, count: number): ManifestBody {
  const { body } = verifyManifest(readFileSync(join(batchDir, 'manifest.json'), 'utf8'), [keys.factoryPub]);
  const kcv = JSON.parse(readFileSync(join(batchDir, 'kcv.json'), 'utf8')) as { devices: Record<string, string> };
  expect(body.devices).toHaveLength(count);
  expect(new Set(body.devices.map((d) => d.serial)).size).toBe(count);
  for (const d of body.devices) {
    const file = decodeDeviceFile(new Uint8Array(readFileSync(join(batchDir, 'devices', `${d.serial}.dev`))));
    const server = recoverDeviceKeys(keys.ingestPriv.key, fromHex('enc', d.enc), d.serial);
    expect(file.serial).toBe(d.serial);
    expect(file.frameSize).toBe(body.frame_size);
    expect(toHex(file.sealKey)).toBe(toHex(server.sealKey));
    expect(toHex(file.nonceSalt)).toBe(toHex(server.nonceSalt));
    expect(kcv.devices[d.serial]).toBe(toHex(keyCheckValue(file.sealKey)));
  }
  return body;
}

describe('a batch of 1,000 devices', () => {
  const keys = makeKeys();
  const out = tempDir('batch');
  const batchDir = join(out, 'SP-000001-SP-001000');
  let first: Awaited<ReturnType<typeof provisionBatch>>;

  beforeAll(async () => {
    first = await provisionBatch(request(keys, out, 'SP-000001-SP-001000', { now: () => new Date('2026-11-27T10:00:00Z') }));
  });

  it('provisions; the manifest verifies and every device matches what the server re-derives', () => {
    expect(first).toMatchObject({ devices: 1000, issued: 1000, reissued: 0, restored: 0, resumed: false, alreadyComplete: false });
    const body = checkBatch(keys, batchDir, 1000);
    expect(body).toMatchObject({ batch: 'SP-000001-SP-001000', board: 'puckjs', frame_size: 20, ingest_key_id: keys.ingestId, created: '2026-11-27T10:00:00.000Z' });
    expect(body.devices[0]!.serial).toBe('SP-000001');
    expect(body.devices[999]!.serial).toBe('SP-001000');
  });

  it('its manifest imports into the server registry, and a device flashed with its file gets through', async () => {
    const dir = tempDir('server');
    const config = makeConfig({ db: join(dir, 'sealpost.db'), listen: { host: '127.0.0.1', port: 0 }, ingestKeys: [keys.ingestPrivate], trust: [keys.factoryPublic], logLevel: 'silent' });
    const server = await startServer(config, { logger: false });
    try {
      const outcome = await importManifest(server.app.storage, readFileSync(join(batchDir, 'manifest.json'), 'utf8'), { trusted: [keys.factoryPub], ingestKeyIds: [keys.ingestPub.id] });
      expect(outcome).toMatchObject({ status: 'imported', batch: 'SP-000001-SP-001000' });
      const { token } = await createToken(server.app.storage, 'factory-check', 'read');
      const list = (await (await fetch(new URL('/v1/devices', server.url), { headers: { authorization: `Bearer ${token}` } })).json()) as { devices: unknown[] };
      expect(list.devices).toHaveLength(1000);
      // The device side: exactly the bytes flashed into Storage as sealpost.dev.
      const d = decodeDeviceFile(new Uint8Array(readFileSync(join(batchDir, 'devices', 'SP-000500.dev'))));
      const pt = new Uint8Array(8);
      encodeAnchor(pt, 1, 0, 0);
      const frame = sealFrame(d, 1, pt, d.frameSize);
      const res = await fetch(new URL('/v1/uplink', server.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ relay: { id: 'factory-test', time: Date.now() }, devices: [{ serial: 'SP-000500', frames: [{ data: Buffer.from(frame).toString('base64'), rx: Date.now() }] }] }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { devices: Array<{ accepted: number; ack: string }> };
      expect(body.devices[0]!.accepted).toBe(1);
      expect(verifyAck(d, new Uint8Array(Buffer.from(body.devices[0]!.ack, 'base64')))).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('keeps secrets 0600 and nothing secret outside devices/ and the journal', () => {
    expect(statSync(join(batchDir, 'devices', 'SP-000500.dev')).mode & 0o777).toBe(0o600);
    expect(statSync(join(batchDir, 'journal')).mode & 0o777).toBe(0o600);
    expect(statSync(join(batchDir, 'devices')).mode & 0o777).toBe(0o700);
    const manifest = readFileSync(join(batchDir, 'manifest.json'), 'utf8') + readFileSync(join(batchDir, 'kcv.json'), 'utf8');
    const d = decodeDeviceFile(new Uint8Array(readFileSync(join(batchDir, 'devices', 'SP-000500.dev'))));
    expect(manifest).not.toContain(toHex(d.sealKey));
    expect(manifest).not.toContain(toHex(d.nonceSalt));
    expect(manifest).not.toContain(toHex(d.sealKey.subarray(0, 8)));
  });

  it('runs again as a no-op, and restores damaged device files from the journal with the same keys', async () => {
    const manifest = readFileSync(join(batchDir, 'manifest.json'));
    const before = readFileSync(join(batchDir, 'devices', 'SP-000007.dev'));
    unlinkSync(join(batchDir, 'devices', 'SP-000007.dev'));
    writeFileSync(join(batchDir, 'devices', 'SP-000008.dev'), 'garbage');
    chmodSync(join(batchDir, 'devices', 'SP-000008.dev'), 0o644);
    const again = await provisionBatch(request(keys, out, 'SP-000001-SP-001000'));
    expect(again).toMatchObject({ alreadyComplete: true, issued: 0, restored: 2 });
    expect(readFileSync(join(batchDir, 'manifest.json')).equals(manifest)).toBe(true);
    expect(readFileSync(join(batchDir, 'devices', 'SP-000007.dev')).equals(before)).toBe(true);
    expect(statSync(join(batchDir, 'devices', 'SP-000008.dev')).mode & 0o777).toBe(0o600);
    checkBatch(keys, batchDir, 1000);
  });

  it('refuses overlapping serials in the same output tree, however the range is written', async () => {
    await expect(provisionBatch(request(keys, out, 'SP-000990-SP-001100'))).rejects.toThrow(/overlap batch SP-000001-SP-001000/);
    await expect(provisionBatch(request(keys, out, 'SP-000001-SP-000001', { batch: 'other' }))).rejects.toThrow(/overlap/);
    const split = { prefix: 'SP-00', width: 4, first: 999, last: 1000, count: 2 };
    await expect(provisionBatch({ ...request(keys, out, 'SP-000999-SP-001000'), range: split, batch: 'split' })).rejects.toThrow(/overlap/);
    expect(existsSync(join(out, 'split'))).toBe(false);
    // A batch directory known only by its manifest also claims its serials.
    const foreign = join(out, 'imported');
    mkdirSync(foreign);
    const body: ManifestBody = { batch: 'imported', created: '2026-01-01T00:00:00Z', board: 'puckjs', frame_size: 20, ingest_key_id: keys.ingestId, devices: [{ serial: 'SP-005000', enc: '11'.repeat(32) }] };
    writeFileSync(join(foreign, 'manifest.json'), encodeManifest(signManifest(body, keys.factoryPriv)));
    await expect(provisionBatch(request(keys, out, 'SP-004000-SP-006000'))).rejects.toThrow(/SP-005000 was already issued in batch imported/);
    const next = await provisionBatch(request(keys, out, 'SP-001001-SP-001010'));
    expect(next.issued).toBe(10);
    // ... and so does a batch that lost its batch.json and manifest but kept its journal.
    rmSync(join(out, 'SP-001001-SP-001010', 'batch.json'));
    rmSync(join(out, 'SP-001001-SP-001010', 'manifest.json'));
    await expect(provisionBatch(request(keys, out, 'SP-001010-SP-001020'))).rejects.toThrow(/SP-001010 is in the journal of .*SP-001001-SP-001010, a batch without batch\.json/);
  });

  it('refuses to resume a batch with other arguments', async () => {
    const other = makeKeys();
    await expect(provisionBatch(request(other, out, 'SP-000001-SP-001000'))).rejects.toThrow(/ingest_key_id .* this command gives/);
    await expect(provisionBatch(request(keys, out, 'SP-000001-SP-001000', { board: boardProfile('mdbt42q') }))).rejects.toThrow(/board puckjs.*--board/);
  });

  it('detects a tampered manifest', async () => {
    const path = join(batchDir, 'manifest.json');
    const original = readFileSync(path, 'utf8');
    const doc = JSON.parse(original) as { body: string };
    const body = JSON.parse(doc.body) as ManifestBody;
    body.devices[3]!.enc = body.devices[4]!.enc;
    const tampered = JSON.stringify({ ...doc, body: JSON.stringify(body) });
    expect(() => verifyManifest(tampered, [keys.factoryPub])).toThrow(/signature does not verify/);
    expect(() => verifyManifest(original, [makeKeys().factoryPub])).toThrow(/which this server does not trust/);
    writeFileSync(path, tampered);
    await expect(provisionBatch(request(keys, out, 'SP-000001-SP-001000'))).rejects.toThrow(/signature does not verify/);
    writeFileSync(path, original);
  });
});

describe('resume from crash states', () => {
  it('issues again what was never durable, restores what was, and keeps durable keys', async () => {
    const keys = makeKeys();
    const out = tempDir('crash');
    const req = request(keys, out, 'SP-000001-SP-000040', { groupSize: 8 });
    await provisionBatch(req);
    const batchDir = join(out, req.batch);
    const journal = join(batchDir, 'journal');
    const rows = parseJournal(readFileSync(journal)).rows;
    // Roll back to "killed during group 4": the manifest and kcv.json not
    // written yet, the journal torn inside row 30, files 31..40 written by
    // the lost run, SP-000005's file lost.
    rmSync(join(batchDir, 'manifest.json'));
    rmSync(join(batchDir, 'kcv.json'));
    const lineLength = readFileSync(journal).indexOf(0x0a) + 1;
    truncateSync(journal, lineLength * 29 + 25);
    unlinkSync(join(batchDir, 'devices', 'SP-000005.dev'));
    const lost = readFileSync(join(batchDir, 'devices', 'SP-000035.dev'));
    const r = await provisionBatch(req);
    expect(r).toMatchObject({ issued: 11, reissued: 11, restored: 1, resumed: true, alreadyComplete: false });
    const body = checkBatch(keys, batchDir, 40);
    for (const d of body.devices.slice(0, 29)) expect(d.enc).toBe(rows.get(d.serial)!.enc);
    for (const d of body.devices.slice(29)) expect(d.enc).not.toBe(rows.get(d.serial)!.enc);
    expect(readFileSync(join(batchDir, 'devices', 'SP-000035.dev')).equals(lost)).toBe(false);
    // A stray row appended after the end is ignored once torn.
    appendFileSync(journal, 'SP-000001 00');
    expect((await provisionBatch(req)).alreadyComplete).toBe(true);
  });

  it('refuses a device file that does not belong to the batch', async () => {
    const keys = makeKeys();
    const out = tempDir('stray');
    const req = request(keys, out, 'SP-000001-SP-000004');
    mkdirSync(join(out, req.batch, 'devices'), { recursive: true });
    writeFileSync(join(out, req.batch, 'batch.json'), JSON.stringify({ format: 'sealpost-batch/1', batch: req.batch, created: '2026-11-27T00:00:00Z', board: 'puckjs', frame_size: 20, serials: 'SP-000001-SP-000004', ingest_key_id: keys.ingestId, factory_key_id: keys.factoryId }));
    writeFileSync(join(out, req.batch, 'devices', 'SP-000009.dev'), 'x');
    await expect(provisionBatch(req)).rejects.toThrow(/SP-000009.dev does not belong to batch/);
  });
});

describe('sealpost provision command line', () => {
  const keys = makeKeys();

  it('refuses wrong key files with a message naming the file to use', async () => {
    const out = tempDir('wrongkeys');
    const base = (ingest: string, factory: string) => ['provision', '--board', 'puckjs', '--serials', 'SP-000001-SP-000002', '--ingest-pub', ingest, '--factory-key', factory, '--out', out];
    const r1 = await sealpost(...base(keys.ingestPrivate, keys.factoryPrivate));
    expect(r1.code).toBe(1);
    expect(r1.err).toMatch(/--ingest-pub .* is the ingest PRIVATE key\. The factory must only ever hold the public half/);
    const r2 = await sealpost(...base(keys.ingestPublic, keys.factoryPublic));
    expect(r2.err).toMatch(/--factory-key .* holds a factory-public key, expected a factory-private key; pass the factory-<id>\.key file/);
    const r3 = await sealpost(...base(keys.factoryPublic, keys.factoryPrivate));
    expect(r3.err).toMatch(/--ingest-pub .* holds a factory-public key, expected a ingest-public key/);
    const r4 = await sealpost(...base(keys.ingestPublic, join(out, 'nope.key')));
    expect(r4.err).toMatch(/--factory-key .*nope\.key: no such file; pass the factory-<id>\.key file/);
    const edited = join(out, 'edited.pub');
    writeFileSync(edited, readFileSync(keys.ingestPublic, 'utf8').replace(/"public_key": "(..)/, '"public_key": "00'));
    const r5 = await sealpost(...base(edited, keys.factoryPrivate));
    expect(r5.err).toMatch(/its key's id is ik-[0-9a-f]{16}: the file was edited or damaged/);
    expect(existsSync(join(out, 'SP-000001-SP-000002'))).toBe(false);
    for (const r of [r1, r2, r3, r4, r5]) expect(r.code).toBe(1);
  });

  it('reports argument errors with exit code 2 and the usage', async () => {
    const r = await sealpost('provision', '--board', 'toaster', '--serials', 'SP-1-SP-2');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--board "toaster" is not a board: use one of puckjs');
    expect(r.err).toContain('usage: sealpost provision --board BOARD');
    expect((await sealpost(...provisionArgs(keys, tempDir('x'), 'SP-2-SP-1'))).err).toMatch(/comes after/);
    expect((await sealpost('provision', '--colour', 'red')).err).toMatch(/unknown option --colour/);
    expect((await sealpost('keys')).code).toBe(2);
  });

  it('keys init writes four files, private ones 0600, and refuses a directory that has keys', async () => {
    const dir = tempDir('keysinit');
    const r = await sealpost('keys', 'init', '--dir', dir);
    expect(r.code).toBe(0);
    const ids = /ingest key {3}(ik-[0-9a-f]{16})[\s\S]*factory key {2}(fk-[0-9a-f]{16})/.exec(r.out)!;
    expect(statSync(join(dir, `ingest-${ids[1]}.key`)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, `factory-${ids[2]}.key`)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, `ingest-${ids[1]}.pub`)).isFile()).toBe(true);
    expect(r.out).toMatch(/to the ingest server ONLY/);
    const again = await sealpost('keys', 'init', '--dir', dir);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already holds key files .*nothing was written/);
  });
});
