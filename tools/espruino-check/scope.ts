// Scope analysis as Espruino 2v29 runs it: scopes and their bindings, where
// a binding starts to exist (the board hoists neither var nor function
// declarations), and resolving each recorded reference to its binding, or to
// null for a global.
import type { Expression, Identifier } from 'acorn';

export type DeclKind = 'var' | 'let' | 'const' | 'using' | 'await using' | 'param' | 'function' | 'class' | 'catch' | 'import';

export interface Binding {
  declarations: number;
  /** Source offset from which the binding exists: Espruino 2v29 hoists neither var nor function declarations. */
  declaredAt: number;
  kind: DeclKind;
  init: Expression | null;
  writes: number;
}

export class Scope {
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

/** A use of a name, recorded by the walk. */
export interface Reference {
  id: Identifier;
  scope: Scope;
  read: boolean;
  write: boolean;
  safeRead: boolean;
  guards: readonly string[];
}

/** Each reference's binding (null: a global), with the writes counted on the bindings. */
export type Resolved = ReadonlyMap<Identifier, Binding | null>;

export function resolve(references: readonly Reference[]): Resolved {
  const resolved = new Map<Identifier, Binding | null>();
  for (const r of references) {
    const b = r.scope.lookup(r.id.name, r.id.start);
    resolved.set(r.id, b);
    if (b && r.write) b.writes++;
  }
  return resolved;
}
