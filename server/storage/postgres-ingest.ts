// PostgreSQL's ingest write in two round trips (docs/server.md, "One round
// trip per write"; issue #14, item 4): one statement reads, without a lock,
// everything settling an in-order request needs (device rows with their
// version, which of its counters are stored, the newest anchors, boot
// starts); the shared ingest code (server/ingest/)
// then runs against that state through `ReadAheadTx`, which buffers every
// write; one call of the ingest_write function (migration 4) locks the rows,
// checks their versions and applies the writes as one transaction. Anything
// the read did not cover (a late frame, a gap to look up, samples waiting for
// an anchor, a window of anchors too short) throws `NotReadAhead`, and the request runs as before:
// BEGIN, row locks, statement by statement, COMMIT.
import type { Anchor, BootStart, DeviceRow, GapRow, IngestPlan, NewFrame, NewGap, NewReading, PendingSample, TimeSource, Tx } from './types.js';
import { deviceFromRow, type Row } from './rows.js';

/**
 * Anchors settling reads per device (server/ingest/time.ts, ANCHOR_WINDOW):
 * the read ahead fetches as many. Were that window ever larger, every
 * request would take the locked path (anchorsBefore checks), never a wrong one.
 */
const ANCHOR_WINDOW = 64;

/** The request needs state the read ahead did not fetch: run it under the row locks instead. */
export class NotReadAhead extends Error {
  constructor(what: string) {
    super(`not read ahead: ${what}`);
  }
}

/**
 * Per device: its row and version, plus for the plan's counters which are
 * stored (with their bytes; only counters from the lowest of them up to the
 * row's max_counter are looked up: nothing is stored above it, and
 * ingest_write refuses a frame that was), the newest anchors at or below the
 * plan's highest counter, and the starts of the boots those anchors and the
 * plan's anchors name. The stored-frames lookup is bounded below by the
 * plan's lowest counter so that its index range is the request's span, not
 * the device's whole history.
 */
export const READ_AHEAD = `
  SELECT d.*, d.xmin::text AS row_version, p.counters AS read_counters, p.below AS read_below, p.boots AS read_boots,
    (SELECT json_agg(json_build_array(f.counter, encode(f.frame, 'hex'))) FROM frames f
      WHERE f.serial = d.serial AND f.counter = ANY(p.counters) AND f.counter >= p.lo AND f.counter <= d.max_counter) AS stored,
    (SELECT json_agg(json_build_array(a.counter, a.boot, a.uptime, a.reason) ORDER BY a.counter DESC) FROM (
      SELECT counter, boot, uptime, reason FROM anchors WHERE serial = d.serial AND counter < p.below ORDER BY counter DESC LIMIT ${ANCHOR_WINDOW}) a) AS anchors,
    (SELECT json_agg(json_build_array(b.boot, b.start, b.time_source)) FROM boots b
      WHERE b.serial = d.serial AND (b.boot = ANY(p.boots) OR b.boot IN (
        SELECT boot FROM anchors WHERE serial = d.serial AND counter < p.below ORDER BY counter DESC LIMIT ${ANCHOR_WINDOW}))) AS boots
  FROM devices d
  LEFT JOIN json_to_recordset($2::json) AS p(serial text, counters bigint[], lo bigint, below bigint, boots int[]) ON p.serial = d.serial
  WHERE d.serial = ANY($1::text[])
  ORDER BY d.serial`;

/**
 * READ_AHEAD for a request naming one device, the usual upload: the same
 * columns, with the serial a plain parameter. In READ_AHEAD the per-frame
 * tables are reached through d.serial, a value of the outer row, so
 * PostgreSQL cannot prune their hash partitions before running and sets up
 * a scan of every partition (16 per subquery, 48 per request); with the
 * serial a parameter it keeps one. Measured by replaying a bench round's
 * statements on one connection (docs/server.md section 9): 26 to 29 ms of
 * database CPU per 1,000 frames for READ_AHEAD, 10 to 13 for this.
 */
export const READ_AHEAD_ONE = `
  SELECT d.*, d.xmin::text AS row_version, $2::bigint[] AS read_counters, $4::bigint AS read_below, $5::int[] AS read_boots,
    (SELECT json_agg(json_build_array(f.counter, encode(f.frame, 'hex'))) FROM frames f
      WHERE f.serial = $1 AND f.counter = ANY($2::bigint[]) AND f.counter >= $3 AND f.counter <= d.max_counter) AS stored,
    (SELECT json_agg(json_build_array(a.counter, a.boot, a.uptime, a.reason) ORDER BY a.counter DESC) FROM (
      SELECT counter, boot, uptime, reason FROM anchors WHERE serial = $1 AND counter < $4 ORDER BY counter DESC LIMIT ${ANCHOR_WINDOW}) a) AS anchors,
    (SELECT json_agg(json_build_array(b.boot, b.start, b.time_source)) FROM boots b
      WHERE b.serial = $1 AND (b.boot = ANY($5::int[]) OR b.boot IN (
        SELECT boot FROM anchors WHERE serial = $1 AND counter < $4 ORDER BY counter DESC LIMIT ${ANCHOR_WINDOW}))) AS boots
  FROM devices d
  WHERE d.serial = $1::text`;

interface PlanDevice {
  serial: string;
  counters: number[];
  lo: number;
  below: number;
  boots: number[];
}

/** The plan's frames per device: counters, lowest, highest + 1, anchors' boots. */
function planDevices(plan: IngestPlan): Map<string, PlanDevice> {
  const per = new Map<string, PlanDevice>();
  for (const f of plan.frames) {
    let p = per.get(f.serial);
    if (!p) per.set(f.serial, (p = { serial: f.serial, counters: [], lo: f.counter, below: 0, boots: [] }));
    p.counters.push(f.counter);
    p.lo = Math.min(p.lo, f.counter);
    p.below = Math.max(p.below, f.counter + 1);
    if (f.anchorBoot !== undefined && !p.boots.includes(f.anchorBoot)) p.boots.push(f.anchorBoot);
  }
  return per;
}

/** The read ahead for a plan: READ_AHEAD_ONE when it names one device, else READ_AHEAD; a named statement each. */
export function readAheadQuery(plan: IngestPlan): { name: string; text: string; values: unknown[] } {
  const per = planDevices(plan);
  if (plan.serials.length === 1) {
    const serial = plan.serials[0]!;
    const p = per.get(serial);
    return { name: 'sealpost_read_ahead_one', text: READ_AHEAD_ONE, values: [serial, p?.counters ?? [], p?.lo ?? 0, p?.below ?? 0, p?.boots ?? []] };
  }
  return { name: 'sealpost_read_ahead', text: READ_AHEAD, values: [plan.serials, JSON.stringify([...per.values()])] };
}

/** One device as read ahead, and what this attempt wrote for it so far. */
interface DeviceState {
  row: DeviceRow;
  version: string;
  /** The plan's counters: stored ones map to their bytes, the others to null. */
  counters: Map<number, Uint8Array | null>;
  /** Counters this attempt inserts. */
  inserting: Set<number>;
  /** The newest anchors with counter < below, newest first; complete when fewer than the window. */
  anchors: Anchor[];
  below: number;
  /** Anchors this attempt inserts. */
  newAnchors: Anchor[];
  /** Boots whose start was read (a missing entry among them: no such boot stored). */
  bootsRead: Set<number>;
  boots: Map<number, BootStart>;
}

/** Every write of one attempt, in the order ingest_write applies them. */
class Writes {
  frames: NewFrame[] = [];
  anchors: (Anchor & { serial: string })[] = [];
  boots: { serial: string; boot: number; start: BootStart; anchorCounter: number; isNew: boolean }[] = [];
  retimes: { serial: string; boot: number; start: BootStart }[] = [];
  readings: NewReading[] = [];
  gaps: NewGap[] = [];
  devices = new Map<string, DeviceRow>();
  keysWrapped: { serial: string; keysWrapped: Uint8Array }[] = [];
}

const buf = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * The Tx the ingest code runs on for a read-ahead attempt: reads are answered
 * from the read-ahead state plus this attempt's own writes, or throw
 * NotReadAhead; writes are buffered for ingest_write.
 */
export class ReadAheadTx implements Tx {
  private readonly devices = new Map<string, DeviceState>();
  private readonly writes = new Writes();
  /** Rows handed out by lockDevices: ingest_write locks them and checks their versions. */
  private readonly locked = new Set<string>();

  constructor(rows: Row[]) {
    for (const r of rows) {
      const stored = (r.stored as [number, string][] | null) ?? [];
      const counters = new Map<number, Uint8Array | null>();
      for (const c of (r.read_counters as (string | number)[] | null) ?? []) counters.set(Number(c), null);
      for (const [c, hex] of stored) counters.set(Number(c), Buffer.from(hex, 'hex'));
      const anchors = ((r.anchors as [number, number, number, number][] | null) ?? []).map(([counter, boot, uptime, reason]) => ({
        counter: Number(counter),
        boot: Number(boot),
        uptime: Number(uptime),
        reason: Number(reason),
      }));
      const boots = new Map<number, BootStart>();
      for (const [boot, start, source] of (r.boots as [number, number, TimeSource][] | null) ?? []) boots.set(Number(boot), { start: Number(start), source });
      const bootsRead = new Set<number>([...((r.read_boots as number[] | null) ?? []).map(Number), ...anchors.map((a) => a.boot)]);
      this.devices.set(r.serial as string, {
        row: deviceFromRow(r),
        version: r.row_version as string,
        counters,
        inserting: new Set(),
        anchors,
        below: r.read_below === null || r.read_below === undefined ? 0 : Number(r.read_below),
        newAnchors: [],
        bootsRead,
        boots,
      });
    }
  }

  private state(serial: string, what: string): DeviceState {
    const s = this.devices.get(serial);
    if (!s) throw new NotReadAhead(`${what} of a device not read`);
    return s;
  }

  /** ingest_write's arguments (WRITE_PARAMS): the locked rows' versions, then every write. */
  args(): unknown[] {
    const lock = [...this.locked].sort();
    const at = { lock, versions: lock.map((s) => this.devices.get(s)!.version), w: this.writes, devices: [...this.writes.devices.values()] };
    const quoted = new Map<string, string>();
    return WRITE_PARAMS.map(([type, values]) => (type === 'bytea' ? values(at) : arrayLiteral(values(at), quoted)));
  }

  async lockDevices(serials: string[]): Promise<DeviceRow[]> {
    const rows: DeviceRow[] = [];
    for (const serial of [...serials].sort()) {
      const s = this.devices.get(serial);
      if (!s) continue; // not registered (the read ahead read every serial of the request)
      this.locked.add(serial);
      rows.push({ ...s.row });
    }
    return rows;
  }

  async insertFrames(frames: NewFrame[]): Promise<boolean[]> {
    return frames.map((f) => {
      const s = this.state(f.serial, 'frames');
      if (!s.counters.has(f.counter)) throw new NotReadAhead(`counter ${f.counter}`);
      if (s.counters.get(f.counter) !== null || s.inserting.has(f.counter)) return false;
      s.inserting.add(f.counter);
      this.writes.frames.push(f);
      return true;
    });
  }

  async frameBytes(serial: string, counters: number[]): Promise<Map<number, Uint8Array>> {
    const s = this.state(serial, 'frame bytes');
    const out = new Map<number, Uint8Array>();
    for (const c of counters) {
      if (!s.counters.has(c)) throw new NotReadAhead(`bytes of counter ${c}`);
      const bytes = s.counters.get(c);
      if (bytes) out.set(c, bytes);
      else if (s.inserting.has(c)) throw new NotReadAhead(`bytes of counter ${c} inserted by this request`);
    }
    return out;
  }

  async insertAnchors(serial: string, anchors: Anchor[]): Promise<void> {
    const s = this.state(serial, 'anchors');
    for (const a of anchors) {
      this.writes.anchors.push({ serial, ...a });
      s.newAnchors.push(a);
    }
  }

  async anchorsBefore(serial: string, below: number, limit: number): Promise<Anchor[]> {
    const s = this.state(serial, 'anchors');
    if (below > s.below || limit > ANCHOR_WINDOW) throw new NotReadAhead(`anchors below ${below}`);
    const read = s.anchors.filter((a) => a.counter < below);
    // The read holds the newest ANCHOR_WINDOW below s.below: all of them when it found fewer.
    if (read.length < limit && s.anchors.length >= ANCHOR_WINDOW) throw new NotReadAhead(`anchors below ${below}`);
    const known = new Set(read.map((a) => a.counter));
    const mine = s.newAnchors.filter((a) => a.counter < below && !known.has(a.counter));
    return [...read, ...mine].sort((a, b) => b.counter - a.counter).slice(0, limit);
  }

  async anchorFor(serial: string): Promise<Anchor | undefined> {
    throw new NotReadAhead(`an older anchor of ${serial}`);
  }

  /**
   * Samples stored without an anchor, above `above`: only a device that
   * stored counters above a fresh anchor can have any, and then that anchor
   * came late (the locked path). The row's hint says whether it did.
   */
  async pendingSamples(serial: string, _boot8: number, above: number): Promise<PendingSample[]> {
    const s = this.state(serial, 'pending samples');
    if (s.row.maxCounter > above) throw new NotReadAhead(`samples of ${serial} above ${above}`);
    return [];
  }

  async resolveSamples(serial: string): Promise<void> {
    throw new NotReadAhead(`samples of ${serial} to resolve`);
  }

  async bootStarts(serial: string, boots: number[]): Promise<Map<number, BootStart>> {
    const s = this.state(serial, 'boots');
    const out = new Map<number, BootStart>();
    for (const b of boots) {
      if (!s.bootsRead.has(b)) throw new NotReadAhead(`boot ${b} of ${serial}`);
      const start = s.boots.get(b);
      if (start) out.set(b, start);
    }
    return out;
  }

  async saveBoot(serial: string, boot: number, start: BootStart, anchorCounter: number, isNew: boolean): Promise<void> {
    const s = this.state(serial, 'boots');
    if (isNew === s.boots.has(boot)) throw new NotReadAhead(`boot ${boot} of ${serial} saved twice`);
    s.boots.set(boot, start);
    s.bootsRead.add(boot);
    this.writes.boots.push({ serial, boot, start, anchorCounter, isNew });
  }

  async retimeBoot(serial: string, boot: number, start: BootStart): Promise<void> {
    this.writes.retimes.push({ serial, boot, start });
  }

  async insertReadings(rows: NewReading[]): Promise<void> {
    this.writes.readings.push(...rows);
  }

  async storedRanges(serial: string, lo: number, hi: number): Promise<never> {
    throw new NotReadAhead(`stored counters ${lo}..${hi} of ${serial}`);
  }

  async gapsOverlapping(serial: string): Promise<GapRow[]> {
    throw new NotReadAhead(`gaps of ${serial}`);
  }

  async deleteGaps(ids: number[]): Promise<void> {
    throw new NotReadAhead(`gaps ${ids.join(', ')} to delete`);
  }

  async insertGaps(rows: NewGap[]): Promise<void> {
    this.writes.gaps.push(...rows);
  }

  async updateDevice(row: DeviceRow): Promise<void> {
    this.state(row.serial, 'device update');
    if (!this.locked.has(row.serial)) throw new NotReadAhead(`an update of ${row.serial}, not locked`);
    this.writes.devices.set(row.serial, { ...row });
  }

  async setKeysWrapped(rows: { serial: string; keysWrapped: Uint8Array }[]): Promise<void> {
    this.writes.keysWrapped.push(...rows);
  }

  // The registry's writes never run on a read-ahead attempt.
  batch(): never {
    throw new Error('registry write in an ingest transaction');
  }
  devicesBySerial(): never {
    throw new Error('registry write in an ingest transaction');
  }
  insertBatch(): never {
    throw new Error('registry write in an ingest transaction');
  }
  insertDevices(): never {
    throw new Error('registry write in an ingest transaction');
  }
  setStatus(): never {
    throw new Error('registry write in an ingest transaction');
  }
  unwrappedDevices(): never {
    throw new Error('registry write in an ingest transaction');
  }
}

/**
 * A PostgreSQL array literal of text, number or boolean elements, the text
 * pg's arrayString would send for the array (which pg then passes through as
 * a string). pg quotes every element with two regex replaces, numbers too,
 * and a request's serial, relay, reading names and units repeat in every
 * frame and reading: that was about a tenth of a node's busy time in a
 * profile (docs/server.md section 9). Numbers and booleans go unquoted
 * (PostgreSQL parses `{1,2}` as it parses `{"1","2"}`; their text holds no
 * delimiter, quote or backslash), and a string's quoted form is made once
 * per write call (`quoted`).
 */
export function arrayLiteral(values: readonly unknown[], quoted: Map<string, string>): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') out += String(v);
    else if (typeof v === 'string') {
      let q = quoted.get(v);
      if (q === undefined) {
        q = `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
        quoted.set(v, q);
      }
      out += q;
    } else throw new Error(`ingest_write takes text, numbers and booleans in its arrays, not ${typeof v}`);
  }
  return `${out}}`;
}

interface WriteArgs {
  lock: string[];
  versions: string[];
  w: Writes;
  devices: DeviceRow[];
}

/** ingest_write's parameters in order (migration 4): each an array of its column's type, and where its values come from. */
const WRITE_PARAMS: [string, (a: WriteArgs) => unknown[]][] = [
  ['text', (a) => a.lock],
  ['text', (a) => a.versions],
  ['text', (a) => a.w.frames.map((f) => f.serial)],
  ['bigint', (a) => a.w.frames.map((f) => f.counter)],
  ['bytea', (a) => a.w.frames.map((f) => buf(f.frame))],
  ['smallint', (a) => a.w.frames.map((f) => f.type)],
  ['text', (a) => a.w.frames.map((f) => f.content)],
  ['text', (a) => a.w.frames.map((f) => f.relay)],
  ['bigint', (a) => a.w.frames.map((f) => f.relayTime)],
  ['bigint', (a) => a.w.frames.map((f) => f.rx)],
  ['bigint', (a) => a.w.frames.map((f) => f.received)],
  ['text', (a) => a.w.anchors.map((x) => x.serial)],
  ['bigint', (a) => a.w.anchors.map((x) => x.counter)],
  ['int', (a) => a.w.anchors.map((x) => x.boot)],
  ['bigint', (a) => a.w.anchors.map((x) => x.uptime)],
  ['smallint', (a) => a.w.anchors.map((x) => x.reason)],
  ['text', (a) => a.w.boots.map((b) => b.serial)],
  ['int', (a) => a.w.boots.map((b) => b.boot)],
  ['bigint', (a) => a.w.boots.map((b) => b.start.start)],
  ['bigint', (a) => a.w.boots.map((b) => b.anchorCounter)],
  ['text', (a) => a.w.boots.map((b) => b.start.source)],
  ['boolean', (a) => a.w.boots.map((b) => b.isNew)],
  ['text', (a) => a.w.retimes.map((t) => t.serial)],
  ['int', (a) => a.w.retimes.map((t) => t.boot)],
  ['bigint', (a) => a.w.retimes.map((t) => t.start.start)],
  ['text', (a) => a.w.retimes.map((t) => t.start.source)],
  ['text', (a) => a.w.readings.map((x) => x.serial)],
  ['bigint', (a) => a.w.readings.map((x) => x.counter)],
  ['smallint', (a) => a.w.readings.map((x) => x.idx)],
  ['smallint', (a) => a.w.readings.map((x) => x.channel)],
  ['text', (a) => a.w.readings.map((x) => x.name)],
  ['text', (a) => a.w.readings.map((x) => x.unit)],
  ['float8', (a) => a.w.readings.map((x) => x.value)],
  ['smallint', (a) => a.w.readings.map((x) => x.boot8)],
  ['int', (a) => a.w.readings.map((x) => x.uptime24)],
  ['bigint', (a) => a.w.readings.map((x) => x.bound)],
  ['int', (a) => a.w.readings.map((x) => x.boot)],
  ['bigint', (a) => a.w.readings.map((x) => x.uptime)],
  ['bigint', (a) => a.w.readings.map((x) => x.time)],
  ['text', (a) => a.w.readings.map((x) => x.timeSource)],
  ['text', (a) => a.w.gaps.map((g) => g.serial)],
  ['bigint', (a) => a.w.gaps.map((g) => g.first)],
  ['bigint', (a) => a.w.gaps.map((g) => g.count)],
  ['text', (a) => a.w.gaps.map((g) => g.kind)],
  ['bigint', (a) => a.w.gaps.map((g) => g.detectedAt)],
  ['text', (a) => a.devices.map((d) => d.serial)],
  ['bigint', (a) => a.devices.map((d) => d.frames)],
  ['bigint', (a) => a.devices.map((d) => d.lastSeen)],
  ['bigint', (a) => a.devices.map((d) => d.settled)],
  ['bigint', (a) => a.devices.map((d) => d.maxCounter)],
  ['bigint', (a) => a.devices.map((d) => d.bootFloor)],
  ['bigint', (a) => a.devices.map((d) => d.gapHi)],
  ['float8', (a) => a.devices.map((d) => d.battery)],
  ['bigint', (a) => a.devices.map((d) => d.batteryCounter)],
  ['text', (a) => a.w.keysWrapped.map((k) => k.serial)],
  ['bytea', (a) => a.w.keysWrapped.map((k) => buf(k.keysWrapped))],
];

/** The call of ingest_write. */
export const INGEST_WRITE = `SELECT ingest_write(${WRITE_PARAMS.map(([type], i) => `$${i + 1}::${type}[]`).join(', ')}) AS ok`;
