// `sealpost check-bundle` / `espruino-check`: runs the Espruino subset checker
// (./checker.ts) over bundle files and prints its findings.
import { readFile } from 'node:fs/promises';
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

/** Exit code: 0 all clean, 1 findings, 2 usage error or unreadable file. */
export async function main(argv: string[], out: CliOutput = processOutput): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    out.stdout(USAGE);
    return 0;
  }
  const separator = argv.indexOf('--');
  const options = separator < 0 ? argv : argv.slice(0, separator);
  const unknown = options.find((a) => a.startsWith('-'));
  if (unknown !== undefined) {
    out.stderr(`espruino-check: unknown option ${unknown}\n${USAGE}`);
    return 2;
  }
  const files = separator < 0 ? argv : [...argv.slice(0, separator), ...argv.slice(separator + 1)];
  if (files.length === 0) {
    out.stderr(USAGE);
    return 2;
  }

  let code = 0;
  for (const file of files) {
    let bytes: Buffer;
    let source: string;
    try {
      bytes = await readFile(file);
      source = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (e) {
      const reason = e instanceof TypeError ? 'not valid UTF-8' : e instanceof Error ? e.message : String(e);
      out.stderr(`espruino-check: cannot read ${file}: ${reason}`);
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

if (runAsScript(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
