import { parse } from 'acorn';
import { bareReturnOffsets } from '../espruino-return.js';
import type {
  AnyNode,
  AssignmentExpression,
  BinaryExpression,
  Class,
  Expression,
  Function as FunctionNode,
  Identifier,
  MemberExpression,
  Node as AcornNode,
  Options,
  Pattern,
  Program,
  VariableDeclaration,
} from 'acorn';

export interface Finding {
  file: string;
  line: number;
  column: number;
  construct: string;
  message: string;
}

export function formatFinding(f: Finding): string {
  return `${f.file}:${f.line}:${f.column}: ${f.construct}: ${f.message}`;
}

const ON_ESPRUINO = 'on Espruino 2v29';

const MISSING_GLOBALS: ReadonlyMap<string, string> = new Map([
  ['BigInt', 'use Number (exact up to 2^53) or pairs of 32-bit words'],
  ['Symbol', 'use plain string property names'],
  ['Map', 'use a plain object with string keys, or parallel arrays'],
  ['Set', 'use a plain object with keys set to true, or an array with indexOf'],
  ['WeakMap', 'store the value on the object itself or in a plain object keyed by an id'],
  ['WeakSet', 'mark the object with a property or keep an array with indexOf'],
  ['Proxy', 'call explicit accessor functions instead'],
  ['Reflect', 'call Object.* functions or Function.prototype.apply directly'],
  ['RangeError', 'throw new Error(...) and set a name/code field if callers must tell errors apart'],
  ['TextEncoder', 'encode with a loop over charCodeAt'],
  ['TextDecoder', 'decode with String.fromCharCode over the bytes'],
]);

const TYPED_ARRAYS = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
];

const MISSING_STATICS: ReadonlyMap<string, string> = new Map([
  ['Array.from', 'copy with a for loop'],
  ['Array.of', 'use an array literal [a, b, ...]'],
  ['Number.isInteger', "use typeof x === 'number' && isFinite(x) && Math.floor(x) === x"],
  ['Math.imul', 'multiply 16-bit halves yourself so no intermediate loses precision, then | 0'],
  ['Math.trunc', 'use x < 0 ? Math.ceil(x) : Math.floor(x)'],
  ['Object.freeze', 'drop the call; freezing is only a development aid'],
  ...TYPED_ARRAYS.flatMap((t): [string, string][] => [
    [`${t}.from`, `use new ${t}(lengthOrArray) and fill it with a loop or .set()`],
    [`${t}.of`, `use new ${t}([a, b, ...])`],
  ]),
]);

/** Flagged on any receiver: the receiver's type is unknown in a bundle. */
const MISSING_METHODS: ReadonlyMap<string, [string, string]> = new Map([
  ['startsWith', ['String.prototype.startsWith', 'use s.indexOf(prefix) === 0']],
  ['finally', ['Promise.prototype.finally', 'pass the clean-up to both arguments of .then(onDone, onFail)']],
]);

const BUILTIN_ERRORS = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError']);

const SHIFT_OPERATORS = new Set(['<<', '>>', '>>>', '<<=', '>>=', '>>>=']);
const LOGICAL_ASSIGNMENT = new Set(['??=', '||=', '&&=']);

const SHIFT_FIX =
  'mask the shift count (n & 31) or use a literal 0..31: the board does not mask shift counts (1<<32 is 0 on ARM, 1 on x86)';

type DeclKind = 'var' | 'let' | 'const' | 'using' | 'await using' | 'param' | 'function' | 'class' | 'catch' | 'import';

interface Binding {
  declarations: number;
  /** Source offset from which the binding exists: Espruino 2v29 hoists neither var nor function declarations. */
  declaredAt: number;
  kind: DeclKind;
  init: Expression | null;
  writes: number;
}

class Scope {
  readonly bindings = new Map<string, Binding>();

  constructor(
    readonly parent: Scope | null,
    readonly isFunction: boolean,
  ) {}

  functionScope(): Scope {
    let s: Scope = this;
    while (!s.isFunction && s.parent) s = s.parent;
    return s;
  }

  declare(name: string, kind: DeclKind, init: Expression | null, at: number): void {
    const existing = this.bindings.get(name);
    if (existing) {
      existing.declarations++;
      existing.init = null;
      existing.declaredAt = Math.min(existing.declaredAt, at);
    } else {
      this.bindings.set(name, { declarations: 1, declaredAt: at, kind, init, writes: 0 });
    }
  }

  /**
   * A declaration later in the same function is not yet visible on the board, so the name falls
   * through to outer scopes; from a nested function it is taken as visible, since that runs later.
   */
  lookup(name: string, at: number): Binding | null {
    const home = this.functionScope();
    for (let s: Scope | null = this; s; s = s.parent) {
      const b = s.bindings.get(name);
      if (b && (b.declaredAt <= at || s.functionScope() !== home)) return b;
    }
    return null;
  }
}

interface Ctx {
  scope: Scope;
  /** Names (`X` or `X.y`) proven present by an enclosing `typeof` test. */
  guards: readonly string[];
}

interface Reference {
  id: Identifier;
  scope: Scope;
  read: boolean;
  write: boolean;
  safeRead: boolean;
  guards: readonly string[];
}

interface MemberUse {
  node: MemberExpression;
  object: Identifier | null;
  property: string;
  safeRead: boolean;
  guards: readonly string[];
}

type PatternMode =
  | { mode: 'declare'; kind: DeclKind; target: Scope; init: Expression | null }
  | { mode: 'assign' };

const ASSIGN: PatternMode = { mode: 'assign' };

function isNode(v: unknown): v is AnyNode {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';
}

function isFunction(n: AnyNode): n is AnyNode & FunctionNode {
  return n.type === 'FunctionDeclaration' || n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression';
}

function staticPropertyName(m: MemberExpression): string | null {
  if (!m.computed && m.property.type === 'Identifier') return m.property.name;
  if (m.computed && m.property.type === 'Literal' && typeof m.property.value === 'string') return m.property.value;
  return null;
}

/** `X` or `X.y` for a typeof operand, the form guards are keyed by. */
function guardName(e: AnyNode): string | null {
  if (e.type === 'Identifier') return e.name;
  if (e.type === 'MemberExpression' && e.object.type === 'Identifier') {
    const p = staticPropertyName(e);
    return p === null ? null : `${e.object.name}.${p}`;
  }
  return null;
}

interface Presence {
  whenTrue: string[];
  whenFalse: string[];
}

/** Which names a condition proves to exist in its true and false branches. */
function presence(test: AnyNode): Presence {
  if (test.type === 'UnaryExpression' && test.operator === '!') {
    const p = presence(test.argument);
    return { whenTrue: p.whenFalse, whenFalse: p.whenTrue };
  }
  if (test.type === 'LogicalExpression' && test.operator === '&&') {
    return { whenTrue: [...presence(test.left).whenTrue, ...presence(test.right).whenTrue], whenFalse: [] };
  }
  if (test.type === 'LogicalExpression' && test.operator === '||') {
    return { whenTrue: [], whenFalse: [...presence(test.left).whenFalse, ...presence(test.right).whenFalse] };
  }
  if (test.type === 'BinaryExpression' && ['===', '==', '!==', '!='].includes(test.operator)) {
    const pairs: [AnyNode, AnyNode][] = [
      [test.left, test.right],
      [test.right, test.left],
    ];
    for (const [a, b] of pairs) {
      if (a.type !== 'UnaryExpression' || a.operator !== 'typeof') continue;
      if (b.type !== 'Literal' || typeof b.value !== 'string') continue;
      const name = guardName(a.argument);
      if (name === null) continue;
      const equality = test.operator === '===' || test.operator === '==';
      const presentWhenTrue = equality === (b.value !== 'undefined');
      return presentWhenTrue ? { whenTrue: [name], whenFalse: [] } : { whenTrue: [], whenFalse: [name] };
    }
  }
  return { whenTrue: [], whenFalse: [] };
}

class LineIndex {
  private readonly starts: number[] = [0];

  constructor(source: string) {
    const re = /\r\n?|\n|\u2028|\u2029/g;
    for (let m = re.exec(source); m; m = re.exec(source)) this.starts.push(m.index + m[0].length);
  }

  /** 1-based line and column. */
  at(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.starts[lo] + 1 };
  }
}

class Checker {
  private readonly findings: Finding[] = [];
  private readonly references: Reference[] = [];
  private readonly members: MemberUse[] = [];
  private readonly shifts: (BinaryExpression | AssignmentExpression)[] = [];
  private readonly classes: Class[] = [];
  private readonly resolved = new Map<Identifier, Binding | null>();
  private readonly lines: LineIndex;

  constructor(
    private readonly source: string,
    private readonly file: string,
  ) {
    this.lines = new LineIndex(source);
  }

  run(program: Program): Finding[] {
    const root = new Scope(null, true);
    this.visit(program, null, { scope: root, guards: [] });
    this.resolve();
    this.checkGlobals();
    this.checkMembers();
    this.checkHoisting();
    this.checkShifts();
    this.checkClasses();
    for (const at of bareReturnOffsets(program, this.source)) {
      this.report(
        at - 6,
        'bare-return',
        `an argument-less return as the whole body of if/else/for, right before "}", is a syntax error ${ON_ESPRUINO}; end it with a semicolon or wrap it in braces`,
      );
    }
    return this.findings.sort((a, b) => a.line - b.line || a.column - b.column || a.construct.localeCompare(b.construct));
  }

  private report(offset: number, construct: string, message: string): void {
    const { line, column } = this.lines.at(offset);
    this.findings.push({ file: this.file, line, column, construct, message });
  }

  /** Offset of an operator token that follows `from`, skipping `)`, whitespace and comments. */
  private tokenAfter(from: number, token: string, fallback: number): number {
    const s = this.source;
    let i = from;
    while (i < s.length) {
      const c = s[i];
      if (c === ')' || /\s/.test(c)) i++;
      else if (s.startsWith('//', i)) {
        while (i < s.length && !/[\n\r\u2028\u2029]/.test(s[i])) i++;
      } else if (s.startsWith('/*', i)) {
        const end = s.indexOf('*/', i + 2);
        i = end < 0 ? s.length : end + 2;
      } else break;
    }
    return s.startsWith(token, i) ? i : fallback;
  }

  private snippet(n: AcornNode): string {
    const text = this.source.slice(n.start, n.end).replace(/\s+/g, ' ');
    return text.length > 40 ? `${text.slice(0, 37)}...` : text;
  }

  private syntax(node: AnyNode, parent: AnyNode | null): void {
    switch (node.type) {
      case 'ObjectPattern':
      case 'ArrayPattern':
        this.report(node.start, 'destructuring', `destructuring is a syntax error ${ON_ESPRUINO}; assign fields one by one`);
        break;
      case 'SpreadElement':
        this.report(
          node.start,
          'spread',
          `spread (...) is a syntax error ${ON_ESPRUINO}; use Function.prototype.apply, Array.prototype.concat or Object.assign`,
        );
        break;
      case 'RestElement':
        this.report(
          node.start,
          'rest',
          `rest elements and parameters (...) are a syntax error ${ON_ESPRUINO}; read arguments or copy the remaining fields by hand`,
        );
        break;
      case 'BinaryExpression':
        if (node.operator === '**') this.reportExponent(node.left.end, '**', node.start);
        break;
      case 'AssignmentExpression':
        if (node.operator === '**=') this.reportExponent(node.left.end, '**=', node.start);
        if (LOGICAL_ASSIGNMENT.has(node.operator)) {
          const op = node.operator;
          this.report(
            this.tokenAfter(node.left.end, op, node.start),
            'logical-assignment',
            `logical assignment ${op} is a syntax error ${ON_ESPRUINO}; write it out, e.g. a = a ${op.slice(0, 2)} b`,
          );
        }
        break;
      case 'MemberExpression':
        if (node.optional) this.reportOptional(node.object.end, node.start);
        break;
      case 'CallExpression':
        if (node.optional) this.reportOptional(node.callee.end, node.start);
        break;
      case 'AssignmentPattern':
        if (parent && isFunction(parent) && parent.params.includes(node)) {
          this.report(
            node.start,
            'default-parameter',
            `default parameter values are a syntax error ${ON_ESPRUINO}; test in the body: if (x === undefined) x = ...`,
          );
        }
        break;
      case 'Property':
        if (node.computed && parent?.type === 'ObjectExpression') {
          this.report(
            node.start,
            'computed-key',
            `computed keys are a syntax error ${ON_ESPRUINO}; create the object, then assign obj[key] = value`,
          );
        }
        break;
      case 'MethodDefinition':
      case 'PropertyDefinition':
        if (node.computed) {
          this.report(
            node.start,
            'computed-key',
            `computed class member names are a syntax error ${ON_ESPRUINO}; assign to the prototype after the class`,
          );
        }
        break;
      case 'LabeledStatement':
        this.report(
          node.start,
          'label',
          `labelled statements are a syntax error ${ON_ESPRUINO}; use a flag variable, or move the loop into a function and return`,
        );
        break;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression': {
        const isMethodValue =
          parent !== null && (parent.type === 'MethodDefinition' || parent.type === 'Property') && parent.value === node;
        const at = isMethodValue && parent ? parent.start : node.start;
        if (node.async) {
          this.report(at, 'async', `async functions are a syntax error ${ON_ESPRUINO}; return a Promise and chain .then`);
        }
        if (node.generator) {
          this.report(
            at,
            'generator',
            `generators are a syntax error ${ON_ESPRUINO}; use an explicit iterator object or a callback`,
          );
        }
        break;
      }
      case 'AwaitExpression':
        this.report(node.start, 'await', `await is a syntax error ${ON_ESPRUINO}; chain .then on the Promise`);
        break;
      case 'YieldExpression':
        this.report(node.start, 'yield', `yield is a syntax error ${ON_ESPRUINO}; use an explicit iterator object or a callback`);
        break;
      case 'ForOfStatement':
        if (node.await) {
          this.report(node.start, 'for-await', `for await is a syntax error ${ON_ESPRUINO}; chain .then over the items`);
        }
        break;
      case 'Literal':
        if (node.bigint !== undefined) {
          this.report(
            node.start,
            'bigint',
            `BigInt literals are a syntax error ${ON_ESPRUINO}; use Number (exact up to 2^53) or pairs of 32-bit words`,
          );
        }
        break;
      case 'ImportDeclaration':
      case 'ExportNamedDeclaration':
      case 'ExportDefaultDeclaration':
      case 'ExportAllDeclaration':
      case 'ImportExpression':
        this.report(
          node.start,
          'module-syntax',
          `import/export is a syntax error ${ON_ESPRUINO} (its lexer has no such keywords); bundle to a single script (iife)`,
        );
        break;
      case 'MetaProperty':
        if (node.meta.name === 'import') {
          this.report(node.start, 'module-syntax', `import.meta is a syntax error ${ON_ESPRUINO}; bundle to a single script (iife)`);
        }
        break;
      default:
        break;
    }
  }

  private reportExponent(leftEnd: number, op: string, fallback: number): void {
    this.report(
      this.tokenAfter(leftEnd, op, fallback),
      'exponent',
      `the ${op} operator is a syntax error ${ON_ESPRUINO}; use Math.pow(a, b) or a multiplication`,
    );
  }

  private reportOptional(objectEnd: number, fallback: number): void {
    this.report(
      this.tokenAfter(objectEnd, '?.', fallback),
      'optional-chaining',
      `optional chaining ?. is a syntax error ${ON_ESPRUINO}; test explicitly: a == null ? undefined : a.b`,
    );
  }

  private visitChildren(node: AnyNode, ctx: Ctx): void {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'loc') continue;
      if (Array.isArray(value)) {
        for (const v of value) if (isNode(v)) this.visit(v, node, ctx);
      } else if (isNode(value)) {
        this.visit(value, node, ctx);
      }
    }
  }

  /** Non-computed keys are names, not references; only a literal key can hold a construct (1n). */
  private visitKey(key: AnyNode, parent: AnyNode, ctx: Ctx): void {
    if (key.type === 'Literal') this.visit(key, parent, ctx);
  }

  private ref(id: Identifier, ctx: Ctx, read: boolean, write: boolean, safeRead = false): void {
    this.references.push({ id, scope: ctx.scope, read, write, safeRead, guards: ctx.guards });
  }

  private guarded(ctx: Ctx, names: string[]): Ctx {
    return names.length === 0 ? ctx : { scope: ctx.scope, guards: [...ctx.guards, ...names] };
  }

  private visit(node: AnyNode, parent: AnyNode | null, ctx: Ctx): void {
    this.syntax(node, parent);
    switch (node.type) {
      case 'Identifier':
        this.ref(node, ctx, true, false);
        return;
      case 'ObjectPattern':
      case 'ArrayPattern':
      case 'RestElement':
      case 'AssignmentPattern':
        this.patternBody(node, ctx, ASSIGN);
        return;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        this.visitFunction(node, ctx);
        return;
      case 'ClassDeclaration':
      case 'ClassExpression': {
        if (node.type === 'ClassDeclaration' && node.id) ctx.scope.declare(node.id.name, 'class', null, node.start);
        if (node.superClass) this.visit(node.superClass, node, ctx);
        this.classes.push(node);
        const inner = new Scope(ctx.scope, false);
        if (node.type === 'ClassExpression' && node.id) inner.declare(node.id.name, 'class', null, -1);
        this.visit(node.body, node, { scope: inner, guards: ctx.guards });
        return;
      }
      case 'MethodDefinition':
      case 'PropertyDefinition':
      case 'Property':
        if (node.computed) this.visit(node.key, node, ctx);
        else this.visitKey(node.key, node, ctx);
        if (node.value) this.visit(node.value, node, ctx);
        return;
      case 'VariableDeclaration':
        this.visitDeclaration(node, ctx, false);
        return;
      case 'BlockStatement':
      case 'StaticBlock': {
        const inner = { scope: new Scope(ctx.scope, node.type === 'StaticBlock'), guards: ctx.guards };
        for (const s of node.body) this.visit(s, node, inner);
        return;
      }
      case 'ForStatement':
      case 'SwitchStatement':
        this.visitChildren(node, { scope: new Scope(ctx.scope, false), guards: ctx.guards });
        return;
      case 'ForInStatement':
      case 'ForOfStatement': {
        const inner = { scope: new Scope(ctx.scope, false), guards: ctx.guards };
        if (node.left.type === 'VariableDeclaration') {
          this.syntax(node.left, node);
          this.visitDeclaration(node.left, inner, true);
        } else {
          this.visitPattern(node.left, node, inner, ASSIGN);
        }
        this.visit(node.right, node, inner);
        this.visit(node.body, node, inner);
        return;
      }
      case 'CatchClause': {
        const inner = { scope: new Scope(ctx.scope, false), guards: ctx.guards };
        if (node.param) this.visitPattern(node.param, node, inner, { mode: 'declare', kind: 'catch', target: inner.scope, init: null });
        this.visit(node.body, node, inner);
        return;
      }
      case 'LabeledStatement':
        this.visit(node.body, node, ctx);
        return;
      case 'BreakStatement':
      case 'ContinueStatement':
      case 'MetaProperty':
        return;
      case 'MemberExpression':
        this.visitMember(node, ctx, false, false);
        return;
      case 'UnaryExpression':
        if (node.operator === 'typeof' && node.argument.type === 'Identifier') {
          this.syntax(node.argument, node);
          this.ref(node.argument, ctx, true, false, true);
        } else if (node.operator === 'typeof' && node.argument.type === 'MemberExpression') {
          this.syntax(node.argument, node);
          this.visitMember(node.argument, ctx, true, false);
        } else {
          this.visit(node.argument, node, ctx);
        }
        return;
      case 'UpdateExpression':
        if (node.argument.type === 'Identifier') {
          this.syntax(node.argument, node);
          this.ref(node.argument, ctx, true, true);
        } else {
          this.visit(node.argument, node, ctx);
        }
        return;
      case 'AssignmentExpression':
        if (SHIFT_OPERATORS.has(node.operator)) this.shifts.push(node);
        if (node.left.type === 'Identifier') {
          this.syntax(node.left, node);
          this.ref(node.left, ctx, node.operator !== '=', true);
        } else if (node.left.type === 'MemberExpression') {
          this.syntax(node.left, node);
          this.visitMember(node.left, ctx, false, node.operator === '=');
        } else {
          this.visitPattern(node.left, node, ctx, ASSIGN);
        }
        this.visit(node.right, node, ctx);
        return;
      case 'BinaryExpression':
        if (SHIFT_OPERATORS.has(node.operator)) this.shifts.push(node);
        this.visitChildren(node, ctx);
        return;
      case 'LogicalExpression': {
        this.visit(node.left, node, ctx);
        const p = presence(node.left);
        const names = node.operator === '&&' ? p.whenTrue : node.operator === '||' ? p.whenFalse : [];
        this.visit(node.right, node, this.guarded(ctx, names));
        return;
      }
      case 'ConditionalExpression':
      case 'IfStatement': {
        this.visit(node.test, node, ctx);
        const p = presence(node.test);
        this.visit(node.consequent, node, this.guarded(ctx, p.whenTrue));
        if (node.alternate) this.visit(node.alternate, node, this.guarded(ctx, p.whenFalse));
        return;
      }
      case 'ImportDeclaration': {
        const root = ctx.scope.functionScope();
        for (const s of node.specifiers) root.declare(s.local.name, 'import', null, -1);
        return;
      }
      case 'ExportNamedDeclaration':
        if (node.declaration) this.visit(node.declaration, node, ctx);
        if (!node.source) {
          for (const s of node.specifiers) if (s.local.type === 'Identifier') this.ref(s.local, ctx, true, false);
        }
        return;
      case 'ExportAllDeclaration':
        return;
      default:
        this.visitChildren(node, ctx);
    }
  }

  private visitMember(node: MemberExpression, ctx: Ctx, safeRead: boolean, writeTarget: boolean): void {
    this.visit(node.object, node, ctx);
    if (node.computed) this.visit(node.property, node, ctx);
    const property = staticPropertyName(node);
    if (property !== null && !writeTarget) {
      const object = node.object.type === 'Identifier' ? node.object : null;
      this.members.push({ node, object, property, safeRead, guards: ctx.guards });
    }
  }

  private visitFunction(node: AnyNode & FunctionNode, ctx: Ctx): void {
    if (node.type === 'FunctionDeclaration' && node.id) {
      ctx.scope.declare(node.id.name, 'function', null, node.start);
      // Sloppy-mode block functions are also visible function-wide (Annex B); being lenient avoids false globals.
      const fs = ctx.scope.functionScope();
      if (fs !== ctx.scope) fs.declare(node.id.name, 'function', null, node.start);
    }
    const scope = new Scope(ctx.scope, true);
    if (node.type === 'FunctionExpression' && node.id) scope.declare(node.id.name, 'function', null, -1);
    const inner = { scope, guards: ctx.guards };
    for (const p of node.params) this.visitPattern(p, node, inner, { mode: 'declare', kind: 'param', target: scope, init: null });
    if (node.body.type === 'BlockStatement') {
      this.syntax(node.body, node);
      for (const s of node.body.body) this.visit(s, node.body, inner);
    } else {
      this.visit(node.body, node, inner);
    }
  }

  private visitDeclaration(node: VariableDeclaration, ctx: Ctx, loopHead: boolean): void {
    const target = node.kind === 'var' ? ctx.scope.functionScope() : ctx.scope;
    for (const d of node.declarations) {
      this.syntax(d, node);
      const init = !loopHead && d.id.type === 'Identifier' && d.init ? d.init : null;
      this.visitPattern(d.id, d, ctx, { mode: 'declare', kind: node.kind, target, init });
      if (d.init) this.visit(d.init, d, ctx);
    }
  }

  private visitPattern(node: Pattern, parent: AnyNode, ctx: Ctx, mode: PatternMode): void {
    switch (node.type) {
      case 'Identifier':
      case 'ObjectPattern':
      case 'ArrayPattern':
      case 'RestElement':
      case 'AssignmentPattern':
        this.syntax(node, parent);
        this.patternBody(node, ctx, mode);
        return;
      case 'MemberExpression':
        this.syntax(node, parent);
        this.visitMember(node, ctx, false, true);
        return;
      default:
        this.visit(node, parent, ctx);
    }
  }

  private patternBody(node: Pattern, ctx: Ctx, mode: PatternMode): void {
    switch (node.type) {
      case 'Identifier':
        if (mode.mode === 'declare') mode.target.declare(node.name, mode.kind, mode.init, node.start);
        else this.ref(node, ctx, false, true);
        return;
      case 'ObjectPattern':
        for (const p of node.properties) {
          if (p.type === 'RestElement') {
            this.visitPattern(p, node, ctx, mode);
            continue;
          }
          this.syntax(p, node);
          if (p.computed) this.visit(p.key, p, ctx);
          else this.visitKey(p.key, p, ctx);
          this.visitPattern(p.value, p, ctx, mode);
        }
        return;
      case 'ArrayPattern':
        for (const e of node.elements) if (e) this.visitPattern(e, node, ctx, mode);
        return;
      case 'RestElement':
        this.visitPattern(node.argument, node, ctx, mode);
        return;
      case 'AssignmentPattern':
        this.visitPattern(node.left, node, ctx, mode);
        this.visit(node.right, node, ctx);
        return;
      case 'MemberExpression':
        this.visitMember(node, ctx, false, true);
        return;
    }
  }

  private resolve(): void {
    for (const r of this.references) {
      const b = r.scope.lookup(r.id.name, r.id.start);
      this.resolved.set(r.id, b);
      if (b && r.write) b.writes++;
    }
  }

  private isGlobal(id: Identifier): boolean {
    return this.resolved.get(id) === null;
  }

  private checkGlobals(): void {
    // An undeclared global the bundle assigns (a polyfill) is the bundle's own definition.
    const assigned = new Set(this.references.filter((r) => r.write && this.isGlobal(r.id)).map((r) => r.id.name));
    for (const r of this.references) {
      const advice = MISSING_GLOBALS.get(r.id.name);
      if (advice === undefined || !r.read || r.safeRead || !this.isGlobal(r.id)) continue;
      if (assigned.has(r.id.name) || r.guards.includes(r.id.name)) continue;
      this.report(r.id.start, 'missing-global', `${r.id.name} is not defined ${ON_ESPRUINO}; ${advice}`);
    }
  }

  /**
   * A `var` or function used earlier in its own function than its declaration
   * is, on the board, a different variable: the enclosing scope's, or a new
   * global (measured: `function f(){ u = 1; var u; }` sets the global u). Uses
   * from nested functions are left alone, since those usually run later.
   */
  private checkHoisting(): void {
    for (const r of this.references) {
      const home = r.scope.functionScope();
      for (let s: Scope | null = r.scope; s; s = s.parent) {
        const b = s.bindings.get(r.id.name);
        if (b) {
          if ((b.kind === 'var' || b.kind === 'function') && b.declaredAt > r.id.start) {
            this.report(
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

  private checkMembers(): void {
    for (const m of this.members) {
      if (m.safeRead) continue;
      const at = m.node.property.start;
      if (m.object && this.isGlobal(m.object)) {
        const name = `${m.object.name}.${m.property}`;
        const advice = MISSING_STATICS.get(name);
        if (advice !== undefined && !m.guards.includes(name)) {
          this.report(at, 'missing-builtin', `${name} does not exist ${ON_ESPRUINO}; ${advice}`);
          continue;
        }
      }
      const method = MISSING_METHODS.get(m.property);
      if (method !== undefined) {
        const [name, advice] = method;
        this.report(at, 'missing-builtin', `${name} does not exist ${ON_ESPRUINO}; ${advice}`);
      }
    }
  }

  private provable(e: AnyNode, seen: Set<Binding>): boolean {
    switch (e.type) {
      case 'Literal':
        return typeof e.value === 'number' && Number.isInteger(e.value) && e.value >= 0 && e.value <= 31;
      case 'BinaryExpression':
        // x & k with k in 0..31 stays in 0..k whatever x is.
        return e.operator === '&' && (this.provable(e.left, seen) || this.provable(e.right, seen));
      case 'ConditionalExpression':
        return this.provable(e.consequent, seen) && this.provable(e.alternate, seen);
      case 'SequenceExpression':
        return this.provable(e.expressions[e.expressions.length - 1], seen);
      case 'Identifier': {
        const b = this.resolved.get(e);
        if (!b || b.declarations !== 1 || b.writes !== 0 || b.init === null || seen.has(b)) return false;
        if (b.kind !== 'var' && b.kind !== 'let' && b.kind !== 'const') return false;
        seen.add(b);
        const ok = this.provable(b.init, seen);
        seen.delete(b);
        return ok;
      }
      default:
        return false;
    }
  }

  private checkShifts(): void {
    for (const s of this.shifts) {
      if (this.provable(s.right, new Set())) continue;
      const op = s.operator;
      this.report(
        this.tokenAfter(s.left.end, op, s.start),
        'unmasked-shift',
        `count of ${op} (${this.snippet(s.right)}) is not provably 0..31; ${SHIFT_FIX}`,
      );
    }
  }

  private checkClasses(): void {
    for (const c of this.classes) {
      const sup = c.superClass;
      if (!sup || sup.type !== 'Identifier' || !BUILTIN_ERRORS.has(sup.name) || !this.isGlobal(sup)) continue;
      const name = c.id ? c.id.name : 'anonymous class';
      this.report(
        sup.start,
        'extends-builtin-error',
        `${name} extends ${sup.name}, and super() into a builtin fails ${ON_ESPRUINO}; ` +
          'use a plain class with name and message fields, or create an Error and set fields on it',
      );
    }
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
  return new Checker(source, file).run(parsed.program);
}
