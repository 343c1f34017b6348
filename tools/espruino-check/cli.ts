// The bundle checker's command line: `sealpost check-bundle FILE.js ...` and,
// run directly, `espruino-check FILE.js ...`. Arguments go through the
// sealpost parser (cli/args.ts); each file is checked by checker.ts.
import { readFile } from 'node:fs/promises';
import { parseFlags, UsageError } from '../../cli/args.js';
import { runAsScript } from '../run-as-script.js';
import { checkSource, formatFinding } from './checker.js';

export interface CliOutput {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

const processOutput: CliOutput = {
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
};

const USAGE = 'usage: espruino-check FILE.js [FILE.js ...]\n' + 'Checks bundles against the language subset of the Espruino 2v29 interpreter.';

/** The files named on the command line (after `--`, names may start with `-`). */
function bundleFiles(argv: string[]): string[] {
  const { positionals } = parseFlags(argv, {});
  if (positionals.length === 0) throw new UsageError('which bundles? name one or more FILE.js (npm run build writes them to dist/)');
  return positionals;
}

/** Checks each file. Exit code: 0 all clean, 1 findings, 2 a file that cannot be read. */
async function checkFiles(files: string[], out: CliOutput, name: string): Promise<number> {
  let code = 0;
  for (const file of files) {
    let bytes: Buffer;
    let source: string;
    try {
      bytes = await readFile(file);
      source = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (e) {
      const reason = e instanceof TypeError ? 'not valid UTF-8' : e instanceof Error ? e.message : String(e);
      out.stderr(`${name}: cannot read ${file}: ${reason}; name a bundle that npm run build wrote (dist/*.js)`);
      code = 2;
      continue;
    }
    const findings = checkSource(source, file);
    for (const f of findings) out.stderr(formatFinding(f));
    if (findings.length === 0) out.stdout(`ok ${file} (${bytes.length} bytes)`);
    else if (code === 0) code = 1;
  }
  return code;
}

// sealpost's commands print through console, like every other command.
const consoleOutput: CliOutput = {
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
};

/** `sealpost check-bundle`: a usage error propagates to cli/main.ts (exit 2 and the usage). */
export async function checkBundles(argv: string[]): Promise<number> {
  return checkFiles(bundleFiles(argv), consoleOutput, 'sealpost check-bundle');
}

/** `espruino-check`, run directly. Exit code: 0 all clean, 1 findings, 2 usage error or unreadable file. */
export async function main(argv: string[], out: CliOutput = processOutput): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    out.stdout(USAGE);
    return 0;
  }
  let files: string[];
  try {
    files = bundleFiles(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    out.stderr(`espruino-check: ${e.message}\n${USAGE}`);
    return 2;
  }
  return checkFiles(files, out, 'espruino-check');
}

if (runAsScript(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
