// The device registry (design brief, "Who holds what"; docs/protocol.md
// section 10): batches come in as manifests signed by a trusted factory key
// and are imported in one transaction or not at all. The registry holds no
// secret it can open itself: serial, enc, ingest key id, public metadata, and
// the device keys wrapped under a key only the ingest private key gives
// (docs/server.md, "Wrapped device keys"). An importer holding the private key
// derives and wraps each new device's keys (before the transaction, so the
// public-key work never holds the database's write lock); one with only the
// public key imports the rows unwrapped and the server wraps them at start.
import { createHash } from 'node:crypto';
import { checkSerial, equalBytes, fromHex, verifyManifest, type KeyFile } from '../protocol/index.js';
import { DeviceKeyError, RegistryError } from './errors.js';
import type { Keyring } from './keys.js';
import type { DeviceSummary, Storage } from './storage/types.js';
import type { EpochView } from './storage/epochs.js';

export interface ImportOptions {
  /** Factory public keys (from the config's "trust"). */
  trusted: KeyFile[];
  /** Ingest key ids this server holds; a batch for another key is refused. */
  ingestKeyIds: string[];
  /** The ingest private keys, when this machine holds them: new rows are stored with their keys wrapped. */
  keyring?: Keyring;
  now?: number;
}

export interface ImportOutcome {
  status: 'imported' | 'unchanged';
  batch: string;
  board: string;
  frameSize: number;
  ingestKeyId: string;
  factoryKeyId: string;
  /** Devices in the manifest. */
  devices: number;
  /** Devices newly registered. */
  added: number;
  /** Devices already registered with the same enc (left as they were). */
  present: number;
  /** Devices of this manifest whose keys are now stored wrapped (the rest are wrapped at the server's next start). */
  wrapped: number;
}

export async function importManifest(storage: Storage, text: string, options: ImportOptions): Promise<ImportOutcome> {
  if (options.trusted.length === 0) {
    throw new RegistryError('no trusted factory key: list factory public key files under "trust" in the config or pass --trust FACTORY.pub');
  }
  let verified: ReturnType<typeof verifyManifest>;
  try {
    verified = verifyManifest(text, options.trusted);
  } catch (e) {
    throw new RegistryError(`manifest refused, nothing changed: ${(e as Error).message}`);
  }
  const { body, factoryKeyId } = verified;
  if (!options.ingestKeyIds.includes(body.ingest_key_id)) {
    const held = options.ingestKeyIds.length > 0 ? options.ingestKeyIds.join(', ') : 'none';
    throw new RegistryError(
      `manifest refused, nothing changed: batch ${body.batch} is sealed to ingest key ${body.ingest_key_id}, which this server does not hold (it holds: ${held}); ` +
        'add that key file under "ingest_keys" first',
    );
  }
  const signedBody = (JSON.parse(text) as { body: string }).body;
  const sha = createHash('sha256').update(signedBody).digest('hex');
  const now = options.now ?? Date.now();
  const outcome: ImportOutcome = {
    status: 'imported',
    batch: body.batch,
    board: body.board,
    frameSize: body.frame_size,
    ingestKeyId: body.ingest_key_id,
    factoryKeyId,
    devices: body.devices.length,
    added: 0,
    present: 0,
    wrapped: 0,
  };
  const encs = new Map(body.devices.map((d) => [d.serial, fromHex(`enc of ${d.serial}`, d.enc)]));
  // Derive and wrap outside the transaction: about a millisecond of X25519 per device.
  const wraps = new Map<string, Uint8Array>();
  const keyring = options.keyring;
  if (keyring?.holds(body.ingest_key_id) && !(await storage.transaction((tx) => tx.batch(body.batch)))) {
    for (const d of body.devices) {
      try {
        wraps.set(d.serial, keyring.deriveAndWrap({ serial: d.serial, enc: encs.get(d.serial)!, ingestKeyId: body.ingest_key_id }).wrapped);
      } catch (e) {
        if (!(e instanceof DeviceKeyError)) throw e;
        throw new RegistryError(`manifest refused, nothing changed: device ${d.serial}: ${e.message} (its enc is not a usable X25519 public key)`);
      }
    }
  }
  return storage.transaction(async (tx) => {
    const existing = await tx.batch(body.batch);
    if (existing) {
      if (existing.manifestSha256 === sha) return { ...outcome, status: 'unchanged', present: body.devices.length };
      throw new RegistryError(
        `manifest refused, nothing changed: batch ${body.batch} was already imported from a different manifest (body sha256 ${existing.manifestSha256.slice(0, 16)}..., this one ${sha.slice(0, 16)}...)`,
      );
    }
    const rows = await tx.devicesBySerial(body.devices.map((d) => d.serial));
    const conflicts = rows.filter((r) => !equalBytes(r.enc, encs.get(r.serial)!));
    if (conflicts.length > 0) {
      const list = conflicts
        .slice(0, 5)
        .map((r) => `${r.serial} (batch ${r.batch})`)
        .join(', ');
      throw new RegistryError(
        `manifest refused, nothing changed: ${conflicts.length} serial(s) are already registered with a different enc: ${list}${conflicts.length > 5 ? ', ...' : ''}`,
      );
    }
    const present = new Set(rows.map((r) => r.serial));
    await tx.insertBatch({
      batch: body.batch,
      factoryKeyId,
      ingestKeyId: body.ingest_key_id,
      board: body.board,
      frameSize: body.frame_size,
      created: body.created,
      manifestSha256: sha,
      devices: body.devices.length,
      importedAt: now,
    });
    const fresh = body.devices.filter((d) => !present.has(d.serial));
    await tx.insertDevices(
      fresh.map((d) => ({
        serial: d.serial,
        enc: encs.get(d.serial)!,
        ingestKeyId: body.ingest_key_id,
        board: body.board,
        frameSize: body.frame_size,
        batch: body.batch,
        registeredAt: now,
        keysWrapped: wraps.get(d.serial) ?? null,
      })),
    );
    // Rows already registered (same enc, same key) that are not wrapped yet.
    const unwrapped = rows.filter((r) => r.keysWrapped === null && r.ingestKeyId === body.ingest_key_id && wraps.has(r.serial));
    await tx.setKeysWrapped(unwrapped.map((r) => ({ serial: r.serial, keysWrapped: wraps.get(r.serial)! })));
    const wrapped = fresh.filter((d) => wraps.has(d.serial)).length + rows.filter((r) => r.keysWrapped !== null || wraps.has(r.serial)).length;
    return { ...outcome, added: fresh.length, present: present.size, wrapped };
  });
}

/** Marks a device revoked: its frames are rejected from then on. */
export async function revokeDevice(storage: Storage, serial: string, now = Date.now()): Promise<'revoked' | 'already revoked'> {
  try {
    checkSerial(serial);
  } catch (e) {
    throw new RegistryError((e as Error).message);
  }
  return storage.transaction(async (tx) => {
    const [row] = await tx.lockDevices([serial]);
    if (!row) throw new RegistryError(`no device with serial ${serial} is registered`);
    if (row.status === 'revoked') return 'already revoked';
    await tx.setStatus(serial, 'revoked', now);
    return 'revoked';
  });
}

/** The registry table of `sealpost registry list`; with `epochs` (key renewal) an epoch column: the epoch and, unless committed, its state. */
export function formatTable(devices: DeviceSummary[], epochs?: Map<string, EpochView>): string {
  const head = ['serial', 'board', 'batch', 'status', 'frames', 'last seen', ...(epochs ? ['epoch'] : [])];
  const epochCell = (serial: string) => {
    const v = epochs!.get(serial) ?? { epoch: 0, renewal: 'none' };
    return v.renewal === 'none' || v.renewal === 'committed' ? String(v.epoch) : `${v.epoch} (${v.renewal})`;
  };
  const rows = devices.map((d) => [d.serial, d.board, d.batch, d.status, String(d.frames), d.lastSeen === null ? 'never' : new Date(d.lastSeen).toISOString(), ...(epochs ? [epochCell(d.serial)] : [])]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
