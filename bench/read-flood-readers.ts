// The read-flood benchmark's readers (bench/read-flood.ts), in a thread of
// their own at nice 10: `readers` clients at once, each reading every
// reading of one device (pages following next_cursor, one CSV, or one
// limit=N request) and checking each comes once, in order.
import { Agent, request } from 'node:http';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

export interface ReadersData {
  port: number;
  serial: string;
  headers: Record<string, string>;
  mode: 'pages' | 'csv' | 'single';
  readers: number;
  readings: number;
  limit: number;
}

function get(agent: Agent, port: number, path: string, headers: Record<string, string>, onData?: (c: Buffer) => void): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => (onData ? onData(c) : chunks.push(c)));
      res.on('end', () => (res.complete ? resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }) : reject(new Error(`${path}: response cut short`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** One reader: every reading of `serial`, checked to come once and in order. Returns the number of requests. */
async function readAll({ port, serial, headers, mode: MODE, readings: READINGS, limit: LIMIT }: ReadersData): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const base = `/v1/devices/${serial}/readings`;
  let seen = 0;
  let lastCounter = 0;
  const check = (counter: number) => {
    if (counter <= lastCounter) throw new Error(`reading ${counter} after ${lastCounter}`);
    lastCounter = counter;
    seen++;
  };
  let requests = 0;
  try {
    if (MODE === 'csv') {
      let rest = '';
      let header = true;
      await get(agent, port, `${base}?format=csv`, headers, (c) => {
        const lines = (rest + c.toString()).split('\n');
        rest = lines.pop()!;
        for (const line of lines) {
          if (header) header = false;
          else check(Number(line.split(',')[1]));
        }
      });
      requests = 1;
    } else if (MODE === 'single') {
      const r = await get(agent, port, `${base}?limit=${READINGS}`, headers);
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
      for (const x of JSON.parse(r.text).readings) check(x.counter);
      requests = 1;
    } else {
      let cursor: string | null = null;
      do {
        const r = await get(agent, port, `${base}?limit=${LIMIT}${cursor ? `&cursor=${cursor}` : ''}`, headers);
        if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
        const page = JSON.parse(r.text) as { readings: { counter: number }[]; next_cursor: string | null };
        for (const x of page.readings) check(x.counter);
        cursor = page.next_cursor;
        requests++;
      } while (cursor !== null);
    }
  } finally {
    agent.destroy();
  }
  if (seen !== READINGS) throw new Error(`a reader got ${seen} readings, expected ${READINGS}`);
  return requests;
}

const data = workerData as ReadersData;
// Linux keeps nice values per thread (setpriority(2)): this lowers only this thread.
if (process.platform === 'linux') setPriority(10);
Promise.all(Array.from({ length: data.readers }, () => readAll(data))).then(
  (counts) => parentPort!.postMessage({ requests: counts.reduce((a, b) => a + b, 0) }),
  (e: Error) => parentPort!.postMessage({ error: e.message }),
);
