// relay/uploader.ts: fetchUploader against a stand-in fetch.
import { describe, expect, it } from 'vitest';
import { fetchUploader } from '../../relay/index.js';

describe('relay: fetch uploader', () => {
  it('POSTs JSON to /v1/uplink and refuses to read an oversized answer', async () => {
    const seen: { url: string; body: string }[] = [];
    const fake = (async (url: string, init: RequestInit) => {
      seen.push({ url, body: String(init.body) });
      return new Response(url.includes('big') ? 'x'.repeat(2000) : '{"devices":[]}', { status: 200 });
    }) as unknown as typeof fetch;
    const up = fetchUploader('http://relay.test/', { fetch: fake, maxResponseBytes: 1000 });
    const r = await up({ relay: { id: 'r', time: 1 }, devices: [] });
    expect(seen[0]!.url).toBe('http://relay.test/v1/uplink');
    expect(JSON.parse(seen[0]!.body)).toEqual({ relay: { id: 'r', time: 1 }, devices: [] });
    expect(await r.json()).toEqual({ devices: [] });
    const big = await fetchUploader('http://big.test', { fetch: fake, maxResponseBytes: 1000 })({ relay: { id: 'r', time: 1 }, devices: [] });
    expect(big.status).toBe(200);
    await expect(big.json()).rejects.toThrow(/larger than 1000/);
  });
});
