// README's "Layout" section is the map a newcomer reads: every folder of the
// repository is on it, and every folder on it exists.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../tools/import-rules.js';

/** Folders named at the start of a line of the layout block: `    server/` top level, `      ingest/` inside the last one. */
function layoutFolders(readme: string): string[] {
  const section = readme.slice(readme.indexOf('\n## Layout\n'), readme.indexOf('\n## ', readme.indexOf('\n## Layout\n') + 1));
  const folders: string[] = [];
  let parent = '';
  for (const line of section.split('\n')) {
    const top = /^ {4}([a-z][\w-]*)\/\s/.exec(line);
    const nested = /^ {6}([a-z][\w-]*)\/\s/.exec(line);
    if (top) folders.push((parent = top[1]!));
    else if (nested) folders.push(`${parent}/${nested[1]!}`);
  }
  return folders;
}

describe('README layout', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const listed = layoutFolders(readme);

  it('names every top-level folder that holds tracked files', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n');
    const top = new Set(tracked.filter((f) => f.includes('/') && !f.startsWith('.')).map((f) => f.slice(0, f.indexOf('/'))));
    expect(top.size).toBeGreaterThan(8);
    expect([...top].filter((d) => !listed.includes(d)).sort()).toEqual([]);
  });

  it('names only folders that exist', () => {
    expect(listed.length).toBeGreaterThan(15);
    // build/ is made by `npm run build` and git-ignored; it is on the map so a newcomer knows what it is.
    const missing = listed.filter((d) => d !== 'build' && !(existsSync(join(REPO_ROOT, d)) && statSync(join(REPO_ROOT, d)).isDirectory()));
    expect(missing).toEqual([]);
  });
});
