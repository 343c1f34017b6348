// Espruino 2v29's parser rejects an argument-less `return` that is the whole
// body of an `if`, `else` or `for (;;)` when a `}` follows it without a
// semicolon (measured: `function a(){if(1)return}` is "SyntaxError: Unexpected
// end of Input"; `if(1)return;}` and `if(1){return}` parse). Minifiers drop
// exactly that semicolon. The build puts it back (fixBareReturns, a rollup
// step after terser) and the checker reports any that remain.
import { parse, type Node as AcornNode, type Program, type ReturnStatement } from 'acorn';
import { ancestor } from 'acorn-walk';

/** Offsets right after each `return` that needs a semicolon. */
export function bareReturnOffsets(program: Program, source: string): number[] {
  const offsets: number[] = [];
  ancestor(program, {
    ReturnStatement(node: AcornNode, _state: unknown, ancestors: AcornNode[]) {
      const ret = node as ReturnStatement;
      if (ret.argument) return;
      const parent = ancestors[ancestors.length - 2];
      if (!parent || (parent.type !== 'IfStatement' && parent.type !== 'ForStatement')) return;
      if (source[ret.end - 1] === ';') return;
      let i = ret.end;
      while (i < source.length && /\s/.test(source[i]!)) i++;
      if (source[i] === '}' || source[i] === undefined) offsets.push(ret.end);
    },
  });
  return offsets;
}

export function fixBareReturns(source: string): string {
  const program = parse(source, { ecmaVersion: 'latest', sourceType: 'script' });
  const offsets = bareReturnOffsets(program, source).sort((a, b) => b - a);
  let out = source;
  for (const at of offsets) out = out.slice(0, at) + ';' + out.slice(at);
  return out;
}
