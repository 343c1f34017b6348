// Espruino's Linux build (ESPRUINO_BIN, built by hand, README) as a child
// process for the opt-in real-interpreter tests: Storage set up by a script
// run first in the same directory (the build keeps its flash in
// ./espruino.flash), then a session whose console lines arrive cleaned of
// the prompt and its escape codes.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Session {
  lines: string[];
  send(code: string): void;
  waitFor(pred: (line: string) => boolean, ms?: number): Promise<string>;
  stop(): Promise<void>;
}

/** Writes `files` into the Storage of an interpreter run in `dir`. */
export function writeStorage(bin: string, dir: string, files: Record<string, Uint8Array>): void {
  const script = Object.entries(files)
    .map(([name, b]) => `require("Storage").write(${JSON.stringify(name)}, new Uint8Array([${Array.from(b).join(',')}]));\n`)
    .join('');
  writeFileSync(join(dir, 'setup.js'), script);
  execFileSync(bin, ['setup.js'], { cwd: dir, input: '' });
}

/**
 * Writes `files` into Storage in 1 KB pieces, each by its own run (Storage.write(name, piece,
 * offset, size)), so no run holds a whole file in RAM: the 2,630-variable builds run out of memory
 * on an 8 KB array literal. Erased pieces after the first are skipped.
 */
export function writeStorageInPieces(bin: string, dir: string, files: Record<string, Uint8Array>): void {
  for (const [name, bytes] of Object.entries(files)) {
    for (let off = 0; off < bytes.length; off += 1024) {
      const piece = bytes.subarray(off, off + 1024);
      if (off > 0 && piece.every((b) => b === 0xff)) continue;
      writeFileSync(join(dir, 'setup.js'), `require("Storage").write(${JSON.stringify(name)}, new Uint8Array([${Array.from(piece).join(',')}]), ${off}, ${bytes.length});\n`);
      execFileSync(bin, ['setup.js'], { cwd: dir, input: '', timeout: 60_000, killSignal: 'SIGKILL' });
    }
  }
}

/**
 * Storage as a board holds it: `files` (a bundle as .bootcde: function bodies stay in flash; uploaded
 * as a script, a bundle does not fit a 2,630-variable build), and `boot0` written last and in one run,
 * since the Linux build runs .boot0 before any script it is given.
 */
export function flashLikeABoard(bin: string, dir: string, files: Record<string, Uint8Array>, boot0: string): void {
  writeStorageInPieces(bin, dir, files);
  writeFileSync(join(dir, 'setup.js'), `require("Storage").write(".boot0", ${JSON.stringify(boot0)});\n`);
  execFileSync(bin, ['setup.js'], { cwd: dir, input: '', timeout: 60_000, killSignal: 'SIGKILL' });
}

/** Calls `onLine` with each console line of the interpreter's output, cleaned of the prompt and its escape codes. */
export function consoleLines(output: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  output.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r/g, '').replace(/^(>|\x1b\[J)+/, '');
      buf = buf.slice(i + 1);
      onLine(line);
    }
  });
}

/**
 * Runs `file` in `dir` on the interpreter, or, without one, boots from Storage as a board does
 * (.boot0, then .bootcde); stop() kills it (a power loss).
 */
export function startEspruino(bin: string, dir: string, file?: string): Session {
  const child = spawn(bin, file === undefined ? [] : [file], { cwd: dir });
  const lines: string[] = [];
  const waiters: Array<{ pred: (l: string) => boolean; done: (l: string) => void }> = [];
  consoleLines(child.stdout, (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) (w.pred(line) ? w.done(line) : waiters.push(w));
  });
  return {
    lines,
    send: (code) => child.stdin.write(code + '\n'),
    waitFor: (pred, ms = 10_000) =>
      new Promise((resolve, reject) => {
        const hit = lines.find(pred);
        if (hit) return resolve(hit);
        const timer = setTimeout(() => reject(new Error(`timed out; output so far:\n${lines.join('\n')}`)), ms);
        waiters.push({ pred, done: (l) => (clearTimeout(timer), resolve(l)) });
      }),
    stop: () =>
      new Promise((resolve) => {
        child.on('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
