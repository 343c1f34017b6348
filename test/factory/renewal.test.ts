// Key renewal at the factory (issue #17 item 1): `keys init` writes the renewal key pair and fleet id,
// `keys renew` the next ingest key and its ANNOUNCE, `provision --renewal-pub` device file format 2,
// `info` says whether a device can renew; file modes, and every refusal says what to do.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDeviceFile, fromHex, keyFilePublicKey, setupBaseR, toHex, verifyAnnounce, verifyManifest } from '../../protocol/index.js';
import { loadKeyFile } from '../../factory/keyfiles.js';
import { sealpost } from '../helpers/cli.js';
import { makeKeys, provisionArgs, removeTempDirs, tempDir } from '../fixtures/factory/setup.js';

afterAll(removeTempDirs);

const mode = (path: string) => statSync(path).mode & 0o777;
const utf8Bytes = (s: string) => new TextEncoder().encode(s);

describe('keys init', () => {
  it('writes the renewal key pair beside the others: rk- id, 0600/0644, the fleet id in both halves', async () => {
    const dir = join(tempDir('r-init'), 'keys');
    const r = await sealpost('keys', 'init', '--dir', dir);
    expect(r.code).toBe(0);
    const names = readdirSync(dir).sort();
    expect(names.map((n) => n.replace(/-(ik|fk|rk)-[0-9a-f]{16}\./, '-$1-ID.'))).toEqual(['factory-fk-ID.key', 'factory-fk-ID.pub', 'ingest-ik-ID.key', 'ingest-ik-ID.pub', 'renewal-rk-ID.key', 'renewal-rk-ID.pub']);
    for (const n of names) expect(mode(join(dir, n))).toBe(n.endsWith('.key') ? 0o600 : 0o644);
    const priv = loadKeyFile(join(dir, names[4]!), 'renewal-private', 'test');
    const pub = loadKeyFile(join(dir, names[5]!), 'renewal-public', 'test');
    expect(toHex(keyFilePublicKey(priv))).toBe(toHex(pub.key));
    expect(toHex(priv.fleetId!)).toBe(toHex(pub.fleetId!));
    expect(r.out).toContain(`renewal key  ${pub.id}  (Ed25519: announces a new ingest key to fleet ${toHex(pub.fleetId!)})`);
    expect(r.out).toMatch(/renewal-rk-[0-9a-f]{16}\.key {2}mode 0600 -> OFFLINE/);
    expect(r.out).toContain('--renewal-pub');
    // Two key sets get two fleet ids (4 random bytes each).
    const other = makeKeys();
    expect(other.fleetId).not.toBe(toHex(pub.fleetId!));
  });
});

describe('keys renew', () => {
  it('makes epoch 1, then 2: a new ingest key pair and an ANNOUNCE that verifies under the renewal key', async () => {
    const keys = makeKeys();
    const dir = join(keys.renewalPrivate, '..');
    const first = await sealpost('keys', 'renew', '--keys', dir);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out.split('\n')[0]).toMatch(new RegExp(`^epoch 1 of fleet ${keys.fleetId}: new ingest key ik-[0-9a-f]{16}, announced with renewal key ${keys.renewalId}$`));
    const second = await sealpost('keys', 'renew', '--keys', dir);
    expect(second.out.split('\n')[0]).toMatch(/^epoch 2 of fleet/);

    const check = { renewalPublicKey: keys.renewalPub.key, fleetId: keys.renewalPub.fleetId!, currentEpoch: 0 };
    const ingestIds = new Set<string>();
    for (const epoch of [1, 2]) {
      const path = join(dir, `announce-0000000${epoch}.bin`);
      expect(mode(path)).toBe(0o644);
      const a = verifyAnnounce(new Uint8Array(readFileSync(path)), check);
      expect(a.epoch).toBe(epoch);
      const id = (epoch === 1 ? first : second).out.match(/new ingest key (ik-[0-9a-f]{16})/)![1]!;
      ingestIds.add(id);
      const priv = loadKeyFile(join(dir, `ingest-${id}.key`), 'ingest-private', 'test');
      expect(mode(join(dir, `ingest-${id}.key`))).toBe(0o600);
      expect(toHex(keyFilePublicKey(priv))).toBe(toHex(a.ingestPublicKey));
      expect(toHex(loadKeyFile(join(dir, `ingest-${id}.pub`), 'ingest-public', 'test').key)).toBe(toHex(a.ingestPublicKey));
    }
    expect(ingestIds.size).toBe(2);
    expect(ingestIds.has(keys.ingestId)).toBe(false);
  });

  it('refuses without the renewal private key, and with a foreign or damaged ANNOUNCE in the set, writing nothing', async () => {
    const keys = makeKeys();
    const dir = join(keys.renewalPrivate, '..');
    const offline = join(tempDir('r-offline'), 'renewal.key');
    renameSync(keys.renewalPrivate, offline);
    const none = await sealpost('keys', 'renew', '--keys', dir);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/holds no renewal private key \(renewal-<id>\.key\); pass the --keys directory made by sealpost keys init, with the renewal \.key file brought back from its offline store/);
    renameSync(offline, keys.renewalPrivate);

    const foreign = makeKeys();
    expect((await sealpost('keys', 'renew', '--keys', join(foreign.renewalPrivate, '..'))).code).toBe(0);
    writeFileSync(join(dir, 'announce-00000001.bin'), readFileSync(join(foreign.renewalPrivate, '..', 'announce-00000001.bin')));
    const before = readdirSync(dir).sort();
    const r = await sealpost('keys', 'renew', '--keys', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/announce-00000001\.bin: announce signature does not verify with the renewal key: .*; nothing was written\. Move that file out of/);
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('usage errors name what was wrong', async () => {
    const keys = makeKeys();
    const dir = join(keys.renewalPrivate, '..');
    const cases: [string[], string][] = [
      [['renew'], 'sealpost keys: --keys is required'],
      [['renew', '--dir', dir], 'sealpost keys: keys renew takes --keys DIR (the key set directory), not --dir'],
      [['init', '--keys', dir], 'sealpost keys: keys init takes --dir DIR, not --keys'],
      [['rotate', '--keys', dir], 'sealpost keys: unknown action "rotate": use "init" or "renew"'],
      [[], 'sealpost keys: which action? "init" or "renew"'],
    ];
    for (const [args, message] of cases) {
      const r = await sealpost('keys', ...args);
      expect(r.code).toBe(2);
      expect(r.err.split('\n')[0]).toBe(message);
    }
    const missing = await sealpost('keys', 'renew', '--keys', join(dir, 'nope'));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/--keys .*nope is not a readable directory; pass the directory made by sealpost keys init/);
  });
});

describe('provision and info', () => {
  it('--renewal-pub: device file format 2 with the chain_0 the server derives, the fleet id in manifest and batch.json', async () => {
    const keys = makeKeys();
    const out = tempDir('r-out');
    const r = await sealpost(...provisionArgs(keys, out, 'SP-000001-SP-000020'));
    expect(r.code).toBe(0);
    expect(r.out).toContain(`format      2: the devices can renew (fleet ${keys.fleetId}, renewal key ${keys.renewalId})`);
    const batch = join(out, 'SP-000001-SP-000020');
    const { body } = verifyManifest(readFileSync(join(batch, 'manifest.json'), 'utf8'), [keys.factoryPub]);
    expect(body.fleet_id).toBe(keys.fleetId);
    expect(JSON.parse(readFileSync(join(batch, 'batch.json'), 'utf8'))).toMatchObject({ renewal_key_id: keys.renewalId, fleet_id: keys.fleetId });
    for (const row of body.devices) {
      const path = join(batch, 'devices', `${row.serial}.dev`);
      expect(mode(path)).toBe(0o600);
      const d = decodeDeviceFile(new Uint8Array(readFileSync(path)));
      expect(toHex(d.renewal!.fleetId)).toBe(keys.fleetId);
      expect(toHex(d.renewal!.renewalPublicKey)).toBe(toHex(keys.renewalPub.key));
      const server = setupBaseR(fromHex('enc', row.enc), keys.ingestPriv.key, utf8Bytes(`sealpost/v1 device ${row.serial}`));
      expect(toHex(server.export(utf8Bytes('sealpost/v1 chain'), 32))).toBe(toHex(d.renewal!.chain));
      expect(toHex(server.export(utf8Bytes('sealpost/v1 seal key'), 16))).toBe(toHex(d.sealKey));
    }
    const info = await sealpost('info', join(batch, 'devices', 'SP-000007.dev'));
    expect(info.code).toBe(0);
    expect(info.out).toContain('  format     2');
    expect(info.out).toContain(`  renewal    can renew: fleet ${keys.fleetId}, renewal key ${keys.renewalId}, from epoch 0`);

    // The same batch resumed without --renewal-pub would mix formats: refused, naming the option.
    const again = await sealpost(...provisionArgs({ ingestPublic: keys.ingestPublic, factoryPrivate: keys.factoryPrivate }, out, 'SP-000001-SP-000020'));
    expect(again.code).toBe(1);
    expect(again.err).toContain(`was started with renewal_key_id ${keys.renewalId}, but this command gives none (--renewal-pub)`);
  });

  it('without --renewal-pub: format 1, and info says such a device cannot renew', async () => {
    const keys = makeKeys();
    const out = tempDir('r-out1');
    const r = await sealpost(...provisionArgs({ ingestPublic: keys.ingestPublic, factoryPrivate: keys.factoryPrivate }, out, 'SQ-1-SQ-3'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('format      1: no --renewal-pub, so these devices can never renew');
    const batch = join(out, 'SQ-1-SQ-3');
    expect(verifyManifest(readFileSync(join(batch, 'manifest.json'), 'utf8'), [keys.factoryPub]).body.fleet_id).toBeUndefined();
    const info = await sealpost('info', join(batch, 'devices', 'SQ-2.dev'));
    expect(info.out).toContain('  format     1');
    expect(info.out).toContain('  renewal    cannot renew: a format-1 file has no renewal key or chain secret');
  });

  it('a 32-character serial fits the journal in both formats: a second run finds the batch complete', async () => {
    const keys = makeKeys();
    const serials = `${'L'.repeat(26)}000001-${'L'.repeat(26)}000002`;
    for (const [name, paths] of [['f1', { ingestPublic: keys.ingestPublic, factoryPrivate: keys.factoryPrivate }], ['f2', keys]] as const) {
      const out = tempDir(`r-long-${name}`);
      const args = provisionArgs(paths, out, serials, 'puckjs', ['--batch', 'long']);
      expect((await sealpost(...args)).code).toBe(0);
      const again = await sealpost(...args);
      expect(again.err).toBe('');
      expect(again.out).toContain(`batch long was already complete: 2 devices, manifest checked; no serial issued`);
    }
  });

  it('refuses the renewal PRIVATE key as --renewal-pub, and a factory key', async () => {
    const keys = makeKeys();
    const out = tempDir('r-out2');
    const priv = await sealpost(...provisionArgs({ ...keys, renewalPublic: keys.renewalPrivate }, out, 'SR-1-SR-2'));
    expect(priv.code).toBe(1);
    expect(priv.err).toContain('is the renewal PRIVATE key. The factory needs only the public half: pass renewal-<id>.pub, and keep the .key file offline');
    const factory = await sealpost(...provisionArgs({ ...keys, renewalPublic: keys.factoryPublic }, out, 'SR-1-SR-2'));
    expect(factory.err).toContain('holds a factory-public key, expected a renewal-public key; pass the renewal-<id>.pub file from `sealpost keys init`');
    expect(existsSync(join(out, 'SR-1-SR-2', 'manifest.json'))).toBe(false);
  });

  it('info reads an ANNOUNCE, and checks its signature when given the renewal public key', async () => {
    const keys = makeKeys();
    const dir = join(keys.renewalPrivate, '..');
    await sealpost('keys', 'renew', '--keys', dir);
    const path = join(dir, 'announce-00000001.bin');
    const plain = await sealpost('info', path);
    expect(plain.out).toContain(`  fleet      ${keys.fleetId}`);
    expect(plain.out).toContain('  epoch      1');
    expect(plain.out).toContain('signature  not checked (pass --renewal-pub');
    const checked = await sealpost('info', path, '--renewal-pub', keys.renewalPublic);
    expect(checked.out).toContain(`  signature  verifies with renewal key ${keys.renewalId}`);
    const other = makeKeys();
    const wrong = await sealpost('info', path, '--renewal-pub', other.renewalPublic);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('signature does not verify with the renewal key');
    const junk = join(tempDir('r-junk'), 'x.dev');
    writeFileSync(junk, 'hello');
    const bad = await sealpost('info', junk);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('is neither a sealpost device file nor an ANNOUNCE');
    expect((await sealpost('info', join(dir, 'nope.dev'))).err).toContain('nope.dev: no such file');
  });
});
