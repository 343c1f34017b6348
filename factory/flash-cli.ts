// `sealpost flash`: parse arguments, call factory/flash.ts, print what
// happened and what to do next. Prints serials, key check values and file
// names only; device output is shown only through redactDeviceText().
import { rmSync } from 'node:fs';
import { runEspruinoCli, type EspruinoRunner } from './espruino-cli.js';
import { FlashError, flashThroughPort, loadFlashTarget, makeWorkDir, writeStorageHex } from './flash.js';
import { parseFlags, required, UsageError, withUsage } from '../cli/args.js';

export const FLASH_USAGE = [
  'sealpost flash --port PORT --device OUT/BATCH/devices/SERIAL.dev [--firmware dist/BOARD.js] [--board BOARD] [--timeout SECONDS]',
  '       sealpost flash --ohex FILE.hex --device OUT/BATCH/devices/SERIAL.dev --board BOARD [--firmware dist/BOARD.js]',
].join('\n');

function seconds(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < 1 || n > 600) throw new UsageError(`--${name} expects whole seconds from 1 to 600, got "${String(value)}"`);
  return n;
}

/** The command; `runner` is replaceable for tests. */
export async function flashCommand(args: string[], runner: EspruinoRunner = runEspruinoCli): Promise<number> {
  return withUsage('flash', FLASH_USAGE, async () => {
    const { values, positionals } = parseFlags(args, {
      port: { type: 'string', short: 'p' },
      ohex: { type: 'string' },
      device: { type: 'string' },
      firmware: { type: 'string' },
      board: { type: 'string' },
      timeout: { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const port = typeof values.port === 'string' ? values.port : undefined;
    const ohex = typeof values.ohex === 'string' ? values.ohex : undefined;
    if ((port === undefined) === (ohex === undefined)) throw new UsageError('give either --port PORT (flash a device) or --ohex FILE.hex (write an SWD hex), not both or neither');
    if (port === '' || ohex === '') throw new UsageError('--port and --ohex need a value');
    const device = required(values, 'device');
    if (ohex !== undefined && values.board === undefined) throw new UsageError('--ohex needs --board BOARD');
    const timeoutS = seconds(values.timeout, 'timeout', 60);
    const board = typeof values.board === 'string' ? values.board : undefined;
    const firmware = typeof values.firmware === 'string' ? values.firmware : undefined;

    let target;
    try {
      target = loadFlashTarget({ devicePath: device, board, firmware });
    } catch (e) {
      if (e instanceof FlashError) {
        console.error(`sealpost flash: ${e.message}`);
        return 1;
      }
      throw e;
    }

    if (ohex !== undefined) {
      try {
        const r = await writeStorageHex(target, ohex, runner);
        console.log(`wrote ${r.out} (mode 0600: it holds the device key) for ${target.serial} (batch ${target.batch}, ${target.board.name})`);
        console.log(`  Storage area 0x${r.address.toString(16)}..0x${(r.address + r.size).toString(16)}: ${r.files.map((f) => `${f.name} ${f.length} B`).join(', ')}`);
        console.log(`  expected boot line after programming: sealpost ${target.serial} kcv ${target.kcv}`);
        console.log('next: program it with the Espruino 2v29 firmware hex over SWD, set APPROTECT, then delete this file');
        return 0;
      } catch (e) {
        if (e instanceof FlashError) {
          console.error(`sealpost flash: ${e.message}`);
          return 1;
        }
        throw e;
      }
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
  });
}
