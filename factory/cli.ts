// `sealpost` commands of the factory: keys, provision and info (flash is in
// factory/flash-cli.ts). Each one parses its arguments (cli/args.ts), calls
// factory/ library code, prints, and returns an exit code (style.md rule 12);
// cli/main.ts holds their usage and prints errors. Nothing here prints key
// material: only ids, paths, serials, counts and key check values the device
// prints itself.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import {
  ANNOUNCE_LEN,
  ANNOUNCE_TYPE,
  decodeDeviceFile,
  keyCheckValue,
  keyId,
  readU32BE,
  toHex,
  verifyAnnounce,
} from '../protocol/index.js';
import { initKeys, loadKeyFile, looseKeyFileMode, renewKeys } from './keyfiles.js';
import { checkBatchId, defaultBatchId, provisionBatch } from './provision.js';
import { parseSerialRange } from './serials.js';
import { createProgress } from './progress.js';
import { boardArg, checkedArg, parseFlags, required, stringOption, UsageError } from '../cli/args.js';

const show = (path: string): string => {
  const r = relative(process.cwd(), path);
  return r.startsWith('..') || r === '' ? path : r;
};

export async function runKeys(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { dir: { type: 'string' }, keys: { type: 'string' } });
  const action = positionals[0];
  if (positionals.length !== 1 || (action !== 'init' && action !== 'renew')) {
    throw new UsageError(positionals.length === 0 ? 'which action? "init" or "renew"' : `unknown action "${positionals.join(' ')}": use "init" or "renew"`);
  }
  if (action === 'renew') {
    if (values.dir !== undefined) throw new UsageError('keys renew takes --keys DIR (the key set directory), not --dir');
    return renew(required(values, 'keys'));
  }
  if (values.keys !== undefined) throw new UsageError('keys init takes --dir DIR, not --keys');
  const p = initKeys(required(values, 'dir'));
  console.log(`ingest key   ${p.ingestId}  (X25519: the server opens frames with it)`);
  console.log(`  private    ${show(p.ingestPrivate)}  mode 0600 -> to the ingest server ONLY (sealpost server --ingest-key); never to the factory`);
  console.log(`  public     ${show(p.ingestPublic)}  -> to the factory (sealpost provision --ingest-pub)`);
  console.log(`factory key  ${p.factoryId}  (Ed25519: signs batch manifests)`);
  console.log(`  private    ${show(p.factoryPrivate)}  mode 0600 -> stays at the factory (sealpost provision --factory-key); back it up offline`);
  console.log(`  public     ${show(p.factoryPublic)}  -> to the ingest server (sealpost server --trust)`);
  console.log(`renewal key  ${p.renewalId}  (Ed25519: announces a new ingest key to fleet ${p.fleetId})`);
  console.log(`  private    ${show(p.renewalPrivate)}  mode 0600 -> OFFLINE (an encrypted USB key in a safe, two copies); never on the server or the factory line`);
  console.log(`  public     ${show(p.renewalPublic)}  -> to the factory (sealpost provision --renewal-pub): every device keeps it`);
  console.log('');
  console.log('next: move the ingest .key file to the server and the renewal .key file offline, delete both here, then provision, e.g.');
  console.log(
    `  sealpost provision --board puckjs --serials SP-000001-SP-001000 --ingest-pub ${show(p.ingestPublic)} --factory-key ${show(p.factoryPrivate)} --renewal-pub ${show(p.renewalPublic)} --out factory-out`,
  );
  return 0;
}

function renew(dir: string): number {
  const r = renewKeys(dir);
  console.log(`epoch ${r.epoch} of fleet ${r.fleetId}: new ingest key ${r.ingestId}, announced with renewal key ${r.renewalId}`);
  console.log(`  private    ${show(r.ingestPrivate)}  mode 0600 -> to the ingest server ONLY; never to the factory`);
  console.log(`  public     ${show(r.ingestPublic)}  -> to the factory, for batches made from now on`);
  console.log(`  announce   ${show(r.announcePath)}  (108 bytes, signed; public) -> to the ingest server, which hands it to every device below epoch ${r.epoch}`);
  console.log('');
  console.log('next: move the renewal .key file back offline and the ingest .key file to the server, and delete both here');
  return 0;
}

/** `sealpost info FILE`: what a device file or an ANNOUNCE file is, never a secret. */
export async function runInfo(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { 'renewal-pub': { type: 'string' } }, 1);
  const path = positionals[0];
  if (path === undefined) throw new UsageError('which file? give a device file (OUT/BATCH/devices/SERIAL.dev) or an ANNOUNCE file (announce-<epoch>.bin)');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied (device files are 0600: run as their owner)' : 'cannot be read'}`);
  }
  if (bytes.length === ANNOUNCE_LEN && bytes[0] === ANNOUNCE_TYPE) return announceInfo(path, bytes, stringOption(values, 'renewal-pub'));
  if (values['renewal-pub'] !== undefined) throw new UsageError('--renewal-pub is for ANNOUNCE files only');
  let d: ReturnType<typeof decodeDeviceFile>;
  try {
    d = decodeDeviceFile(bytes);
  } catch (e) {
    throw new Error(`${path} is neither a sealpost device file nor an ANNOUNCE: ${(e as Error).message}`);
  }
  bytes.fill(0);
  console.log(`device file  ${show(path)}`);
  console.log(`  format     ${d.renewal ? 2 : 1}`);
  console.log(`  serial     ${d.serial}`);
  console.log(`  frame size ${d.frameSize}`);
  console.log(`  key check  ${toHex(keyCheckValue(d.sealKey))}`);
  if (d.renewal) {
    console.log(`  renewal    can renew: fleet ${toHex(d.renewal.fleetId)}, renewal key ${keyId('rk', d.renewal.renewalPublicKey)}, from epoch 0`);
  } else {
    console.log('  renewal    cannot renew: a format-1 file has no renewal key or chain secret; this device keeps its factory key for life (revoke it if that key leaks)');
  }
  d.sealKey.fill(0);
  d.nonceSalt.fill(0);
  d.renewal?.chain.fill(0);
  return 0;
}

function announceInfo(path: string, bytes: Uint8Array, renewalPub: string | undefined): number {
  const fleet = toHex(bytes.subarray(2, 6));
  const epoch = readU32BE(bytes, 6);
  console.log(`announce     ${show(path)}`);
  console.log(`  fleet      ${fleet}`);
  console.log(`  epoch      ${epoch}`);
  console.log(`  ingest key ${keyId('ik', bytes.subarray(10, 42))}`);
  if (renewalPub === undefined) {
    console.log('  signature  not checked (pass --renewal-pub renewal-<id>.pub to check it)');
    return 0;
  }
  const key = loadKeyFile(renewalPub, 'renewal-public', '--renewal-pub');
  verifyAnnounce(bytes, { renewalPublicKey: key.key, fleetId: key.fleetId!, currentEpoch: 0 });
  console.log(`  signature  verifies with renewal key ${key.id}`);
  return 0;
}

export async function runProvision(args: string[]): Promise<number> {
  const { values } = parseFlags(
    args,
    {
      board: { type: 'string' },
      serials: { type: 'string' },
      'ingest-pub': { type: 'string' },
      'factory-key': { type: 'string' },
      'renewal-pub': { type: 'string' },
      out: { type: 'string' },
      batch: { type: 'string' },
    },
    0,
  );
  const board = boardArg(required(values, 'board'));
  const serials = required(values, 'serials');
  const range = checkedArg(() => parseSerialRange(serials));
  const out = required(values, 'out');
  const given = stringOption(values, 'batch');
  const batch = given !== undefined ? checkedArg(() => checkBatchId(given)) : defaultBatchId(range);
  const ingestPath = required(values, 'ingest-pub');
  const factoryPath = required(values, 'factory-key');
  const ingest = loadKeyFile(ingestPath, 'ingest-public', '--ingest-pub');
  const factory = loadKeyFile(factoryPath, 'factory-private', '--factory-key');
  const renewalPath = stringOption(values, 'renewal-pub');
  const renewal = renewalPath !== undefined ? loadKeyFile(renewalPath, 'renewal-public', '--renewal-pub') : undefined;
  const loose = looseKeyFileMode(factoryPath);
  if (loose !== undefined) console.error(`warning: ${factoryPath} has mode 0${loose.toString(8)}; a private key file should be 0600 (chmod 600 ${factoryPath})`);

  const progress = createProgress(process.stderr, `provision ${batch}`);
  const started = performance.now();
  const r = await provisionBatch({ out, batch, board, range, ingest, factory, renewal, onProgress: (done, total) => progress.update(done, total) });
  progress.finish();
  factory.key.fill(0);
  const seconds = (performance.now() - started) / 1000;
  if (r.alreadyComplete) {
    console.log(`batch ${batch} was already complete: ${r.devices} devices, manifest checked; no serial issued`);
    if (r.restored > 0) console.log(`  restored    ${r.restored} device files rewritten from their journal rows (same keys)`);
  } else {
    console.log(`batch ${batch}: ${r.devices} devices for ${board.id} (${board.name}), frame size ${board.frameSize}`);
    if (r.resumed) {
      console.log(`  resumed     ${r.devices - r.issued} devices were already done, ${r.issued} issued now`);
      if (r.reissued > 0) console.log(`              ${r.reissued} of them issued again with new keys: the interrupted run never made their journal rows durable, so their old keys were never issued`);
    }
    if (r.restored > 0) console.log(`  restored    ${r.restored} device files rewritten from their journal rows (same keys)`);
    console.log(`  took        ${seconds.toFixed(2)} s, ${Math.round(r.issued / seconds)} devices/s`);
  }
  console.log(
    renewal
      ? `  format      2: the devices can renew (fleet ${toHex(renewal.fleetId!)}, renewal key ${renewal.id})`
      : '  format      1: no --renewal-pub, so these devices can never renew (their factory key is for life)',
  );
  console.log(`  devices     ${show(r.batchDir)}/devices/<serial>.dev  (0600, secret: flash each with sealpost flash, then keep or destroy per policy)`);
  console.log(`  manifest    ${show(r.manifestPath)}  (signed by ${factory.id}: import on the server with sealpost registry import)`);
  console.log(`  key checks  ${show(r.kcvPath)}  (stays at the factory: sealpost flash compares each device's key check value with it)`);
  return 0;
}
