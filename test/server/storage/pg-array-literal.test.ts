// ingest_write's array parameters (server/storage/postgres-ingest.ts, arrayLiteral): PostgreSQL reads each literal as the same array pg's own encoding gives, awkward strings included.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrayLiteral } from '../../../server/storage/postgres-ingest.js';

let client: pg.Client;
beforeAll(async () => {
  const url = process.env.SEALPOST_TEST_PG_URL;
  if (!url) throw new Error('SEALPOST_TEST_PG_URL is not set (vitest.config.ts sets a default)');
  client = new pg.Client({ connectionString: url });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
});

/** The array as PostgreSQL reads it from our literal and from pg's encoding of the same values, as text. */
async function both(type: string, values: unknown[]): Promise<[unknown, unknown]> {
  const ours = arrayLiteral(values, new Map());
  const r = await client.query(`SELECT $1::${type}[]::text AS ours, $2::${type}[]::text AS pgs`, [ours, values]);
  return [r.rows[0].ours, r.rows[0].pgs];
}

describe('arrayLiteral', () => {
  it('gives PostgreSQL the same text arrays as pg, with quotes, backslashes, delimiters, NULL as a word, empty and repeated strings', async () => {
    const values = ['SP-000001', 'SP-000001', '{"type":"sample","readings":[{"value":21.5}]}', 'a\\b', 'say "hi"', 'NULL', '', ' lead', 'x,y', '{}', 'ünï', null, 'SP-000001'];
    const [ours, pgs] = await both('text', values);
    expect(ours).toBe(pgs);
    const r = await client.query('SELECT $1::text[] AS a', [arrayLiteral(values, new Map())]);
    expect(r.rows[0].a).toEqual(values);
  });

  it('gives the same numbers, nulls and booleans', async () => {
    for (const [type, values] of [
      ['bigint', [0, 1, -5, 9_007_199_254_740_991, 1_765_000_000_000, null]],
      ['float8', [21.5, -0.25, 0.1 + 0.2, 1e21, 3.3e-7, null]],
      ['smallint', [0, 1, 255, -1]],
      ['boolean', [true, false, null]],
    ] as [string, unknown[]][]) {
      const [ours, pgs] = await both(type, values);
      expect(ours, type).toBe(pgs);
    }
  });

  it('refuses an element it cannot write', () => {
    expect(() => arrayLiteral([{ a: 1 }], new Map())).toThrow(/text, numbers and booleans/);
  });
});
