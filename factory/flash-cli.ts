// `sealpost flash`: parse arguments, call factory/flash.ts, print what
// happened and what to do next. Prints serials, key check values and file
// names only; device output is shown only through redactDeviceText().
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { runEspruinoCli, type EspruinoRunner } from './espruino-cli.js';
import { flashThroughPort, loadFlashTarget, makeWorkDir, writeStorageHex } from './flash.js';
import { numberOption, parseFlags, required, stringOption, UsageError } from '../cli/args.js';
import { packageRoot } from '../cli/package-root.js';

/** The command; `runner` is replaceable for tests. */
export async function flashCommand(args: string[], runner: EspruinoRunner = runEspruinoCli): Promise<number> {
  const { values } = parseFlags(
    args,
    {
      port: { type: 'string', short: 'p' },
      ohex: { type: 'string' },
      device: { type: 'string' },
      firmware: { type: 'string' },
      kernel: { type: 'string' },
      board: { type: 'string' },
      timeout: { type: 'string' },
    },
    0,
  );
  const port = stringOption(values, 'port');
  const ohex = stringOption(values, 'ohex');
  if ((port === undefined) === (ohex === undefined)) throw new UsageError('give either --port PORT (flash a device) or --ohex FILE.hex (write an SWD hex), not both or neither');
  if (port === '' || ohex === '') throw new UsageError('--port and --ohex need a value');
  const device = required(values, 'device');
  const board = stringOption(values, 'board');
  if (ohex !== undefined && board === undefined) throw new UsageError('--ohex needs --board BOARD');
  const timeoutS = numberOption(values, 'timeout', { min: 1, max: 600, whole: true, unit: 'seconds' }, 60);
  const firmware = stringOption(values, 'firmware');

  // Without --firmware, the board's bundle in this package's dist/.
  const target = loadFlashTarget({ devicePath: device, board, firmware, kernel: stringOption(values, 'kernel'), distDir: join(packageRoot(), 'dist') });

  if (ohex !== undefined) {
    const r = await writeStorageHex(target, ohex, runner);
    console.log(`wrote ${r.out} (mode 0600: it holds the device key) for ${target.serial} (batch ${target.batch}, ${target.board.name})`);
    console.log(`  Storage area 0x${r.address.toString(16)}..0x${(r.address + r.size).toString(16)}: ${r.files.map((f) => `${f.name} ${f.length} B`).join(', ')}`);
    console.log(`  expected boot line after programming: sealpost ${target.serial} kcv ${target.kcv}`);
    console.log('next: program it with the Espruino 2v29 firmware hex over SWD, set APPROTECT, then delete this file');
    return 0;
  }

  const workDir = makeWorkDir();
  try {
    console.log(`flashing ${target.serial} (batch ${target.batch}, ${target.board.name}) on ${port}`);
    const report = await flashThroughPort(target, { port: port!, workDir, timeoutS }, runner, (r) => {
      if (r.outcome.ok) console.log(`  step ${r.index}/${r.total} ${r.title}: ok${r.outcome.note ? ` (${r.outcome.note})` : ''}`);
    });
    if (!report.ok) {
      console.error(`sealpost flash: ${target.serial}: ${report.failure}`);
      return 1;
    }
    console.log(`done: ${target.serial} holds its key (kcv ${target.kcv} confirmed by the device); its console is closed by the firmware`);
    return 0;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
