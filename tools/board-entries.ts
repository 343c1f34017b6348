// Generates the Espruino board entries (firmware/targets/<board>.ts) from the
// board profiles (boards/<board>.ts), so a profile and its entry cannot say
// different things: the profile's crypto backend, counter store, radio and
// sensors choose the entry's HAL pieces, and nothing else does.
// test/tools/board-entries.test.ts fails when a committed entry differs from
// what this writes. Run after changing a profile:
//     npx tsx tools/board-entries.ts          (writes the entries)
//     npx tsx tools/board-entries.ts --check  (exit 1 when one is stale)
// The sim target's entry (firmware/targets/sim.ts) is written by hand: it runs
// under Node on the simulated world, not on the interpreter.
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { BOARDS } from '../boards/index.js';
import type { BoardProfile, SensorId } from '../boards/types.js';
import type { CryptoBackend } from '../hal/types.js';
import { IMAGE } from '../kernel/aes-ccm/image.js';
import { runAsScript } from './run-as-script.js';

/**
 * The builtins an entry reads through hal/espruino/globals.ts, each once, into
 * a local named as on the interpreter (require("Storage") as Storage).
 */
type Builtin = 'E' | 'NRF' | 'Storage' | 'Flash' | 'Puck' | 'Bangle';

const BUILTINS: Record<Builtin, { accessor: string; read: string; type?: string }> = {
  E: { accessor: 'espruinoE', read: 'espruinoE()' },
  NRF: { accessor: 'nrf', read: 'nrf()' },
  Storage: { accessor: 'storageModule', read: 'storageModule()' },
  Flash: { accessor: 'flashModule', read: 'flashModule()' },
  Puck: { accessor: 'boardGlobal', read: "boardGlobal<PuckGlobal>('Puck')", type: 'PuckGlobal' },
  Bangle: { accessor: 'boardGlobal', read: "boardGlobal<BangleGlobal>('Bangle')", type: 'BangleGlobal' },
};

/**
 * The CryptoHal each backend gets on a board (hal/espruino/crypto-hal.ts; the compiled kernel's in
 * hal/espruino/kernel.ts, given the image's length, CRC, entry offsets and context size from
 * kernel/aes-ccm/image.ts written out as numbers: a bundle then carries no object with key names).
 */
const CRYPTO: Record<CryptoBackend, string> = {
  'native-ccm': 'nativeCcmCrypto(cryptoAes())',
  'native-aes': 'nativeAesCrypto(cryptoAes())',
  // The order of KernelImage (hal/espruino/kernel.ts, imageNumbers).
  'native-kernel': `kernelCrypto(E, Storage, [${[IMAGE.size, IMAGE.crc32, IMAGE.entries.aes_ccm_init, IMAGE.entries.aes_ccm_seal, IMAGE.entries.aes_ccm_ack, IMAGE.entries.aes_block, IMAGE.constants.CTX_SIZE].join(', ')}])`,
  'plain-js': 'plainCrypto()',
};

/**
 * The Espruino driver for each sensor a profile may list (hal/espruino/sensors.ts),
 * with the builtin it reads. light, magnetometer and acceleration are the only
 * such sensors of the boards supported today (Puck.js, Bangle.js 2); humidity
 * and pressure exist in the simulation only.
 */
const SENSORS: Partial<Record<SensorId, { driver: string; builtin: Builtin }>> = {
  temperature: { driver: 'temperatureSensor', builtin: 'E' },
  battery: { driver: 'batterySensor', builtin: 'E' },
  battery_voltage: { driver: 'batteryVoltageSensor', builtin: 'NRF' },
  light: { driver: 'puckLightSensor', builtin: 'Puck' },
  magnetometer: { driver: 'puckMagnetometer', builtin: 'Puck' },
  acceleration: { driver: 'bangleAcceleration', builtin: 'Bangle' },
};

/** Boards that get a generated entry: every profile with a firmware bundle. */
export function espruinoBoards(): BoardProfile[] {
  return BOARDS.filter((b) => b.radio !== 'sim');
}

export function entryPath(board: BoardProfile): string {
  return `firmware/targets/${board.id}.ts`;
}

function importLine(names: string[], from: string): string {
  return `import { ${[...new Set(names)].sort((a, b) => a.replace(/^type /, '').localeCompare(b.replace(/^type /, ''))).join(', ')} } from '${from}';`;
}

/** The source of `board`'s entry. Throws for a profile the Espruino HAL cannot serve. */
export function entrySource(board: BoardProfile): string {
  if (board.radio === 'sim') throw new Error(`board ${board.id}: the sim target's entry is firmware/targets/sim.ts, not generated`);
  const consoleRadio = board.radio === 'console';
  const used = new Set<Builtin>(['E', 'Storage']);
  const base = ['espruinoClock', 'espruinoCrc32', consoleRadio ? 'openConsole' : 'lockedConsole', 'storageReader'];
  const globals = ['cancelTimeout', 'printLine', 'secondsNow', 'timeout'];
  const firmware: string[] = [];

  const crypto = CRYPTO[board.crypto];
  const kernel = board.crypto === 'native-kernel';
  if (board.crypto !== 'plain-js' && !kernel) globals.push('cryptoAes');

  let counters: string[];
  if (board.counterStore.kind === 'storage-log') {
    base.push('storageLog');
    firmware.push("import { createLogCounters } from '../counter-log.js';");
    counters = ['      return createLogCounters(storageLog(Storage), block);'];
  } else {
    used.add('Flash');
    base.push('flashPages');
    firmware.push("import { createPageCounters } from '../counter-pages.js';");
    counters = ['      const m = flashPages(Flash);', '      return createPageCounters(m.flash, m.pages, block, true);'];
  }

  let radio: string;
  if (consoleRadio) {
    globals.push('exposeGlobal');
    radio = 'consoleRadio(printLine(), exposeGlobal)';
  } else {
    used.add('NRF');
    radio = 'bleRadio(NRF)';
  }

  const sensors = board.device.sensors.map((id) => {
    const s = SENSORS[id];
    if (!s) throw new Error(`board ${board.id}: no Espruino driver for sensor "${id}" (hal/espruino/sensors.ts; add it to SENSORS in tools/board-entries.ts)`);
    used.add(s.builtin);
    return `${id}: ${s.driver}(${s.builtin})`;
  });

  const builtinOrder: Builtin[] = ['E', 'NRF', 'Storage', 'Flash', 'Puck', 'Bangle'];
  const builtins = builtinOrder.filter((b) => used.has(b));
  for (const b of builtins) {
    globals.push(BUILTINS[b].accessor);
    if (BUILTINS[b].type) globals.push(`type ${BUILTINS[b].type}`);
  }
  // A board's console moves its REPL to LoopbackA when the build has one.
  if (!consoleRadio) globals.push('boardGlobal', 'type LoopbackGlobal');

  const imports = [
    `import { DEVICE } from '../../boards/${board.id}.js';`,
    importLine(base, '../../hal/espruino/base.js'),
    importLine([crypto.slice(0, crypto.indexOf('('))], kernel ? '../../hal/espruino/kernel.js' : '../../hal/espruino/crypto-hal.js'),
    importLine(globals, '../../hal/espruino/globals.js'),
    consoleRadio ? "import { consoleRadio } from '../../hal/espruino/console-radio.js';" : "import { bleRadio } from '../../hal/espruino/radio.js';",
    importLine(
      board.device.sensors.map((id) => SENSORS[id]!.driver),
      '../../hal/espruino/sensors.js',
    ),
    ...firmware,
    "import { startDevice } from '../device.js';",
  ];

  const lines = [
    `// Firmware entry for ${board.id} (built to dist/${board.id}.js), generated from boards/${board.id}.ts by`,
    '// tools/board-entries.ts: do not edit; change the profile and run `npx tsx tools/board-entries.ts`.',
    `// The Espruino HAL with the profile's crypto backend (${board.crypto}), counter store (${board.counterStore.kind}),`,
    `// radio (${board.radio}) and sensors, each driver given the builtins it uses, then the device program.`,
    ...imports,
    '',
    ...builtins.map((b) => `const ${b} = ${BUILTINS[b].read};`),
    '',
    `${consoleRadio ? 'const device = ' : ''}startDevice(`,
    '  {',
    '    clock: espruinoClock(secondsNow(), timeout(), cancelTimeout()),',
    `    radio: ${radio},`,
    `    console: ${consoleRadio ? 'openConsole(printLine())' : "lockedConsole(printLine(), E, boardGlobal<LoopbackGlobal>('LoopbackA'))"},`,
    `    crypto: ${crypto},`,
    '    readFile: storageReader(Storage),',
    '    crc32: espruinoCrc32(E),',
    '    counters: function (block: number) {',
    ...counters,
    '    },',
    `    sensors: { ${sensors.join(', ')} },`,
    '  },',
    '  DEVICE,',
    ');',
  ];
  if (consoleRadio) {
    lines.push(
      '',
      "// A console target's console stays open: `sealpostStatus()` prints the",
      "// device's counters for tests and for a developer at the prompt.",
      "exposeGlobal('sealpostStatus', function () {",
      "  printLine()('STATUS ' + (device ? JSON.stringify(device.status()) : 'stopped'));",
      '});',
    );
  }
  return lines.join('\n') + '\n';
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Entries whose committed text differs from the generated one (empty when all are current). */
export async function staleEntries(): Promise<string[]> {
  const stale: string[] = [];
  for (const board of espruinoBoards()) {
    const path = entryPath(board);
    const committed = await readFile(ROOT + path, 'utf8').catch(() => '');
    if (committed !== entrySource(board)) stale.push(path);
  }
  return stale;
}

async function main(argv: string[]): Promise<number> {
  if (argv.length > 1 || (argv.length === 1 && argv[0] !== '--check')) {
    process.stderr.write('usage: npx tsx tools/board-entries.ts [--check]\n');
    return 2;
  }
  if (argv[0] === '--check') {
    const stale = await staleEntries();
    for (const path of stale) process.stderr.write(`${path} differs from its profile: run npx tsx tools/board-entries.ts\n`);
    return stale.length > 0 ? 1 : 0;
  }
  for (const board of espruinoBoards()) {
    await writeFile(ROOT + entryPath(board), entrySource(board));
    process.stdout.write(`wrote ${entryPath(board)}\n`);
  }
  return 0;
}

if (runAsScript(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
