// What one retention batch costs (docs/server.md, "Retention").
//
//   npx tsx bench/retention.ts [--backend sqlite|postgres|both] [--devices 2000]
//       [--readings 200] [--batch-rows 200] [--batch-devices 50] [--pg URL]
//
// Fills a fresh database through the storage API with `devices` registered
// devices holding `readings` old readings each (with time indexes as ingest
// writes them), then runs one retention pass with the given batch settings
// and no pause, timing every batch. On SQLite a batch is a synchronous
// statement on the server's event loop, so its duration is the longest an
// upload can wait behind it; on PostgreSQL it runs on the database and an
// upload waits only for a row the batch holds. Prints the median, p99 and
// longest batch and the deletion rate a node sustains without pauses.
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { openStorage, type NewReading, type Storage } from '../server/index.js';
import { Retention } from '../server/retention.js';
import type { PruneRequest } from '../server/storage/types.js';
import { DEFAULT_PG, benchDb, pct } from './harness.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'both' },
    devices: { type: 'string', default: '2000' },
    readings: { type: 'string', default: '200' },
    'batch-rows': { type: 'string', default: '200' },
    'batch-devices': { type: 'string', default: '50' },
    pg: { type: 'string', default: DEFAULT_PG },
  },
  strict: true,
});
const DEVICES = Number(values.devices);
const READINGS = Number(values.readings);
const DAY = 86_400_000;

async function fill(storage: Storage, now: number): Promise<void> {
  const serials = Array.from({ length: DEVICES }, (_, i) => `SP-R${String(i).padStart(6, '0')}`);
  await storage.transaction(async (tx) => {
    await tx.insertBatch({ batch: 'R-1', factoryKeyId: 'fk-0', ingestKeyId: 'ik-0', board: 'puckjs', frameSize: 20, created: '2026-01-01T00:00:00Z', manifestSha256: '0'.repeat(64), devices: DEVICES, importedAt: now });
    await tx.insertDevices(serials.map((serial) => ({ serial, enc: randomBytes(32), ingestKeyId: 'ik-0', board: 'puckjs', frameSize: 20, batch: 'R-1', registeredAt: now })));
  });
  // Half the readings older than the 30 days kept, half newer, one a minute as a device at one frame a minute makes them.
  for (let i = 0; i < serials.length; i += 50) {
    const rows: NewReading[] = [];
    for (const serial of serials.slice(i, i + 50)) {
      for (let c = 1; c <= READINGS; c++) {
        const time = now - 60 * DAY + Math.floor((c / READINGS) * 60 * DAY);
        rows.push({ serial, counter: c, idx: 0, channel: 1, name: 'temperature', unit: 'C', value: 20, boot8: 1, uptime24: c * 60, bound: time, boot: 1, uptime: c * 60, time, timeSource: 'relay' });
      }
    }
    await storage.transaction((tx) => tx.insertReadings(rows));
  }
}

async function run(backend: 'sqlite' | 'postgres'): Promise<void> {
  const bench = benchDb(backend, values.pg);
  const storage = await openStorage(bench.db, { readWorkers: 0 });
  try {
    const now = Date.now();
    await fill(storage, now);
    const times: number[] = [];
    const timed = new Proxy(storage, {
      get(target, key) {
        if (key !== 'pruneReadings') return Reflect.get(target, key);
        return async (q: PruneRequest) => {
          const t = performance.now();
          const r = await target.pruneReadings(q);
          times.push(performance.now() - t);
          return r;
        };
      },
    });
    const settings = { readingsDays: 30, batchRows: Number(values['batch-rows']), batchDevices: Number(values['batch-devices']), pauseMs: 0, everyS: 3600 };
    const report = await new Retention(timed, settings, () => now, { info: () => undefined, warn: () => undefined }).pass();
    console.log(
      `${backend.padEnd(8)} deleted ${report.deleted} of ${DEVICES * READINGS} readings in ${report.batches} batches (${settings.batchRows} rows, ${settings.batchDevices} devices):` +
        ` batch p50 ${pct(times, 0.5).toFixed(1)} ms, p99 ${pct(times, 0.99).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms;` +
        ` ${Math.round(report.deleted / (times.reduce((a, b) => a + b, 0) / 1000)).toLocaleString('en-US')} readings/s while deleting`,
    );
  } finally {
    await storage.close();
    await bench.drop();
  }
}

console.log(`sealpost retention bench: ${DEVICES} devices x ${READINGS} readings, half older than 30 days, ${cpus().length} CPUs, node ${process.version}`);
const backends = values.backend === 'both' ? (['sqlite', 'postgres'] as const) : [values.backend as 'sqlite' | 'postgres'];
for (const b of backends) await run(b);
