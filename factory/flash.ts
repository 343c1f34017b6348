// `sealpost flash`: program one provisioned device with the espruino CLI
// (docs/factory.md, "Flashing"). Two ways:
//
// --port: five CLI runs against the device, in this order, each checked
// before the next (a device that loses power half-way never boots sealpost
// firmware without its key and counter log):
//   1. connect and check: the board is the batch's board, Storage has room,
//      and any sealpost.ctr on it is still unused (recreating a used counter
//      log would let counters repeat under a key);
//   2. write sealpost.dev (--storage), then read back its length and public
//      header (magic, version, frame size, serial): never the key;
//   3. write sealpost.ctr pre-sized and erased (storage-log boards only),
//      then read back its length and CRC-32;
//   3b. write sealpost.krn, the compiled AES-CCM kernel (native-kernel boards
//      only: kernel/aes-ccm/), then read back its length and CRC-32 on the
//      device (E.CRC32 of Storage.read) against the image's;
//   3c. write the two renewal kernels in one run, sealpost.c25 (kernel/curve25519/)
//      and sealpost.hkd (kernel/hkdf-sha256/), on boards whose profile renews
//      with them (renewalCrypto 'native-kernel'), then read back both lengths
//      and CRC-32s the same way;
//   4. write the firmware bundle as .bootcde, then read back length and CRC;
//   5. load() (restart from Storage, as at power-on) and read the boot line
//      "sealpost <serial> kcv <6 hex> fw <version>", whose kcv the firmware
//      computes from the key it read; compare serial and kcv with the batch.
//
// --ohex: one offline CLI run (--board BOARD.json --ohex) that writes the
// Storage area with the same files as Intel HEX for SWD programming;
// the hex is parsed back and every file compared before it is handed out.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { boardProfile, type BoardId, type BoardProfile } from '../boards/index.js';
import { COUNTER_LOG_NAME, crc32, decodeDeviceFile, DEVICE_FILE_NAME, keyCheckValue, toHex, type ManifestBody } from '../protocol/index.js';
import { redactDeviceText, type EspruinoRun, type EspruinoRunner } from './espruino-cli.js';
import { writeFileAtomic } from './fsutil.js';
import { KCV_FILE, KCV_FORMAT, MANIFEST_FILE, DEVICES_DIR, type KcvFile } from './provision.js';
import { parseIntelHex, parseStorage, storageFootprint } from './storage-image.js';
import { counterLogImage, initialPageHeader } from '../protocol/wire/counter-log.js';
import { CURVE_KERNEL_FILE_NAME, HKDF_KERNEL_FILE_NAME, KERNEL_FILE_NAME } from '../protocol/wire/names.js';
import { IMAGE as KERNEL_IMAGE } from '../kernel/aes-ccm/image.js';
import { IMAGE as CURVE_IMAGE } from '../kernel/curve25519/image.js';
import { IMAGE as HKDF_IMAGE } from '../kernel/hkdf-sha256/image.js';
import { createHash } from 'node:crypto';

/**
 * On flash-pages boards: find the two pages the firmware uses (the last two of
 * require("Flash").getFree()[0], as hal/espruino/base.ts flashPages() does),
 * and write the counter log's first header (protocol/wire/counter-log.ts) into
 * the first, only if both pages are still erased. A device whose pages hold
 * a sealpost log has run the firmware: re-initialising them would let its
 * counters repeat under its key, so that is refused. Prints SPFLASH5 and the
 * outcome.
 */
export function counterPagesExpression(): string {
  const header = Array.from(initialPageHeader()).join(',');
  return (
    '(function(){var F=require("Flash"),a=F.getFree();if(!a||!a.length){print("SPFLASH5 nofree");return;}a=a[0];' +
    'var p=F.getPage(a.addr+a.length-1),b=p.addr,q=b-p.length,h=F.read(4,q);' +
    'if(a.length<2*p.length){print("SPFLASH5 small");return;}' +
    'if(E.sum(F.read(p.length,q))!==255*p.length||E.sum(F.read(p.length,b))!==255*p.length){print("SPFLASH5 used "+(h[0]==83&&h[1]==80&&h[2]==99&&h[3]==80?"sealpost":"other"));return;}' +
    'F.write(new Uint8Array([' + header + ']),q);print("SPFLASH5 ok "+E.sum(F.read(32,q)));})()'
  );
}

export const BOOT_CODE_FILE = '.bootcde';

/** Espruino's name for each board (process.env.BOARD, and boards/espruino/<NAME>.json). */
const ESPRUINO_BOARD: Partial<Record<BoardId, string>> = {
  puckjs: 'PUCKJS',
  mdbt42q: 'MDBT42Q',
  pixljs: 'PIXLJS',
  banglejs2: 'BANGLEJS2',
  nrf52840dk: 'NRF52840DK',
  'espruino-linux': 'LINUX',
};

/** Why a board cannot get an SWD hex of its Storage. */
const NO_SWD_HEX: Partial<Record<BoardId, string>> = {
  banglejs2: 'Bangle.js 2 keeps Storage in its external SPI flash (mapped at 0x60000000, 8 MB), which an SWD programmer cannot write directly: flash it with --port',
  nrf52840dk:
    'the nRF52840 DK keeps its counter log in two raw flash pages whose address depends on the firmware build, and the first one must get its header on the device: flash it with --port',
  'espruino-linux': 'the Linux build has no flash to program: flash it with --port',
};

export class FlashError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlashError';
  }
}

export interface EspruinoBoard {
  /** process.env.BOARD on the device. */
  name: string;
  /** Path of the board JSON given to the CLI with --board. */
  json: string;
  /** The Storage area, from chip.saved_code, where the board has one. */
  storage?: { address: number; size: number };
}

export function espruinoBoard(board: BoardProfile): EspruinoBoard {
  const name = ESPRUINO_BOARD[board.id];
  if (name === undefined) throw new FlashError(`board ${board.id} is not an Espruino board; there is nothing to flash`);
  const json = new URL(`../boards/espruino/${name}.json`, import.meta.url).pathname;
  const doc = JSON.parse(readFileSync(json, 'utf8')) as { chip?: { saved_code?: { address: number; page_size: number; pages: number } } };
  const sc = doc.chip?.saved_code;
  return { name, json, storage: sc ? { address: sc.address, size: sc.page_size * sc.pages } : undefined };
}

export interface FlashTarget {
  devicePath: string;
  serial: string;
  batch: string;
  board: BoardProfile;
  espruino: EspruinoBoard;
  /** Key check value from the batch's kcv.json, equal to the device file's. */
  kcv: string;
  /** Bytes 0 .. 7+n of the device file: magic, version, frame size, serial. Public. */
  publicHeader: string;
  deviceFileLength: number;
  firmwarePath: string;
  firmware: Uint8Array;
  /** The erased counter log, on storage-log boards. */
  counterLog?: Uint8Array;
  /** The compiled AES-CCM kernel written as sealpost.krn, on native-kernel boards: the committed image, checked by SHA-256. */
  kernel?: { path: string; bytes: Uint8Array };
  /**
   * The renewal kernels, written as sealpost.c25 and sealpost.hkd (in that order) on boards whose
   * profile has renewalCrypto 'native-kernel': DIST/curve25519.bin and DIST/hkdf-sha256.bin, each
   * checked by SHA-256 against its kernel/<name>/image.ts.
   */
  renewalKernels?: RenewalKernelFile[];
}

export interface RenewalKernelFile {
  /** The Storage file name (protocol/wire/names.ts). */
  name: string;
  path: string;
  bytes: Uint8Array;
}

/** The renewal kernels: Storage name and the image the firmware checks the file against. */
const RENEWAL_KERNELS: readonly (readonly [string, { file: string; size: number; sha256: string }])[] = [
  [CURVE_KERNEL_FILE_NAME, CURVE_IMAGE],
  [HKDF_KERNEL_FILE_NAME, HKDF_IMAGE],
];

export interface TargetOptions {
  devicePath: string;
  board?: string;
  firmware?: string;
  /** The folder of firmware bundles used when `firmware` is not given (default ./dist); also holds the kernel images (npm run build copies them there). */
  distDir?: string;
  /** The kernel image for native-kernel boards (default DIST/aes-ccm.bin). */
  kernel?: string;
}

/**
 * A kernel image the firmware was built for, read and checked against its kernel/<name>/image.ts
 * (kernel/aes-ccm/ unless another is given). `hint` says how else to name the file.
 */
export function loadKernel(path: string, image: { file: string; size: number; sha256: string } = KERNEL_IMAGE, hint = ' or pass --kernel FILE'): { path: string; bytes: Uint8Array } {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch {
    throw new FlashError(`kernel ${path} not found: build it into dist/ with \`npm run build\` (it copies kernel/${image.file.replace(/\.bin$/, '')}/${image.file})${hint}`);
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (bytes.length !== image.size || sha !== image.sha256) {
    throw new FlashError(`kernel ${path} is not the image this firmware was built for (${bytes.length} bytes, SHA-256 ${sha.slice(0, 16)}..., expected ${image.size} bytes, ${image.sha256.slice(0, 16)}...): use the ${image.file} of the same build`);
  }
  return { path, bytes };
}

function noColon(path: string, what: string): string {
  // The espruino CLI splits --storage NAME:FILE at every ':'.
  if (path.includes(':')) throw new FlashError(`${what} path ${path} contains ':', which the espruino CLI cannot take in --storage; move or rename it`);
  return path;
}

/**
 * Everything `flash` needs about one device, checked: the device file decodes
 * and belongs to a finished batch (manifest.json and kcv.json present, its
 * serial listed, its kcv as recorded), the board matches, the firmware exists
 * and everything fits in Storage.
 */
export function loadFlashTarget(options: TargetOptions): FlashTarget {
  const devicePath = resolve(options.devicePath);
  // A device file of a finished batch that is missing or damaged (a power cut
  // before it reached the disk) is restored from the batch's journal.
  const restoreHint = existsSync(join(dirname(dirname(devicePath)), MANIFEST_FILE))
    ? "; run the batch's sealpost provision command again to restore it from the journal"
    : '';
  let bytes: Buffer;
  try {
    bytes = readFileSync(devicePath);
  } catch (e) {
    throw new FlashError(`--device ${options.devicePath}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot be read'}${restoreHint}`);
  }
  let serial: string;
  let kcv: string;
  let publicHeader: string;
  try {
    const d = decodeDeviceFile(new Uint8Array(bytes));
    serial = d.serial;
    kcv = toHex(keyCheckValue(d.sealKey));
    publicHeader = bytes.subarray(0, 7 + serial.length).toString('hex');
    d.sealKey.fill(0);
    d.nonceSalt.fill(0);
  } catch (e) {
    throw new FlashError(`--device ${options.devicePath} is not a sealpost device file: ${(e as Error).message}${restoreHint}`);
  } finally {
    bytes.fill(0);
  }
  const deviceFileLength = bytes.length;
  if (basename(devicePath) !== `${serial}.dev` || basename(dirname(devicePath)) !== DEVICES_DIR) {
    throw new FlashError(`--device ${options.devicePath} holds serial ${serial} but is not OUT/<batch>/${DEVICES_DIR}/${serial}.dev; flash device files where sealpost provision wrote them`);
  }
  const batchDir = dirname(dirname(devicePath));
  const batch = basename(batchDir);
  const manifestPath = join(batchDir, MANIFEST_FILE);
  const kcvPath = join(batchDir, KCV_FILE);
  if (!existsSync(manifestPath) || !existsSync(kcvPath)) {
    throw new FlashError(
      `batch ${batch} is not finished (no ${!existsSync(manifestPath) ? MANIFEST_FILE : KCV_FILE} in ${batchDir}): run its sealpost provision command again to finish it. ` +
        'Until then its device files may still be replaced, so none may be flashed',
    );
  }
  let body: ManifestBody;
  let kcvFile: KcvFile;
  try {
    body = JSON.parse((JSON.parse(readFileSync(manifestPath, 'utf8')) as { body: string }).body) as ManifestBody;
    kcvFile = JSON.parse(readFileSync(kcvPath, 'utf8')) as KcvFile;
  } catch (e) {
    throw new FlashError(`batch ${batch}: ${MANIFEST_FILE} or ${KCV_FILE} cannot be read (${(e as Error).message})`);
  }
  if (kcvFile.format !== KCV_FORMAT || !body.devices.some((d) => d.serial === serial)) throw new FlashError(`serial ${serial} is not in the manifest of batch ${batch}; do not flash this file`);
  if (kcvFile.devices[serial] !== kcv) {
    throw new FlashError(
      `--device ${options.devicePath} does not match ${kcvPath} (key check value differs): the file was replaced or damaged after the batch finished. ` +
        "Run the batch's sealpost provision command again to restore it from the journal; do not flash this file",
    );
  }
  const board = boardProfile(body.board);
  if (options.board !== undefined && options.board !== board.id) {
    throw new FlashError(`--board ${options.board} does not match batch ${batch}, which was provisioned for ${board.id}`);
  }
  const espruino = espruinoBoard(board);
  const firmwarePath = options.firmware !== undefined ? resolve(options.firmware) : join(resolve(options.distDir ?? 'dist'), `${board.id}.js`);
  if (!existsSync(firmwarePath) || !statSync(firmwarePath).isFile()) {
    throw new FlashError(`firmware ${firmwarePath} not found: build it with \`npm run build\` (dist/${board.id}.js) or pass --firmware FILE`);
  }
  const firmware = new Uint8Array(readFileSync(firmwarePath));
  if (firmware.length === 0) throw new FlashError(`firmware ${firmwarePath} is empty`);
  const counterLog = board.counterStore.kind === 'storage-log' ? counterLogImage(board.counterStore.bytes) : undefined;
  const kernel = board.crypto === 'native-kernel' ? loadKernel(resolve(options.kernel ?? join(options.distDir ?? 'dist', KERNEL_IMAGE.file))) : undefined;
  const renewalKernels =
    board.renewalCrypto === 'native-kernel'
      ? RENEWAL_KERNELS.map(([name, image]) => ({ name, ...loadKernel(resolve(join(options.distDir ?? 'dist', image.file)), image, '') }))
      : undefined;
  const needed = footprint({ deviceFileLength, counterLog, kernel, renewalKernels, firmware });
  if (needed > board.storageBytes) {
    const names = [DEVICE_FILE_NAME, ...(counterLog ? [COUNTER_LOG_NAME] : []), ...(kernel ? [KERNEL_FILE_NAME] : []), ...(renewalKernels ?? []).map((k) => k.name)];
    throw new FlashError(`${names.join(', ')}, and the firmware need ${needed} bytes of Storage; ${board.name} has ${board.storageBytes}`);
  }
  noColon(devicePath, 'device file');
  noColon(firmwarePath, 'firmware');
  if (kernel) noColon(kernel.path, 'kernel');
  for (const k of renewalKernels ?? []) noColon(k.path, 'kernel');
  return { devicePath, serial, batch, board, espruino, kcv, publicHeader, deviceFileLength, firmwarePath, firmware, counterLog, kernel, renewalKernels };
}

/** Storage bytes the files of one device take. */
function footprint(t: { deviceFileLength: number; counterLog?: Uint8Array; kernel?: { bytes: Uint8Array }; renewalKernels?: { bytes: Uint8Array }[]; firmware: Uint8Array }): number {
  return (
    storageFootprint(t.deviceFileLength) +
    (t.counterLog ? storageFootprint(t.counterLog.length) : 0) +
    (t.kernel ? storageFootprint(t.kernel.bytes.length) : 0) +
    (t.renewalKernels ?? []).reduce((n, k) => n + storageFootprint(k.bytes.length), 0) +
    storageFootprint(t.firmware.length)
  );
}

/** The outcome of one step, judged from the CLI's output. */
/** A failure may carry its own advice, replacing the step's. */
export type StepOutcome = { ok: true; note?: string } | { ok: false; why: string; advice?: string };

export interface FlashStep {
  title: string;
  /** Arguments to the espruino CLI. */
  args: string[];
  timeoutMs: number;
  /** What to do when this step fails. */
  advice: string;
  stopWhen?: (deviceLines: string[]) => boolean;
  judge(run: EspruinoRun): StepOutcome;
}

export interface PortOptions {
  port: string;
  /** Directory for the counter-log file given to the CLI. */
  workDir: string;
  /** Seconds per write step (BLE uploads of the firmware take longest). */
  timeoutS?: number;
  /** Seconds to wait for the boot line. */
  bootWaitS?: number;
}

const BLE_ADDRESS = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** The -e expression that prints "<marker> <length> <crc32>" for a Storage file, or "-1" when missing. */
function lengthAndCrc(marker: string, file: string): string {
  return `(function(){var s=require("Storage").read(${JSON.stringify(file)});print("${marker} "+(s===undefined?"-1 0":s.length+" "+E.CRC32(s)))})()`;
}

/** The -e expression that prints "<marker> <length> <crc32> <length> <crc32> ..." for several Storage files ("-1 0" for a missing one). */
function lengthsAndCrcs(marker: string, files: string[]): string {
  return `(function(){var S=require("Storage"),o=[];${JSON.stringify(files)}.forEach(function(f){var s=S.read(f);o.push(s===undefined?"-1 0":s.length+" "+E.CRC32(s))});print("${marker} "+o.join(" "))})()`;
}

/** The -e expression for sealpost.dev: length and hex of its first `n` bytes (the public header). */
function lengthAndHeader(marker: string, n: number): string {
  return (
    `(function(){var s=require("Storage").read(${JSON.stringify(DEVICE_FILE_NAME)}),h="";` +
    `if(s===undefined){print("${marker} -1");return;}` +
    `for(var i=0;i<${n};i++)h+=(256+s.charCodeAt(i)).toString(16).substr(1);print("${marker} "+s.length+" "+h)})()`
  );
}

const CHECK_EXPRESSION =
  '(function(){var S=require("Storage"),c=S.read(' +
  JSON.stringify(COUNTER_LOG_NAME) +
  ');print("SPFLASH1 "+JSON.stringify({board:process.env.BOARD,version:process.env.VERSION,stats:S.getStats(),ctrLength:c===undefined?-1:c.length,ctrCrc:c===undefined?0:E.CRC32(c)}))})()';

function markerLine(run: EspruinoRun, marker: string): string | undefined {
  const line = run.deviceLines.find((l) => l.startsWith(`${marker} `));
  return line?.slice(marker.length + 1);
}

/** Why a step got no answer: the CLI's connection error, a timeout, or what the device said instead (redacted). */
function noAnswer(run: EspruinoRun, port: string, timeoutMs: number): string {
  if (run.connectError) return `cannot reach the device on ${port}: ${run.connectError}`;
  if (run.timedOut) return `no answer from ${port} within ${Math.round(timeoutMs / 1000)} s`;
  const said = run.deviceLines
    .filter((l) => l.trim() !== '' && l.trim() !== '>')
    .slice(-4)
    .map(redactDeviceText);
  return said.length > 0 ? `the device did not confirm; it said: ${said.join(' | ')}` : 'the device did not confirm (no output)';
}

/** The steps of flashing one device through a port; pure (no I/O) apart from the file names it refers to. */
export function planPortFlash(t: FlashTarget, o: PortOptions, counterLogPath: string): FlashStep[] {
  const writeTimeout = (o.timeoutS ?? 60) * 1000;
  const bootWait = o.bootWaitS ?? 10;
  const base = ['-p', o.port, '--board', t.espruino.json, ...(BLE_ADDRESS.test(o.port) ? [] : ['--no-ble'])];
  const notYet = 'retry the same command; the device is not provisioned yet (each file is replaced when written again)';
  const steps: FlashStep[] = [];
  const needed = footprint(t);

  steps.push({
    title: 'connect and check the device',
    args: [...base, '-e', CHECK_EXPRESSION],
    timeoutMs: Math.min(writeTimeout, 30_000),
    advice:
      'check the cable and port name (npx espruino --list shows ports), that the device runs Espruino and no other program (IDE, terminal) holds its console, then retry; ' +
      'nothing was written to the device. A device that already runs sealpost firmware has its console closed and cannot be flashed again',
    judge(run) {
      const text = markerLine(run, 'SPFLASH1');
      if (text === undefined) return { ok: false, why: noAnswer(run, o.port, this.timeoutMs) };
      let info: { board?: string; version?: string; stats?: { freeBytes?: number; trashBytes?: number; totalBytes?: number }; ctrLength?: number; ctrCrc?: number };
      try {
        info = JSON.parse(text) as typeof info;
      } catch {
        return { ok: false, why: 'the device answered with something that is not the expected check result' };
      }
      if (info.board !== t.espruino.name) {
        return {
          ok: false,
          why: `the device on ${o.port} is a ${String(info.board)}, but batch ${t.batch} is for ${t.board.name} (${t.espruino.name})`,
          advice: `connect a ${t.board.name}, or flash this device from a batch provisioned for its board; nothing was written to the device`,
        };
      }
      if (t.counterLog && info.ctrLength !== undefined && info.ctrLength >= 0) {
        const fresh = info.ctrLength === t.counterLog.length && info.ctrCrc === crc32(t.counterLog);
        if (!fresh) {
          return {
            ok: false,
            why: `${COUNTER_LOG_NAME} on the device already holds counter records: this device has run sealpost firmware, and a fresh log would let its counters repeat under its key`,
            advice: 'do not re-flash it: set it aside for inspection; nothing was written to the device',
          };
        }
      }
      const room = (info.stats?.freeBytes ?? 0) + (info.stats?.trashBytes ?? 0);
      if (room < needed) {
        return {
          ok: false,
          why: `Storage on the device has ${room} bytes free (including trash), the files need ${needed}`,
          advice: 'this device holds other files: erase its Storage (require("Storage").eraseAll() at its console) if it never ran sealpost firmware, then retry',
        };
      }
      return { ok: true, note: `${info.board} ${info.version ?? ''}`.trim() };
    },
  });

  const n = t.serial.length;
  steps.push({
    title: `write ${DEVICE_FILE_NAME}`,
    args: [...base, '--storage', `${DEVICE_FILE_NAME}:${t.devicePath}`, '-e', lengthAndHeader('SPFLASH2', 7 + n)],
    timeoutMs: writeTimeout,
    advice: notYet,
    judge(run) {
      const text = markerLine(run, 'SPFLASH2');
      if (text === undefined) return { ok: false, why: noAnswer(run, o.port, this.timeoutMs) };
      const [len, header] = text.split(' ');
      if (Number(len) !== t.deviceFileLength || header !== t.publicHeader) return { ok: false, why: `${DEVICE_FILE_NAME} reads back with length ${len}, expected ${t.deviceFileLength}, or a different header` };
      return { ok: true };
    },
  });

  // A Storage file written from `path` and read back on the device: its length and E.CRC32
  // (which may print the same 32 bits as a negative number) must be those of `bytes`.
  const checkedFile = (title: string, name: string, path: string, bytes: Uint8Array, marker: string): FlashStep => ({
    title,
    args: [...base, '--storage', `${name}:${path}`, '-e', lengthAndCrc(marker, name)],
    timeoutMs: writeTimeout,
    advice: notYet,
    judge(run) {
      const text = markerLine(run, marker);
      if (text === undefined) return { ok: false, why: noAnswer(run, o.port, this.timeoutMs) };
      const [len, crc] = text.split(' ');
      if (Number(len) !== bytes.length || Number(crc) >>> 0 !== crc32(bytes)) return { ok: false, why: `${name} reads back as ${len} bytes with CRC ${crc}, expected ${bytes.length} bytes with CRC ${crc32(bytes)}` };
      return { ok: true };
    },
  });

  if (t.counterLog) steps.push(checkedFile(`write ${COUNTER_LOG_NAME}`, COUNTER_LOG_NAME, counterLogPath, t.counterLog, 'SPFLASH3'));

  if (t.board.counterStore.kind === 'flash-pages') {
    const expected = initialPageHeader().reduce((a, b) => a + b, 0);
    steps.push({
      title: 'initialise the counter pages',
      args: [...base, '-e', counterPagesExpression()],
      timeoutMs: Math.min(writeTimeout, 30_000),
      advice: notYet,
      judge(run) {
        const text = markerLine(run, 'SPFLASH5');
        if (text === undefined) return { ok: false, why: noAnswer(run, o.port, this.timeoutMs) };
        if (text === 'used sealpost') {
          return {
            ok: false,
            why: 'the counter pages already hold a sealpost counter log: this device has run sealpost firmware, and a fresh log would let its counters repeat under its key',
            advice: 'do not re-flash it: set it aside for inspection',
          };
        }
        if (text === 'used other') {
          return {
            ok: false,
            why: 'the two flash pages the counter log uses hold other data',
            advice: 'if this device never ran sealpost firmware, erase those pages (or the whole chip) and retry; otherwise set it aside',
          };
        }
        if (text === 'nofree' || text === 'small') return { ok: false, why: 'this Espruino build has no two free flash pages for the counter log', advice: 'use an Espruino build with free flash pages for this board' };
        if (text !== `ok ${expected}`) return { ok: false, why: `the counter pages read back wrong (${text})` };
        return { ok: true };
      },
    });
  }

  if (t.kernel) steps.push(checkedFile(`write the kernel ${KERNEL_FILE_NAME}`, KERNEL_FILE_NAME, t.kernel.path, t.kernel.bytes, 'SPFLASH6'));

  // Both renewal kernels in one CLI run (one connection, which over BLE is most of a step's time),
  // each read back as "<length> <CRC-32>" on one line.
  const renewal = t.renewalKernels;
  if (renewal && renewal.length) {
    steps.push({
      title: `write the renewal kernels ${renewal.map((k) => k.name).join(' and ')}`,
      args: [...base, ...renewal.flatMap((k) => ['--storage', `${k.name}:${k.path}`]), '-e', lengthsAndCrcs('SPFLASH7', renewal.map((k) => k.name))],
      timeoutMs: writeTimeout,
      advice: notYet,
      judge(run) {
        const text = markerLine(run, 'SPFLASH7');
        if (text === undefined) return { ok: false, why: noAnswer(run, o.port, this.timeoutMs) };
        const got = text.split(' ');
        for (let i = 0; i < renewal.length; i++) {
          const k = renewal[i]!;
          const [len, crc] = [got[2 * i], got[2 * i + 1]];
          if (Number(len) !== k.bytes.length || Number(crc) >>> 0 !== crc32(k.bytes)) return { ok: false, why: `${k.name} reads back as ${len} bytes with CRC ${crc}, expected ${k.bytes.length} bytes with CRC ${crc32(k.bytes)}` };
        }
        return { ok: true };
      },
    });
  }

  steps.push({
    title: `write the firmware as boot code (${BOOT_CODE_FILE})`,
    args: [...base, '--storage', `${BOOT_CODE_FILE}:${t.firmwarePath}`, '-e', lengthAndCrc('SPFLASH4', BOOT_CODE_FILE)],
    timeoutMs: writeTimeout,
    advice: notYet,
    judge(run) {
      const text = markerLine(run, 'SPFLASH4');
      if (text === undefined) return { ok: false, why: noAnswer(run, o.port, this.timeoutMs) };
      const [len, crc] = text.split(' ');
      if (Number(len) !== t.firmware.length || Number(crc) !== crc32(t.firmware)) return { ok: false, why: `${BOOT_CODE_FILE} reads back as ${len} bytes with CRC ${crc}, expected ${t.firmware.length} bytes with CRC ${crc32(t.firmware)}` };
      return { ok: true };
    },
  });

  const bootLine = /^sealpost (\S+) kcv ([0-9a-f]{6}) fw (\S+)\s*$/;
  const firmwareProblem = /^sealpost(?: \S+)?: /;
  steps.push({
    title: 'restart the device and check its key',
    args: [...base, '-e', 'load()', '--sleep', String(bootWait)],
    timeoutMs: (bootWait + 20) * 1000,
    advice:
      `the firmware may have started already, so do not flash it again: power-cycle the device with a terminal open (npx espruino -p ${o.port}) and check that it prints ` +
      `"sealpost ${t.serial} kcv ${t.kcv}"; if it does not, set the device aside (it must not ship without a confirmed key)`,
    stopWhen: (lines) => lines.some((l) => bootLine.test(l) || firmwareProblem.test(l)),
    judge(run) {
      const problem = run.deviceLines.find((l) => firmwareProblem.test(l));
      const line = run.deviceLines.find((l) => bootLine.test(l));
      if (line === undefined) {
        if (problem !== undefined) return { ok: false, why: `the firmware says: ${redactDeviceText(problem)}` };
        if (run.connectError || run.timedOut) return { ok: false, why: noAnswer(run, o.port, this.timeoutMs) };
        return { ok: false, why: `no boot line "sealpost <serial> kcv <hex> fw <version>" within ${bootWait} s: check that ${t.firmwarePath} is the sealpost firmware for ${t.board.id}. ${noAnswer(run, o.port, this.timeoutMs)}` };
      }
      const [, serial, kcv, fw] = bootLine.exec(line)!;
      if (serial !== t.serial) {
        return {
          ok: false,
          why: `the device reports serial ${serial}, expected ${t.serial}: it is not running with this device file`,
          advice: 'do not ship it: set it aside for inspection (its firmware has run, so it cannot simply be flashed again)',
        };
      }
      if (kcv !== t.kcv) {
        return {
          ok: false,
          why: `the device reports key check value ${kcv} for ${serial}, expected ${t.kcv}: the key on the device is not this device file's key`,
          advice: 'do not ship it: set it aside for inspection (its firmware has run, so it cannot simply be flashed again)',
        };
      }
      return { ok: true, note: `serial ${serial}, kcv ${kcv}, firmware ${fw}` };
    },
  });
  return steps;
}

export interface StepReport {
  index: number;
  total: number;
  title: string;
  outcome: StepOutcome;
}

export interface FlashReport {
  ok: boolean;
  steps: StepReport[];
  /** The operator's message for the failed step. */
  failure?: string;
}

/** Runs the steps in order and stops at the first failure. `onStep` sees each step's result as it ends. */
export async function flashThroughPort(t: FlashTarget, o: PortOptions, run: EspruinoRunner, onStep?: (r: StepReport) => void): Promise<FlashReport> {
  const counterLogPath = join(o.workDir, COUNTER_LOG_NAME);
  if (t.counterLog) writeFileSync(counterLogPath, t.counterLog, { mode: 0o644 });
  const steps = planPortFlash(t, o, counterLogPath);
  const reports: StepReport[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const result = await run(step.args, { timeoutMs: step.timeoutMs, cwd: o.workDir, stopWhen: step.stopWhen });
    const report: StepReport = { index: i + 1, total: steps.length, title: step.title, outcome: step.judge(result) };
    reports.push(report);
    onStep?.(report);
    if (!report.outcome.ok) {
      return { ok: false, steps: reports, failure: `step ${report.index}/${report.total} (${step.title}) failed: ${report.outcome.why} — ${report.outcome.advice ?? step.advice}` };
    }
  }
  return { ok: true, steps: reports };
}

/** The espruino CLI arguments for the Storage hex of one device. */
export function planHex(t: FlashTarget, counterLogPath: string, hexPath: string): string[] {
  return [
    '--board',
    t.espruino.json,
    '--storage',
    `${DEVICE_FILE_NAME}:${t.devicePath}`,
    ...(t.counterLog ? ['--storage', `${COUNTER_LOG_NAME}:${counterLogPath}`] : []),
    ...(t.kernel ? ['--storage', `${KERNEL_FILE_NAME}:${t.kernel.path}`] : []),
    ...(t.renewalKernels ?? []).flatMap((k) => ['--storage', `${k.name}:${k.path}`]),
    '--storage',
    `${BOOT_CODE_FILE}:-`,
    t.firmwarePath,
    '--ohex',
    hexPath,
  ];
}

export interface HexReport {
  out: string;
  address: number;
  size: number;
  files: { name: string; length: number }[];
}

/**
 * Writes OUT (mode 0600: it holds the device's key) with the Storage area of
 * one device as Intel HEX, made by the espruino CLI and checked here: the
 * area holds exactly sealpost.dev (equal to the device file), sealpost.ctr
 * where the board needs it (magic, then erased), sealpost.krn on native-kernel
 * boards (equal to the committed kernel image), sealpost.c25 and sealpost.hkd
 * on boards that renew with the kernels (equal to theirs) and .bootcde (equal
 * to the firmware).
 */
export async function writeStorageHex(t: FlashTarget, out: string, run: EspruinoRunner): Promise<HexReport> {
  if (NO_SWD_HEX[t.board.id]) throw new FlashError(`--ohex: ${NO_SWD_HEX[t.board.id]}`);
  const area = t.espruino.storage;
  if (!area) throw new FlashError(`--ohex: ${t.espruino.json} has no chip.saved_code, so the Storage area is unknown`);
  const work = mkdtempSync(join(tmpdir(), 'sealpost-hex-'));
  try {
    const ctrPath = join(work, COUNTER_LOG_NAME);
    if (t.counterLog) writeFileSync(ctrPath, t.counterLog);
    const hexPath = join(work, 'storage.hex');
    const result = await run(planHex(t, ctrPath, hexPath), { timeoutMs: 60_000, cwd: work });
    if (!existsSync(hexPath)) {
      const said = `${result.stderr}\n${result.stdout}`.split('\n').filter((l) => /error/i.test(l)).slice(0, 3).map(redactDeviceText);
      throw new FlashError(`the espruino CLI wrote no hex${result.timedOut ? ' (timed out)' : ''}${said.length ? `: ${said.join(' | ')}` : ''}`);
    }
    const text = readFileSync(hexPath, 'latin1');
    const image = parseIntelHex(text);
    if (image.start !== area.address || image.end !== area.address + area.size) {
      throw new FlashError(`the hex covers 0x${image.start.toString(16)}..0x${image.end.toString(16)}, expected the Storage area 0x${area.address.toString(16)}..0x${(area.address + area.size).toString(16)}`);
    }
    const files = parseStorage(image.read(area.address, area.size));
    const device = readFileSync(t.devicePath);
    const expected: [string, Uint8Array][] = [
      [DEVICE_FILE_NAME, device],
      ...(t.counterLog ? [[COUNTER_LOG_NAME, t.counterLog] as [string, Uint8Array]] : []),
      ...(t.kernel ? [[KERNEL_FILE_NAME, t.kernel.bytes] as [string, Uint8Array]] : []),
      ...(t.renewalKernels ?? []).map((k) => [k.name, k.bytes] as [string, Uint8Array]),
      [BOOT_CODE_FILE, t.firmware],
    ];
    try {
      if (files.length !== expected.length || expected.some(([name], i) => files[i]?.name !== name)) {
        throw new FlashError(`the hex holds Storage files ${files.map((f) => f.name).join(', ')}, expected ${expected.map(([n]) => n).join(', ')}`);
      }
      for (const [name, data] of expected) {
        const f = files.find((x) => x.name === name)!;
        if (f.flags !== 0 || Buffer.compare(Buffer.from(f.data), Buffer.from(data)) !== 0) throw new FlashError(`${name} in the hex differs from what was given to the espruino CLI`);
      }
    } finally {
      device.fill(0);
      for (const f of files) f.data.fill(0);
    }
    writeFileAtomic(resolve(out), text, 0o600);
    return { out: resolve(out), address: area.address, size: area.size, files: expected.map(([name, data]) => ({ name, length: data.length })) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A private scratch directory for one flash run (removed by the caller). */
export function makeWorkDir(): string {
  return mkdtempSync(join(tmpdir(), 'sealpost-flash-'));
}
