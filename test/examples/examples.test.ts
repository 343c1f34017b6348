// examples/capacitor and examples/react-native type-checked as the apps they are: each example's files copied into
// a fresh folder whose node_modules holds what its package.json lists (symlinks to this repository's copies) and
// `sealpost` itself (this repository, so `sealpost/relay...` resolve through package.json "exports" to the
// declarations in build/), then `tsc -p` with the example's own tsconfig.json. An example that stops matching the
// package's API, or imports something its package.json does not list, fails here. react-native is not installed
// (its own types ship inside the 37 MB package, with 200 more packages): @types/react-native, the declarations
// published for 0.72, stand in for them (docs/decisions.md, "Relay examples").
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
/** Packages an example lists that are not installed here, and the declarations that stand in for them. */
const STAND_INS: Record<string, string> = { 'react-native': '@types/react-native' };
const dirs: string[] = [];

interface App {
  dir: string;
  /** Listed in package.json but not installed here (tools, native platforms, runtime-only packages). */
  notLinked: string[];
}

/** The example as an app: its files in a fresh folder, node_modules holding what its package.json lists. */
function install(example: string): App {
  const source = join(ROOT, 'examples', example);
  const dir = mkdtempSync(join(tmpdir(), `sealpost-example-${example}-`));
  dirs.push(dir);
  cpSync(source, dir, { recursive: true, filter: (f) => !f.includes('node_modules') });
  const pkg = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
  const notLinked: string[] = [];
  for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).sort()) {
    let target: string | undefined;
    let as = name;
    if (name === 'sealpost') target = ROOT;
    else if (existsSync(join(ROOT, 'node_modules', name))) target = join(ROOT, 'node_modules', name);
    else if (STAND_INS[name]) {
      as = STAND_INS[name];
      target = join(ROOT, 'node_modules', as);
    }
    if (!target) {
      notLinked.push(name);
      continue;
    }
    const link = join(dir, 'node_modules', as);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(target, link, 'dir');
  }
  return { dir, notLinked };
}

/**
 * tsc -p on the app's own tsconfig.json, its diagnostics (one per line) and exit code. With skipLibCheck off, so
 * sealpost's declarations are checked too, against what the app has (no DOM in React Native: fetch and AbortSignal
 * come from react-native's globals). The React Native example's tsconfig turns it on, as react-native's own
 * template does: react-native 0.88.1's declarations have errors of their own under TypeScript 5.9.
 */
function typecheck(dir: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSC, '-p', 'tsconfig.json', '--pretty', 'false', '--skipLibCheck', 'false'], { cwd: dir });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out: out.trim() }));
  });
}

/** The app with one line of one file changed; fails the test if the line is not there. */
function edited(app: App, file: string, from: string, to: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-example-edited-'));
  dirs.push(dir);
  cpSync(app.dir, dir, { recursive: true, verbatimSymlinks: true });
  const text = readFileSync(join(dir, file), 'utf8');
  expect(text).toContain(from);
  writeFileSync(join(dir, file), text.replace(from, to));
  return dir;
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('examples/ type-check against the package as an app installs it', () => {
  it('capacitor: index.html + src/ on @capacitor/core, @capacitor-community/bluetooth-le and sealpost/relay{,/capacitor,/indexeddb}', { timeout: 120_000 }, async () => {
    const app = install('capacitor');
    expect(app.notLinked).toEqual(['@capacitor/android', '@capacitor/cli', '@capacitor/ios']);
    const [good, bad] = await Promise.all([
      typecheck(app.dir),
      // A call the package does not have is an error, not an any.
      typecheck(edited(app, 'src/relay.ts', 'if (scanning) await ble.scan();', 'if (scanning) await ble.scanAll();')),
    ]);
    expect(good.out).toBe('');
    expect(good.code).toBe(0);
    expect(bad.out).toMatch(/^src\/relay\.ts\(\d+,\d+\): error TS2339: Property 'scanAll' does not exist on type 'CapacitorRelay'\./m);
  });

  it('react-native: App.tsx + src/ on react-native, react-native-ble-plx, AsyncStorage and sealpost/relay{,/react-native}', { timeout: 120_000 }, async () => {
    const app = install('react-native');
    expect(app.notLinked).toEqual(['react']);
    const [good, bad] = await Promise.all([
      typecheck(app.dir),
      // AsyncStorage itself is not a queue: KvQueueStore makes it one.
      typecheck(edited(app, 'src/useRelay.ts', 'store: new KvQueueStore(storage),', 'store: storage,')),
    ]);
    expect(good.out).toBe('');
    expect(good.code).toBe(0);
    expect(bad.out).toMatch(/^src\/useRelay\.ts\(\d+,\d+\): error TS2739: Type 'AsyncStorage' is missing the following properties from type 'QueueStore': load, append, remove$/m);
  });
});
