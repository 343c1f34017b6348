// Pure parts of the server: counter ranges, the LRU, token buckets, query
// times, schema error messages, the wrapped device key blob.
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mergeRanges, rangesOf, subtractRanges } from '../../server/ranges.js';
import { Lru } from '../../server/lru.js';
import { TokenBuckets } from '../../server/edge/rate-limit.js';
import { parseQueryTime } from '../../server/reads/api.js';
import { describeDb } from '../../server/storage/index.js';
import { AUDITS_PER_SECOND, KEYS_NONE, KEYS_UNVERIFIED, KEYS_VERIFIED, Keyring, REASON_UNWRAP, WRAPPED_LENGTH, emptyRowKeys, keystreamUnwrap, registryKek, rowKeysOf, unwrapDeviceKeys, wrapDeviceKeys } from '../../server/keys.js';
import { newIngestKey } from '../../protocol/index.js';

describe('wrapped device keys', () => {
  it('lay out the blob and its additional data as docs/server.md, "Wrapped device keys", says', () => {
    for (const serial of ['SP-000001', 'a', 'Z'.repeat(32)]) {
      const kek = randomBytes(32);
      const nonce = new Uint8Array(randomBytes(12));
      const row = { serial, ingestKeyId: 'ik-0123456789abcdef', enc: new Uint8Array(randomBytes(32)) };
      const keys = { sealKey: new Uint8Array(randomBytes(16)), nonceSalt: new Uint8Array(randomBytes(8)) };
      // Built from the document alone: ad = label || 0x00 || 0x01 || len(serial) || serial || len(key id) || key id || enc.
      const ad = Buffer.concat([Buffer.from('sealpost/v1 wrapped device keys'), Buffer.from([0, 1, serial.length]), Buffer.from(serial), Buffer.from([19]), Buffer.from(row.ingestKeyId), row.enc]);
      const gcm = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: 16 });
      gcm.setAAD(ad);
      const sealed = Buffer.concat([gcm.update(Buffer.concat([keys.sealKey, keys.nonceSalt])), gcm.final()]);
      const expected = Buffer.concat([Buffer.from([1]), nonce, sealed, gcm.getAuthTag()]);
      const blob = wrapDeviceKeys(kek, row, keys, () => nonce);
      expect(blob.length).toBe(WRAPPED_LENGTH);
      expect(Buffer.from(blob).toString('hex')).toBe(expected.toString('hex'));
      expect(unwrapDeviceKeys(kek, row, expected)).toEqual(keys);
    }
  });
});

describe('unwrapping a request\'s rows together', () => {
  const ingest = newIngestKey().privateFile;
  const kek = registryKek(ingest.key, ingest.id);
  const rowOf = (i: number) => {
    const row = { serial: `SP-${String(i).padStart(6, '0')}`, ingestKeyId: ingest.id, enc: new Uint8Array(randomBytes(32)) };
    const keys = { sealKey: new Uint8Array(randomBytes(16)), nonceSalt: new Uint8Array(randomBytes(8)) };
    return { row: { ...row, keysWrapped: wrapDeviceKeys(kek, row, keys) }, keys };
  };

  it('gives every row the keys its tag-checked unwrap gives, from one AES call, and nothing for a malformed blob', () => {
    const rows = Array.from({ length: 100 }, (_, i) => rowOf(i));
    const ecb = createCipheriv('aes-256-ecb', kek, null).setAutoPadding(false);
    const blobs: (Uint8Array | null)[] = rows.map((r) => r.row.keysWrapped);
    blobs[7] = blobs[7]!.subarray(1);
    blobs[9] = null;
    // Rows 0..99 but 9 (NULL: derived elsewhere), in a scrambled order: each row's keys land in its own place.
    const picked = rows.map((_, i) => i).filter((i) => i !== 9).reverse();
    const got = emptyRowKeys(rows.length);
    keystreamUnwrap(ecb, blobs, picked, got);
    rows.forEach((r, i) => {
      if (i === 9) return expect(got.state[i]).toBe(KEYS_NONE);
      if (i === 7) {
        expect(got.state[i]).toBe(KEYS_NONE);
        return expect(got.problems.get(i)).toBe(REASON_UNWRAP);
      }
      expect(got.state[i]).toBe(KEYS_UNVERIFIED);
      const k = rowKeysOf(got, i);
      expect({ sealKey: new Uint8Array(k.sealKey), nonceSalt: new Uint8Array(k.nonceSalt) }).toEqual(unwrapDeviceKeys(kek, r.row, r.row.keysWrapped));
    });
  });

  it('trusts such keys only after confirm checks the tag, and audits failing rows within a budget per second', () => {
    let now = 1_000_000;
    const keyring = new Keyring([ingest], 1000, () => now);
    const good = rowOf(1);
    const moved = { row: { ...rowOf(2).row, keysWrapped: good.row.keysWrapped }, keys: good.keys };
    const got = keyring.keysFor([good.row, moved.row]);
    expect([...got.state]).toEqual([KEYS_UNVERIFIED, KEYS_UNVERIFIED]);
    // The moved blob still decrypts (CTR), to the donor's keys: only the tag, bound to the row, tells.
    expect(new Uint8Array(rowKeysOf(got, 1).sealKey)).toEqual(good.keys.sealKey);
    expect(keyring.confirm(moved.row, rowKeysOf(got, 1))).toBe(false);
    expect(keyring.cached(moved.row.serial)).toBe(false);
    expect(keyring.confirm(good.row, rowKeysOf(got, 0))).toBe(true);
    const again = keyring.keysFor([good.row]);
    expect(again.state[0]).toBe(KEYS_VERIFIED);
    expect({ sealKey: new Uint8Array(rowKeysOf(again, 0).sealKey), nonceSalt: new Uint8Array(rowKeysOf(again, 0).nonceSalt) }).toEqual(good.keys);

    let found = 0;
    for (let i = 0; i < 3 * AUDITS_PER_SECOND; i++) if (keyring.auditFails(moved.row, got, 1)) found++;
    expect(found).toBe(AUDITS_PER_SECOND);
    now += 999;
    expect(keyring.auditFails(moved.row, got, 1)).toBe(false);
    now += 1;
    expect(keyring.auditFails(moved.row, got, 1)).toBe(true);
    // A row that holds is audited as holding.
    expect(keyring.auditFails(good.row, got, 0)).toBe(false);

    const short = { ...rowOf(3).row };
    short.keysWrapped = short.keysWrapped.subarray(0, 10);
    const bad = keyring.keysFor([short]);
    expect(bad.state[0]).toBe(KEYS_NONE);
    expect(bad.problems.get(0)).toBe(REASON_UNWRAP);
  });
});

describe('counter ranges', () => {
  it('finds islands, merges and subtracts', () => {
    expect(rangesOf([1, 2, 3, 5, 7, 8])).toEqual([
      { first: 1, last: 3 },
      { first: 5, last: 5 },
      { first: 7, last: 8 },
    ]);
    expect(rangesOf([])).toEqual([]);
    expect(mergeRanges([{ first: 5, last: 9 }, { first: 1, last: 2 }, { first: 3, last: 4 }, { first: 8, last: 12 }])).toEqual([{ first: 1, last: 12 }]);
    expect(subtractRanges(1, 10, [])).toEqual([{ first: 1, last: 10 }]);
    expect(subtractRanges(1, 10, [{ first: 3, last: 4 }, { first: 9, last: 20 }])).toEqual([
      { first: 1, last: 2 },
      { first: 5, last: 8 },
    ]);
    expect(subtractRanges(5, 6, [{ first: 1, last: 10 }])).toEqual([]);
    expect(subtractRanges(4294967290, 4294967295, [{ first: 4294967291, last: 4294967294 }])).toEqual([
      { first: 4294967290, last: 4294967290 },
      { first: 4294967295, last: 4294967295 },
    ]);
  });
});

describe('LRU', () => {
  it('evicts the least recently used entry', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1);
    lru.set('c', 3);
    expect(lru.has('b')).toBe(false);
    expect(lru.has('a') && lru.has('c')).toBe(true);
    expect(() => new Lru(0)).toThrow('LRU capacity must be a positive integer, got 0');
  });
});

describe('token buckets', () => {
  it('allows bursts, refills at the rate and says how long to wait', () => {
    let now = 0;
    const b = new TokenBuckets({ perSecond: 10, burst: 20 }, 100, () => now);
    expect(b.take('r', 20)).toBe(0);
    expect(b.take('r', 5)).toBeCloseTo(0.5);
    expect(b.take('other', 1)).toBe(0);
    now = 500;
    expect(b.take('r', 5)).toBe(0);
    expect(b.take('r', 100)).toBeCloseTo(2);
  });
});

describe('query times', () => {
  it('accepts ms and ISO 8601 with a zone, refuses the rest', () => {
    expect(parseQueryTime('1795773600000', 'from')).toBe(1795773600000);
    expect(parseQueryTime('2026-11-27', 'from')).toBe(Date.UTC(2026, 10, 27));
    expect(parseQueryTime('2026-11-27T10:00:00Z', 'from')).toBe(Date.UTC(2026, 10, 27, 10));
    expect(parseQueryTime('2026-11-27T11:00:00.5+01:00', 'to')).toBe(Date.UTC(2026, 10, 27, 10, 0, 0, 500));
    for (const bad of ['2026-11-27T10:00:00', 'yesterday', '-1', '1e12', '2026-13-45', '99999999999999999']) {
      expect(() => parseQueryTime(bad, 'from'), bad).toThrow(/querystring\/from must be/);
    }
  });

  it('never shows a database password', () => {
    expect(describeDb('postgres://u:secret@db:5432/sp?schema=a')).toBe('postgres://u:***@db:5432/sp?schema=a');
    expect(describeDb('sqlite:/var/lib/sp.db')).toBe('/var/lib/sp.db');
  });
});
