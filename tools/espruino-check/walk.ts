// The one pass over a program: it runs the syntax rules (syntax.ts) on every
// node, builds the scopes (scope.ts), and records what the later checks need:
// every reference to a name, every static member use, every shift and every
// class. Identifiers that are names rather than references (non-computed
// keys) are not recorded.
import type {
  AnyNode,
  AssignmentExpression,
  Class,
  Expression,
  Function as FunctionNode,
  Identifier,
  MemberExpression,
  Pattern,
  Program,
  UnaryExpression,
  UpdateExpression,
  VariableDeclaration,
} from 'acorn';
import type { Reporter } from './findings.js';
import { presence, staticPropertyName } from './guards.js';
import { SHIFT_OPERATORS } from './rules.js';
import { Scope, type DeclKind, type Reference } from './scope.js';
import type { Shift } from './shifts.js';
import { checkSyntax } from './syntax.js';

/** A `.name` or `['name']` read, for the missing-builtin check. */
export interface MemberUse {
  node: MemberExpression;
  object: Identifier | null;
  property: string;
  safeRead: boolean;
  guards: readonly string[];
}

export interface Walked {
  readonly references: readonly Reference[];
  readonly members: readonly MemberUse[];
  readonly shifts: readonly Shift[];
  readonly classes: readonly Class[];
}

export function walk(program: Program, out: Reporter): Walked {
  const w = new Walker(out);
  w.visit(program, null, { scope: new Scope(null, true), guards: [] });
  return w;
}

interface Ctx {
  scope: Scope;
  /** Names (`X` or `X.y`) proven present by an enclosing `typeof` test. */
  guards: readonly string[];
}

type PatternMode =
  | { mode: 'declare'; kind: DeclKind; target: Scope; init: Expression | null }
  | { mode: 'assign' };

const ASSIGN: PatternMode = { mode: 'assign' };

function isNode(v: unknown): v is AnyNode {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';
}

class Walker implements Walked {
  readonly references: Reference[] = [];
  readonly members: MemberUse[] = [];
  readonly shifts: Shift[] = [];
  readonly classes: Class[] = [];

  constructor(private readonly out: Reporter) {}

  private syntax(node: AnyNode, parent: AnyNode | null): void {
    checkSyntax(node, parent, this.out);
  }

  visit(node: AnyNode, parent: AnyNode | null, ctx: Ctx): void {
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
      case 'ClassExpression':
        this.visitClass(node, ctx);
        return;
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
      case 'UpdateExpression':
        this.visitOperand(node, ctx);
        return;
      case 'AssignmentExpression':
        this.visitAssignment(node, ctx);
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

  // ---- scopes: functions, classes, declarations ----

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

  private visitClass(node: AnyNode & Class, ctx: Ctx): void {
    if (node.type === 'ClassDeclaration' && node.id) ctx.scope.declare(node.id.name, 'class', null, node.start);
    if (node.superClass) this.visit(node.superClass, node, ctx);
    this.classes.push(node);
    const inner = new Scope(ctx.scope, false);
    if (node.type === 'ClassExpression' && node.id) inner.declare(node.id.name, 'class', null, -1);
    this.visit(node.body, node, { scope: inner, guards: ctx.guards });
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

  // ---- reads and writes: members, typeof, ++/--, assignments ----

  private visitMember(node: MemberExpression, ctx: Ctx, safeRead: boolean, writeTarget: boolean): void {
    this.visit(node.object, node, ctx);
    if (node.computed) this.visit(node.property, node, ctx);
    const property = staticPropertyName(node);
    if (property !== null && !writeTarget) {
      const object = node.object.type === 'Identifier' ? node.object : null;
      this.members.push({ node, object, property, safeRead, guards: ctx.guards });
    }
  }

  /** `typeof x` reads x safely (no ReferenceError); `x++` reads and writes it. */
  private visitOperand(node: UnaryExpression | UpdateExpression, ctx: Ctx): void {
    if (node.type === 'UnaryExpression') {
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
    }
    if (node.argument.type === 'Identifier') {
      this.syntax(node.argument, node);
      this.ref(node.argument, ctx, true, true);
    } else {
      this.visit(node.argument, node, ctx);
    }
  }

  private visitAssignment(node: AssignmentExpression, ctx: Ctx): void {
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
  }

  // ---- patterns: declared or assigned names ----

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
}
