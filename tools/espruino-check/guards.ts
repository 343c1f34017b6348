// typeof guards: which names (`X` or `X.y`) a condition proves to exist in
// its true and false branches, so `typeof Map !== 'undefined' && new Map()`
// is not reported. The walk (walk.ts) passes the proven names down.
import type { AnyNode, MemberExpression } from 'acorn';

export function staticPropertyName(m: MemberExpression): string | null {
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

export interface Presence {
  whenTrue: string[];
  whenFalse: string[];
}

/** Which names a condition proves to exist in its true and false branches. */
export function presence(test: AnyNode): Presence {
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
