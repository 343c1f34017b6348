// The Espruino 2v29 bundle checker: checkSource parses a file (as a script,
// else as a module) and reports every construct the board's interpreter
// cannot run (docs/espruino-notes.md). The walk (walk.ts) runs the syntax
// rules and records references; the checks here, in shifts.ts and in
// ../espruino-return.ts then judge what it recorded.
import { parse } from 'acorn';
import type { Class, Options, Program } from 'acorn';
import { bareReturnOffsets } from '../espruino-return.js';
import { LineIndex, Reporter, type Finding } from './findings.js';
import { BUILTIN_ERRORS, MISSING_GLOBALS, MISSING_METHODS, MISSING_STATICS, ON_ESPRUINO } from './rules.js';
import { resolve, type Reference, type Resolved, type Scope } from './scope.js';
import { checkShifts } from './shifts.js';
import { walk, type MemberUse } from './walk.js';

export { formatFinding, type Finding } from './findings.js';

const isGlobal = (resolved: Resolved, id: Reference['id']): boolean => resolved.get(id) === null;

function checkGlobals(references: readonly Reference[], resolved: Resolved, out: Reporter): void {
  // An undeclared global the bundle assigns (a polyfill) is the bundle's own definition.
  const assigned = new Set(references.filter((r) => r.write && isGlobal(resolved, r.id)).map((r) => r.id.name));
  for (const r of references) {
    const advice = MISSING_GLOBALS.get(r.id.name);
    if (advice === undefined || !r.read || r.safeRead || !isGlobal(resolved, r.id)) continue;
    if (assigned.has(r.id.name) || r.guards.includes(r.id.name)) continue;
    out.report(r.id.start, 'missing-global', `${r.id.name} is not defined ${ON_ESPRUINO}; ${advice}`);
  }
}

function checkMembers(members: readonly MemberUse[], resolved: Resolved, out: Reporter): void {
  for (const m of members) {
    if (m.safeRead) continue;
    const at = m.node.property.start;
    if (m.object && isGlobal(resolved, m.object)) {
      const name = `${m.object.name}.${m.property}`;
      const advice = MISSING_STATICS.get(name);
      if (advice !== undefined && !m.guards.includes(name)) {
        out.report(at, 'missing-builtin', `${name} does not exist ${ON_ESPRUINO}; ${advice}`);
        continue;
      }
    }
    const method = MISSING_METHODS.get(m.property);
    if (method !== undefined) {
      const [name, advice] = method;
      out.report(at, 'missing-builtin', `${name} does not exist ${ON_ESPRUINO}; ${advice}`);
    }
  }
}

/**
 * A `var` or function used earlier in its own function than its declaration
 * is, on the board, a different variable: the enclosing scope's, or a new
 * global (measured: `function f(){ u = 1; var u; }` sets the global u). Uses
 * from nested functions are left alone, since those usually run later.
 */
function checkHoisting(references: readonly Reference[], out: Reporter): void {
  for (const r of references) {
    const home = r.scope.functionScope();
    for (let s: Scope | null = r.scope; s; s = s.parent) {
      const b = s.bindings.get(r.id.name);
      if (b) {
        if ((b.kind === 'var' || b.kind === 'function') && b.declaredAt > r.id.start) {
          out.report(
            r.id.start,
            'use-before-declaration',
            `${r.id.name} is used before its ${b.kind === 'var' ? 'var' : 'function'} declaration; Espruino 2v29 hoists neither, so this use reaches an outer or global variable: declare it first`,
          );
        }
        break;
      }
      if (s === home) break;
    }
  }
}

function checkClasses(classes: readonly Class[], resolved: Resolved, out: Reporter): void {
  for (const c of classes) {
    const sup = c.superClass;
    if (!sup || sup.type !== 'Identifier' || !BUILTIN_ERRORS.has(sup.name) || !isGlobal(resolved, sup)) continue;
    const name = c.id ? c.id.name : 'anonymous class';
    out.report(
      sup.start,
      'extends-builtin-error',
      `${name} extends ${sup.name}, and super() into a builtin fails ${ON_ESPRUINO}; ` +
        'use a plain class with name and message fields, or create an Error and set fields on it',
    );
  }
}

function checkBareReturns(program: Program, source: string, out: Reporter): void {
  for (const at of bareReturnOffsets(program, source)) {
    out.report(
      at - 6,
      'bare-return',
      `an argument-less return as the whole body of if/else/for, right before "}", is a syntax error ${ON_ESPRUINO}; end it with a semicolon or wrap it in braces`,
    );
  }
}

interface ParseFailure {
  pos: number;
  message: string;
}

function parseFailure(e: unknown): ParseFailure {
  if (e instanceof SyntaxError && typeof (e as { pos?: unknown }).pos === 'number') {
    return { pos: (e as SyntaxError & { pos: number }).pos, message: e.message.replace(/ \(\d+:\d+\)$/, '') };
  }
  throw e;
}

type ParseResult = { ok: true; program: Program } | { ok: false; failure: ParseFailure };

function parseProgram(source: string): ParseResult {
  const options = (sourceType: Options['sourceType']): Options => ({ ecmaVersion: 'latest', sourceType, locations: true });
  try {
    return { ok: true, program: parse(source, options('script')) };
  } catch (scriptError) {
    const asScript = parseFailure(scriptError);
    try {
      return { ok: true, program: parse(source, options('module')) };
    } catch (moduleError) {
      const asModule = parseFailure(moduleError);
      // The parse that got further is the likelier intent; ties go to script, the shape a bundle must have.
      return { ok: false, failure: asModule.pos > asScript.pos ? asModule : asScript };
    }
  }
}

export function checkSource(source: string, file: string): Finding[] {
  const parsed = parseProgram(source);
  if (!parsed.ok) {
    const { line, column } = new LineIndex(source).at(parsed.failure.pos);
    const message = `not valid JavaScript (${parsed.failure.message}); the interpreter cannot load it either`;
    return [{ file, line, column, construct: 'syntax-error', message }];
  }
  const out = new Reporter(source, file);
  const walked = walk(parsed.program, out);
  const resolved = resolve(walked.references);
  // The order findings are made in breaks ties of line, column and construct.
  checkGlobals(walked.references, resolved, out);
  checkMembers(walked.members, resolved, out);
  checkHoisting(walked.references, out);
  checkShifts(walked.shifts, resolved, out);
  checkClasses(walked.classes, resolved, out);
  checkBareReturns(parsed.program, source, out);
  return out.sorted();
}
