// The import rules of docs/layout.md, checked over every source file: which
// room may import which (protocol/ imports only protocol/, hal/ never imports
// firmware/, firmware/ sees only hal interfaces, protocol/wire and boards, and
// only the entries in firmware/targets/ pick a HAL). Imports are read with
// TypeScript's parser (import, import type, export ... from, import(), require,
// import x = require, import('x').T), so comments and strings never count.
// test/tools/import-rules.test.ts runs it as part of `npm test`; by hand:
//     npx tsx tools/import-rules.ts
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { runAsScript } from './run-as-script.js';

/** A source file, its path relative to the repository root with forward slashes. */
export interface SourceFile {
  path: string;
  text: string;
}

export interface ImportRef {
  /** 1-based line of the import in its file. */
  line: number;
  /** The module specifier as written. */
  specifier: string;
  /** The imported file relative to the root, or undefined for a package or Node builtin. */
  target: string | undefined;
  /** Only types come through it (erased at compile time). */
  typeOnly: boolean;
}

export interface Rule {
  /** The rule as docs/layout.md states it. */
  name: string;
  applies(file: string): boolean;
  allows(imp: ImportRef, file: string): boolean;
}

export interface Violation {
  file: string;
  line: number;
  specifier: string;
  target: string | undefined;
  rule: string;
}

const under = (target: string | undefined, ...rooms: string[]) => target !== undefined && rooms.some((r) => (r.endsWith('/') ? target.startsWith(r) : target === r));
/** The HAL implementations: only an entry chooses among them. */
const HAL_IMPLEMENTATIONS = ['hal/espruino/', 'hal/plain/', 'hal/sim/', 'hal/ccm.ts'];
/** A kernel's generated description (size, CRC, entry offsets): what an entry hands the kernel backend. */
const KERNEL_IMAGE = (t: string | undefined) => t !== undefined && /^kernel\/[^/]+\/image\.ts$/.test(t);
const BOARD_FILES = (t: string | undefined) => under(t, 'boards/') && t !== 'boards/index.ts';
/** The interpreter's own modules, which only hal/espruino/globals.ts may require. */
const ESPRUINO_MODULES = new Set(['crypto', 'Flash', 'Storage']);
/** Key renewal's crypto on @noble for the simulator and Node tests: a HAL piece no bundle carries (tsconfig.firmware.json excludes it). */
const NODE_ONLY_HAL = 'hal/plain/renewal-crypto.ts';

export const RULES: readonly Rule[] = [
  {
    name: 'protocol/ imports only protocol/, npm packages and node: builtins',
    applies: (f) => f.startsWith('protocol/') && !f.startsWith('protocol/wire/'),
    allows: (i) => i.target === undefined || under(i.target, 'protocol/'),
  },
  {
    name: 'protocol/wire/ imports only protocol/wire/ (the ES5 subset the firmware carries: no packages)',
    applies: (f) => f.startsWith('protocol/wire/'),
    allows: (i) => under(i.target, 'protocol/wire/'),
  },
  {
    name: "hal/ imports only hal/ and protocol/wire/ (never firmware/, sim/, server/, relay/, factory/ or packages; hal/espruino/globals.ts alone requires the interpreter's modules; hal/plain/renewal-crypto.ts, Node only and in no bundle, also protocol/, packages and node: builtins)",
    applies: (f) => f.startsWith('hal/'),
    allows: (i, f) =>
      under(i.target, 'hal/', 'protocol/wire/') ||
      (f === 'hal/espruino/globals.ts' && ESPRUINO_MODULES.has(i.specifier)) ||
      (f === NODE_ONLY_HAL && (i.target === undefined || under(i.target, 'protocol/'))),
  },
  {
    name: 'the device HAL (hal/espruino/, hal/plain/, hal/types.ts, hal/ccm.ts) never imports hal/sim/',
    applies: (f) => f.startsWith('hal/') && !f.startsWith('hal/sim/'),
    allows: (i) => !under(i.target, 'hal/sim/'),
  },
  {
    name: 'firmware/ outside firmware/targets/ imports only firmware/, hal/types.ts, hal/features.ts (the build switches), protocol/wire/ and boards/ (not boards/index.ts): every HAL piece, CCM included, comes through the Hal',
    applies: (f) => f.startsWith('firmware/') && !f.startsWith('firmware/targets/'),
    allows: (i) => (under(i.target, 'firmware/') && !under(i.target, 'firmware/targets/')) || under(i.target, 'hal/types.ts', 'hal/features.ts', 'protocol/wire/') || BOARD_FILES(i.target),
  },
  {
    name: "firmware/targets/ imports only firmware/, hal/, protocol/wire/, boards/ (not boards/index.ts) and a kernel's image.ts",
    applies: (f) => f.startsWith('firmware/targets/'),
    allows: (i) => under(i.target, 'firmware/', 'hal/', 'protocol/wire/') || BOARD_FILES(i.target) || KERNEL_IMAGE(i.target),
  },
  {
    name: 'firmware/ is imported only by firmware/, sim/, bench/ and test/: host tools take the formats they share with it from protocol/',
    applies: (f) => !under(f, 'firmware/', 'sim/', 'bench/', 'test/'),
    allows: (i) => !under(i.target, 'firmware/'),
  },
  {
    name: 'boards/ imports only boards/ and hal/types.ts',
    applies: (f) => f.startsWith('boards/'),
    allows: (i) => under(i.target, 'boards/', 'hal/types.ts'),
  },
  {
    name: 'only the entries pick a HAL: hal/espruino/, hal/plain/, hal/sim/ and hal/ccm.ts are imported only by hal/, firmware/targets/, bench/ and test/ (and hal/sim/ by sim/, the simulated world)',
    applies: (f) => !under(f, 'hal/', 'firmware/targets/', 'bench/', 'test/'),
    allows: (i, f) => !under(i.target, ...HAL_IMPLEMENTATIONS) || (f.startsWith('sim/') && under(i.target, 'hal/sim/')),
  },
  {
    name: 'kernel/ imports only kernel/, tools/run-as-script.ts and node: builtins: the kernel build and the images it writes stand apart from the code that loads them',
    applies: (f) => f.startsWith('kernel/'),
    allows: (i) => under(i.target, 'kernel/', 'tools/run-as-script.ts') || (i.target === undefined && i.specifier.startsWith('node:')),
  },
  {
    name: "only the entries read the interpreter's globals: hal/espruino/globals.ts is imported for more than its types only by firmware/targets/",
    applies: (f) => !f.startsWith('firmware/targets/'),
    allows: (i) => i.target !== 'hal/espruino/globals.ts' || i.typeOnly,
  },
];

const SOURCE = /\.(ts|mts|cts|tsx|js|mjs|cjs)$/;

function scriptKind(path: string): ts.ScriptKind {
  if (path.endsWith('.tsx')) return ts.ScriptKind.TSX;
  return /\.[mc]?ts$/.test(path) ? ts.ScriptKind.TS : ts.ScriptKind.JS;
}

/**
 * The repository file an import names: `./x.js` is `x.ts` when that exists
 * (TypeScript's bundler resolution), a folder its index. A path that matches
 * no known file is returned with `.js` read as `.ts`, the repository's
 * convention, so the rules still see its room.
 */
export function resolveImport(from: string, specifier: string, known: ReadonlySet<string>): string | undefined {
  if (!specifier.startsWith('.') && !specifier.startsWith('/')) return undefined;
  const p = posix.normalize(posix.join(posix.dirname(from), specifier));
  const candidates = [p, p.replace(/\.js$/, '.ts'), p.replace(/\.js$/, '.tsx'), p.replace(/\.mjs$/, '.mts'), p.replace(/\.cjs$/, '.cts'), `${p}.ts`, `${p}/index.ts`];
  return candidates.find((c) => known.has(c)) ?? p.replace(/\.js$/, '.ts');
}

function allTypes(elements: ts.NodeArray<ts.ImportSpecifier | ts.ExportSpecifier>): boolean {
  return elements.length > 0 && elements.every((e) => e.isTypeOnly);
}

/** Every import of `file`, resolved against `known` (the repository's paths). */
export function importsOf(file: SourceFile, known: ReadonlySet<string> = new Set()): ImportRef[] {
  const sf = ts.createSourceFile(file.path, file.text, ts.ScriptTarget.Latest, true, scriptKind(file.path));
  const found: ImportRef[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, typeOnly: boolean) => {
    if (!spec || !ts.isStringLiteralLike(spec)) return;
    found.push({
      line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1,
      specifier: spec.text,
      target: resolveImport(file.path, spec.text, known),
      typeOnly,
    });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const typeOnly = !!clause && (clause.isTypeOnly || (!clause.name && !!clause.namedBindings && ts.isNamedImports(clause.namedBindings) && allTypes(clause.namedBindings.elements)));
      add(node, node.moduleSpecifier, typeOnly);
    } else if (ts.isExportDeclaration(node)) {
      const typeOnly = node.isTypeOnly || (!!node.exportClause && ts.isNamedExports(node.exportClause) && allTypes(node.exportClause.elements));
      add(node, node.moduleSpecifier, typeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal as ts.Expression, true);
    } else if (ts.isCallExpression(node) && node.arguments.length >= 1) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** Every import of `files` that breaks a rule, in file and line order. */
export function checkImports(files: readonly SourceFile[], rules: readonly Rule[] = RULES): Violation[] {
  const known = new Set(files.map((f) => f.path));
  const out: Violation[] = [];
  for (const file of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    const active = rules.filter((r) => r.applies(file.path));
    if (active.length === 0) continue;
    for (const imp of importsOf(file, known)) {
      for (const rule of active) {
        if (!rule.allows(imp, file.path)) out.push({ file: file.path, line: imp.line, specifier: imp.specifier, target: imp.target, rule: rule.name });
      }
    }
  }
  return out;
}

export function formatViolation(v: Violation): string {
  const what = v.target === undefined ? 'a package' : v.target;
  return `${v.file}:${v.line}: import '${v.specifier}' (${what}) breaks the rule: ${v.rule}`;
}

/** Folders that hold no source of ours: dependencies and build output. */
const SKIP = new Set(['node_modules', 'dist', 'build', 'coverage']);

/** Every source file under `root`, outside dependencies, build output and dot-folders. */
export function repoSources(root: string): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string, rel: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || SKIP.has(entry.name)) continue;
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(join(dir, entry.name), path);
      else if (entry.isFile() && SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push({ path, text: readFileSync(join(dir, entry.name), 'utf8') });
    }
  };
  walk(root, '');
  return files;
}

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

if (runAsScript(import.meta.url)) {
  const violations = checkImports(repoSources(REPO_ROOT));
  for (const v of violations) process.stderr.write(`${formatViolation(v)}\n`);
  process.exitCode = violations.length > 0 ? 1 : 0;
}
