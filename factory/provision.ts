// Batch provisioning (docs/factory.md). For every serial of a range: fresh
// device secrets (HPKE SetupBaseS, factory/sender.ts), the device secret file
// (protocol/device-file.ts) as OUT/<batch>/devices/<serial>.dev, mode 0600,
// and a journal row (factory/journal.ts) holding serial, enc, kcv and the
// device file itself; at the end kcv.json and the signed manifest.
//
// Resume (docs/factory.md, "Interruption and resume", has the argument):
//   - the journal is the write-ahead log: a group's rows are appended and
//     fdatasynced after its device files were written;
//   - a serial is issued once its row is durable. A device file whose row is
//     missing or torn was never issued: the serial is issued again with a new
//     key and the file overwritten. A device file that is missing or differs
//     from its durable row is restored from the row (same key);
//   - until manifest.json exists nothing outside the output tree may use the
//     batch (`sealpost flash` refuses a device file without its batch's
//     manifest and kcv.json), so issuing a serial again is invisible;
//   - the manifest is written last, atomically, from the durable journal: it
//     is the commit point, and a finished batch never changes (a damaged
//     device file is still restored from the journal, with the same key).
import { closeSync, existsSync, fchmodSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BoardProfile } from '../boards/index.js';
import { encodeDeviceFile, encodeManifest, equalBytes, keyFilePublicKey, signManifest, toHex, verifyManifest, type KeyFile, type ManifestBody } from '../protocol/index.js';
import { fsyncDir, lockTree, writeFileAtomic } from './fsutil.js';
import { encodeJournalRow, parseJournal, type JournalRow } from './journal.js';
import { startDeviceWriter, type DeviceFileWrite, type DeviceWriter } from './device-writer.js';
import { createSender, type Sender } from './sender.js';
import { formatRange, indexInRange, parseSerialRange, rangesOverlap, serialAt, type SerialRange } from './serials.js';

export const BATCH_FILE = 'batch.json';
export const JOURNAL_FILE = 'journal';
export const DEVICES_DIR = 'devices';
export const KCV_FILE = 'kcv.json';
export const MANIFEST_FILE = 'manifest.json';
export const BATCH_FORMAT = 'sealpost-batch/1';
export const KCV_FORMAT = 'sealpost-kcv/1';

/** Devices per group: their files written together, then their rows appended with one fdatasync. */
export const GROUP_SIZE = 1024;

const BATCH_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class ProvisionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProvisionError';
  }
}

/** OUT/<batch>/batch.json: claims the range for the batch; a resumed run must match it. */
export interface BatchMeta {
  format: typeof BATCH_FORMAT;
  batch: string;
  created: string;
  board: string;
  frame_size: number;
  serials: string;
  ingest_key_id: string;
  factory_key_id: string;
  /** Present when the batch writes device file format 2 (--renewal-pub). */
  renewal_key_id?: string;
  fleet_id?: string;
}

/** OUT/<batch>/kcv.json: the key check value of every device, for `sealpost flash`. */
export interface KcvFile {
  format: typeof KCV_FORMAT;
  batch: string;
  board: string;
  devices: Record<string, string>;
}

export interface ProvisionRequest {
  out: string;
  batch: string;
  board: BoardProfile;
  range: SerialRange;
  /** ingest-public key file. */
  ingest: KeyFile;
  /** factory-private key file. */
  factory: KeyFile;
  /** renewal-public key file: device file format 2 (the devices can renew). Absent: format 1. */
  renewal?: KeyFile;
  now?: () => Date;
  /** Called once at the start and after each durable group, with the devices done so far. */
  onProgress?: (done: number, total: number) => void;
  groupSize?: number;
  /** For tests: another sender (e.g. with fixed ephemeral keys). */
  sender?: Sender;
}

export interface ProvisionResult {
  batchDir: string;
  manifestPath: string;
  kcvPath: string;
  devices: number;
  /** Devices issued by this run (all of them on a fresh batch). */
  issued: number;
  /** Of those, serials an interrupted run had started but not made durable; issued again with new keys. */
  reissued: number;
  /** Device files restored from their durable journal rows (same keys). */
  restored: number;
  resumed: boolean;
  alreadyComplete: boolean;
}

export function checkBatchId(batch: string): string {
  if (!BATCH_ID.test(batch)) throw new ProvisionError(`--batch "${batch.slice(0, 80)}" is not valid: use 1 to 64 characters A-Z a-z 0-9 . _ -, starting with a letter or digit`);
  return batch;
}

/** The batch id when --batch is not given: the range itself, so the same command resumes the same batch. */
export function defaultBatchId(range: SerialRange): string {
  const text = formatRange(range);
  if (!BATCH_ID.test(text)) throw new ProvisionError(`the serial range ${text} is too long to name its batch; pass --batch ID`);
  return text;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ProvisionError(`${path} cannot be read: ${(e as Error).message}`);
  }
}

/** Refuses a range that shares a serial with any other batch in the output tree. */
function checkOtherBatches(out: string, batch: string, range: SerialRange): void {
  for (const entry of readdirSync(out, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === batch || entry.name.startsWith('.')) continue;
    const dir = join(out, entry.name);
    if (existsSync(join(dir, BATCH_FILE))) {
      const serials = (readJson(join(dir, BATCH_FILE)) as BatchMeta).serials;
      let other: SerialRange;
      try {
        other = parseSerialRange(serials);
      } catch (e) {
        throw new ProvisionError(`${join(dir, BATCH_FILE)} has serials ${JSON.stringify(serials)} (${(e as Error).message}); fix or move that batch before provisioning into ${out}`);
      }
      if (rangesOverlap(range, other)) {
        throw new ProvisionError(
          `serials ${formatRange(range)} overlap batch ${entry.name} (serials ${serials}) in ${out}: a serial is issued once. ` +
            'Choose a range that does not overlap, or resume that batch with its own command',
        );
      }
    } else if (existsSync(join(dir, MANIFEST_FILE))) {
      let devices: { serial: string }[];
      try {
        const m = readJson(join(dir, MANIFEST_FILE)) as { body: string };
        devices = (JSON.parse(m.body) as ManifestBody).devices;
      } catch (e) {
        throw new ProvisionError(`${join(dir, MANIFEST_FILE)} cannot be read (${(e as Error).message}); fix or move that batch before provisioning into ${out}`);
      }
      const hit = devices.find((d) => indexInRange(range, d.serial) !== undefined);
      if (hit) throw new ProvisionError(`serial ${hit.serial} was already issued in batch ${entry.name} (${join(dir, MANIFEST_FILE)}): a serial is issued once. Choose another range`);
    } else if (existsSync(join(dir, JOURNAL_FILE))) {
      const hit = [...parseJournal(readFileSync(join(dir, JOURNAL_FILE))).rows.keys()].find((s) => indexInRange(range, s) !== undefined);
      if (hit) throw new ProvisionError(`serial ${hit} is in the journal of ${dir}, a batch without ${BATCH_FILE}: a serial is issued once. Choose another range, or restore that batch`);
    }
  }
}

function metaFor(req: ProvisionRequest, created: string): BatchMeta {
  return {
    format: BATCH_FORMAT,
    batch: req.batch,
    created,
    board: req.board.id,
    frame_size: req.board.frameSize,
    serials: formatRange(req.range),
    ingest_key_id: req.ingest.id,
    factory_key_id: req.factory.id,
    ...(req.renewal ? { renewal_key_id: req.renewal.id, fleet_id: toHex(req.renewal.fleetId!) } : {}),
  };
}

function compareMeta(found: BatchMeta, want: BatchMeta, dir: string): void {
  const fields: [keyof BatchMeta, string][] = [
    ['serials', '--serials'],
    ['board', '--board'],
    ['frame_size', 'the board profile'],
    ['ingest_key_id', '--ingest-pub'],
    ['factory_key_id', '--factory-key'],
    ['renewal_key_id', '--renewal-pub'],
    ['fleet_id', 'the fleet id of --renewal-pub'],
  ];
  if (found.format !== BATCH_FORMAT) throw new ProvisionError(`${join(dir, BATCH_FILE)} is not a ${BATCH_FORMAT} file`);
  for (const [field, flag] of fields) {
    if (found[field] !== want[field]) {
      throw new ProvisionError(
        `batch ${found.batch} in ${dir} was started with ${field} ${found[field] ?? 'none'}, but this command gives ${want[field] ?? 'none'} (${flag}). ` +
          'Resume it with the arguments it was started with, or choose another --batch',
      );
    }
  }
}

function readDeviceFile(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

export async function provisionBatch(req: ProvisionRequest): Promise<ProvisionResult> {
  if (req.ingest.kind !== 'ingest-public') throw new ProvisionError(`expected an ingest-public key, got ${req.ingest.kind}`);
  if (req.factory.kind !== 'factory-private') throw new ProvisionError(`expected a factory-private key, got ${req.factory.kind}`);
  if (req.renewal !== undefined && (req.renewal.kind !== 'renewal-public' || req.renewal.fleetId?.length !== 4)) {
    throw new ProvisionError(`expected a renewal-public key with its fleet id, got ${req.renewal.kind}`);
  }
  checkBatchId(req.batch);
  const out = resolve(req.out);
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const lock = lockTree(out);
  try {
    checkOtherBatches(out, req.batch, req.range);
    return await provisionLocked(openBatch(req, out));
  } finally {
    lock.release();
  }
}

/** Paths and parameters of one batch directory. */
interface Batch {
  req: ProvisionRequest;
  dir: string;
  devicesDir: string;
  journalPath: string;
  manifestPath: string;
  kcvPath: string;
  meta: BatchMeta;
  resumed: boolean;
  devicePath(serial: string): string;
}

/** Creates the batch (batch.json first, atomically: from then on the range belongs to it) or checks the one found. */
function openBatch(req: ProvisionRequest, out: string): Batch {
  const dir = join(out, req.batch);
  const batchPath = join(dir, BATCH_FILE);
  const devicesDir = join(dir, DEVICES_DIR);
  let meta: BatchMeta;
  const resumed = existsSync(batchPath);
  if (resumed) {
    meta = readJson(batchPath) as BatchMeta;
    compareMeta(meta, metaFor(req, meta.created), dir);
  } else {
    if (existsSync(dir) && readdirSync(dir).some((n) => !n.startsWith('.'))) {
      throw new ProvisionError(`${dir} exists but is not a sealpost batch (no ${BATCH_FILE}); choose another --batch or --out`);
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    meta = metaFor(req, (req.now ?? (() => new Date()))().toISOString());
    writeFileAtomic(batchPath, JSON.stringify(meta, null, 2) + '\n', 0o644);
    fsyncDir(out);
  }
  mkdirSync(devicesDir, { recursive: true, mode: 0o700 });
  return {
    req,
    dir,
    devicesDir,
    journalPath: join(dir, JOURNAL_FILE),
    manifestPath: join(dir, MANIFEST_FILE),
    kcvPath: join(dir, KCV_FILE),
    meta,
    resumed,
    devicePath: (serial) => join(devicesDir, `${serial}.dev`),
  };
}

async function provisionLocked(batch: Batch): Promise<ProvisionResult> {
  const { req, devicesDir, journalPath } = batch;
  const { range } = req;
  const jfd = openSync(journalPath, 'a+', 0o600);
  const rows = new Map<string, JournalRow>();
  const writer = startDeviceWriter();
  try {
    fchmodSync(jfd, 0o600);
    const parsed = parseJournal(readFileSync(journalPath));
    for (const [serial, row] of parsed.rows) {
      if (indexInRange(range, serial) === undefined) throw new ProvisionError(`${journalPath} holds serial ${serial}, which is not in ${batch.meta.serials}; the batch is damaged`);
      rows.set(serial, row);
    }
    const strays: string[] = [];
    const present = new Set<string>();
    for (const name of readdirSync(devicesDir)) {
      if (name.startsWith('.')) {
        strays.push(name);
        continue;
      }
      const serial = name.endsWith('.dev') ? name.slice(0, -4) : '';
      if (indexInRange(range, serial) === undefined) throw new ProvisionError(`${join(devicesDir, name)} does not belong to batch ${req.batch} (${batch.meta.serials}); move it away and resume`);
      present.add(serial);
    }
    const complete = existsSync(batch.manifestPath);
    if (parsed.damagedTail && !complete) {
      // Rows that never became whole: their devices are issued again below.
      // (A finished batch is only read: checkComplete() finds any row missing.)
      ftruncateSync(jfd, parsed.goodBytes);
      fsyncSync(jfd);
    }
    if (!complete) for (const name of strays) unlinkSync(join(devicesDir, name));

    // Every serial is done, or has its file restored from its row, or is issued.
    const restore: DeviceFileWrite[] = [];
    const issue: number[] = [];
    for (let i = 0; i < range.count; i++) {
      const serial = serialAt(range, i);
      const row = rows.get(serial);
      if (row === undefined) {
        issue.push(i);
        continue;
      }
      const onDisk = present.has(serial) ? readDeviceFile(batch.devicePath(serial)) : undefined;
      if (onDisk === undefined || !equalBytes(onDisk, row.file)) restore.push({ path: batch.devicePath(serial), data: row.file.slice(), replace: onDisk !== undefined });
      onDisk?.fill(0);
    }
    if (complete && issue.length > 0) {
      throw new ProvisionError(`batch ${req.batch} is complete but ${issue.length} of its serials (first ${serialAt(range, issue[0]!)}) have no journal row; the batch is damaged: do not flash from it`);
    }
    if (restore.length > 0) await writer.write({ files: restore, syncDir: devicesDir });
    if (complete) return checkComplete(batch, rows, restore.length);
    return await issueAndCommit(batch, { jfd, rows, present, issue, writer, restored: restore.length });
  } finally {
    await writer.close();
    closeSync(jfd);
    for (const row of rows.values()) row.file.fill(0);
  }
}

function trustedKey(req: ProvisionRequest): KeyFile[] {
  return [{ kind: 'factory-public', id: req.factory.id, key: keyFilePublicKey(req.factory) }];
}

/** A finished batch never changes: check that manifest, kcv.json and journal agree, and say so. */
function checkComplete(batch: Batch, rows: Map<string, JournalRow>, restored: number): ProvisionResult {
  const { req, manifestPath, kcvPath } = batch;
  const total = req.range.count;
  const { body } = verifyManifest(readFileSync(manifestPath, 'utf8'), trustedKey(req));
  const kcv = readJson(kcvPath) as KcvFile;
  if (body.devices.length !== total) throw new ProvisionError(`${manifestPath} lists ${body.devices.length} devices, the batch has ${total}; the batch is damaged`);
  body.devices.forEach((d, i) => {
    const row = rows.get(d.serial);
    if (d.serial !== serialAt(req.range, i) || row === undefined || row.enc !== d.enc || kcv.devices[d.serial] !== row.kcv) {
      throw new ProvisionError(`batch ${req.batch} is complete but ${d.serial} does not match its manifest row (journal or kcv.json changed); the batch is damaged: do not flash from it`);
    }
  });
  req.onProgress?.(total, total);
  return { batchDir: batch.dir, manifestPath, kcvPath, devices: total, issued: 0, reissued: 0, restored, resumed: true, alreadyComplete: true };
}

interface IssueState {
  jfd: number;
  rows: Map<string, JournalRow>;
  present: Set<string>;
  issue: number[];
  writer: DeviceWriter;
  restored: number;
}

async function issueAndCommit(batch: Batch, st: IssueState): Promise<ProvisionResult> {
  const { req } = batch;
  const { range, board } = req;
  const total = range.count;
  const frameSize = board.frameSize;
  const issuedRows = new Map<string, { enc: string; kcv: string }>();
  let issued = 0;
  let reissued = 0;
  let done = total - st.issue.length;
  req.onProgress?.(done, total);
  const sender = req.sender ?? createSender(req.ingest.key);
  const renewal = req.renewal && { fleetId: req.renewal.fleetId!, renewalPublicKey: req.renewal.key };
  const groupSize = req.groupSize ?? GROUP_SIZE;
  let inflight: Promise<void> | undefined;
  for (let g = 0; g < st.issue.length; g += groupSize) {
    const files: DeviceFileWrite[] = [];
    let text = '';
    for (const i of st.issue.slice(g, g + groupSize)) {
      const serial = serialAt(range, i);
      const d = sender(serial);
      const file = encodeDeviceFile({ serial, frameSize, sealKey: d.sealKey, nonceSalt: d.nonceSalt, renewal: renewal && { ...renewal, chain: d.chain } });
      d.sealKey.fill(0);
      d.nonceSalt.fill(0);
      d.chain.fill(0);
      const row = { enc: toHex(d.enc), kcv: toHex(d.kcv) };
      text += encodeJournalRow({ serial, ...row, file });
      issuedRows.set(serial, row);
      const replace = st.present.has(serial);
      if (replace) reissued++;
      files.push({ path: batch.devicePath(serial), data: file, replace });
    }
    // The writer thread writes this group (files, then rows, then fdatasync) while the next one is computed.
    if (inflight) await inflight;
    const count = files.length;
    inflight = st.writer.write({ files, journalFd: st.jfd, rows: latin1(text) }).then(() => {
      issued += count;
      done += count;
      req.onProgress?.(done, total);
    });
  }
  await inflight;

  // Commit: every row is durable; kcv.json, then the signed manifest, each atomically.
  const serials = Array.from({ length: total }, (_, i) => serialAt(range, i));
  const final = (s: string) => issuedRows.get(s) ?? st.rows.get(s)!;
  const kcv: KcvFile = { format: KCV_FORMAT, batch: req.batch, board: board.id, devices: {} };
  for (const s of serials) kcv.devices[s] = final(s).kcv;
  writeFileAtomic(batch.kcvPath, JSON.stringify(kcv, null, 1) + '\n', 0o644);
  const body: ManifestBody = {
    batch: req.batch,
    created: batch.meta.created,
    board: board.id,
    frame_size: frameSize,
    ingest_key_id: req.ingest.id,
    ...(batch.meta.fleet_id !== undefined ? { fleet_id: batch.meta.fleet_id } : {}),
    devices: serials.map((s) => ({ serial: s, enc: final(s).enc })),
  };
  const text = encodeManifest(signManifest(body, req.factory));
  verifyManifest(text, trustedKey(req));
  writeFileAtomic(batch.manifestPath, text, 0o644);
  return {
    batchDir: batch.dir,
    manifestPath: batch.manifestPath,
    kcvPath: batch.kcvPath,
    devices: total,
    issued,
    reissued,
    restored: st.restored,
    resumed: batch.resumed,
    alreadyComplete: false,
  };
}

function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
