// `sealpost` commands of the factory: keys and provision (flash is in
// factory/flash-cli.ts). Each one parses its arguments (cli/args.ts), calls
// factory/ library code, prints, and returns an exit code (style.md rule 12);
// cli/main.ts holds their usage and prints errors. Nothing here prints key
// material: only ids, paths, serials, counts and key check values the device
// prints itself.
import { relative } from 'node:path';
import { initKeys, loadKeyFile, looseKeyFileMode } from './keyfiles.js';
import { checkBatchId, defaultBatchId, provisionBatch } from './provision.js';
import { parseSerialRange } from './serials.js';
import { createProgress } from './progress.js';
import { boardArg, checkedArg, parseFlags, required, stringOption, UsageError } from '../cli/args.js';

const show = (path: string): string => {
  const r = relative(process.cwd(), path);
  return r.startsWith('..') || r === '' ? path : r;
};

export async function runKeys(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { dir: { type: 'string' } });
  if (positionals[0] !== 'init' || positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'which action? only "init" exists' : `unknown action "${positionals.join(' ')}"`);
  const p = initKeys(required(values, 'dir'));
  console.log(`ingest key   ${p.ingestId}  (X25519: the server opens frames with it)`);
  console.log(`  private    ${show(p.ingestPrivate)}  mode 0600 -> to the ingest server ONLY (sealpost server --ingest-key); never to the factory`);
  console.log(`  public     ${show(p.ingestPublic)}  -> to the factory (sealpost provision --ingest-pub)`);
  console.log(`factory key  ${p.factoryId}  (Ed25519: signs batch manifests)`);
  console.log(`  private    ${show(p.factoryPrivate)}  mode 0600 -> stays at the factory (sealpost provision --factory-key); back it up offline`);
  console.log(`  public     ${show(p.factoryPublic)}  -> to the ingest server (sealpost server --trust)`);
  console.log('');
  console.log('next: move the ingest .key file to the server and delete it here, then provision, e.g.');
  console.log(`  sealpost provision --board puckjs --serials SP-000001-SP-001000 --ingest-pub ${show(p.ingestPublic)} --factory-key ${show(p.factoryPrivate)} --out factory-out`);
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
  const loose = looseKeyFileMode(factoryPath);
  if (loose !== undefined) console.error(`warning: ${factoryPath} has mode 0${loose.toString(8)}; a private key file should be 0600 (chmod 600 ${factoryPath})`);

  const progress = createProgress(process.stderr, `provision ${batch}`);
  const started = performance.now();
  const r = await provisionBatch({ out, batch, board, range, ingest, factory, onProgress: (done, total) => progress.update(done, total) });
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
  console.log(`  devices     ${show(r.batchDir)}/devices/<serial>.dev  (0600, secret: flash each with sealpost flash, then keep or destroy per policy)`);
  console.log(`  manifest    ${show(r.manifestPath)}  (signed by ${factory.id}: import on the server with sealpost registry import)`);
  console.log(`  key checks  ${show(r.kcvPath)}  (stays at the factory: sealpost flash compares each device's key check value with it)`);
  return 0;
}
