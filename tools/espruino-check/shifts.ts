// Shift counts: the board does not mask them (1<<32 is 0 on ARM, 1 on x86),
// so every <<, >>, >>> (and their assignments) needs a count provably in
// 0..31: a literal, `x & k` with k in 0..31, or a variable written once with
// such a value.
import type { AnyNode, AssignmentExpression, BinaryExpression } from 'acorn';
import type { Reporter } from './findings.js';
import { SHIFT_FIX } from './rules.js';
import type { Binding, Resolved } from './scope.js';

export type Shift = BinaryExpression | AssignmentExpression;

function provable(e: AnyNode, resolved: Resolved, seen: Set<Binding>): boolean {
  switch (e.type) {
    case 'Literal':
      return typeof e.value === 'number' && Number.isInteger(e.value) && e.value >= 0 && e.value <= 31;
    case 'BinaryExpression':
      // x & k with k in 0..31 stays in 0..k whatever x is.
      return e.operator === '&' && (provable(e.left, resolved, seen) || provable(e.right, resolved, seen));
    case 'ConditionalExpression':
      return provable(e.consequent, resolved, seen) && provable(e.alternate, resolved, seen);
    case 'SequenceExpression':
      return provable(e.expressions[e.expressions.length - 1], resolved, seen);
    case 'Identifier': {
      const b = resolved.get(e);
      if (!b || b.declarations !== 1 || b.writes !== 0 || b.init === null || seen.has(b)) return false;
      if (b.kind !== 'var' && b.kind !== 'let' && b.kind !== 'const') return false;
      seen.add(b);
      const ok = provable(b.init, resolved, seen);
      seen.delete(b);
      return ok;
    }
    default:
      return false;
  }
}

export function checkShifts(shifts: readonly Shift[], resolved: Resolved, out: Reporter): void {
  for (const s of shifts) {
    if (provable(s.right, resolved, new Set())) continue;
    const op = s.operator;
    out.report(
      out.tokenAfter(s.left.end, op, s.start),
      'unmasked-shift',
      `count of ${op} (${out.snippet(s.right)}) is not provably 0..31; ${SHIFT_FIX}`,
    );
  }
}
