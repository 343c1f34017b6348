// Syntax Espruino 2v29's parser rejects, one node at a time: destructuring,
// spread and rest, `**`, `?.`, logical assignment, default parameters,
// computed keys, labels, async/await, generators, BigInt literals and module
// syntax. The walk (walk.ts) calls checkSyntax on every node it visits.
import type { AnyNode, Function as FunctionNode } from 'acorn';
import type { Reporter } from './findings.js';
import { LOGICAL_ASSIGNMENT, ON_ESPRUINO } from './rules.js';

function isFunction(n: AnyNode): n is AnyNode & FunctionNode {
  return n.type === 'FunctionDeclaration' || n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression';
}

export function checkSyntax(node: AnyNode, parent: AnyNode | null, out: Reporter): void {
  switch (node.type) {
    case 'ObjectPattern':
    case 'ArrayPattern':
      out.report(node.start, 'destructuring', `destructuring is a syntax error ${ON_ESPRUINO}; assign fields one by one`);
      break;
    case 'SpreadElement':
      out.report(
        node.start,
        'spread',
        `spread (...) is a syntax error ${ON_ESPRUINO}; use Function.prototype.apply, Array.prototype.concat or Object.assign`,
      );
      break;
    case 'RestElement':
      out.report(
        node.start,
        'rest',
        `rest elements and parameters (...) are a syntax error ${ON_ESPRUINO}; read arguments or copy the remaining fields by hand`,
      );
      break;
    case 'BinaryExpression':
      if (node.operator === '**') reportExponent(out, node.left.end, '**', node.start);
      break;
    case 'AssignmentExpression':
      if (node.operator === '**=') reportExponent(out, node.left.end, '**=', node.start);
      if (LOGICAL_ASSIGNMENT.has(node.operator)) {
        const op = node.operator;
        out.report(
          out.tokenAfter(node.left.end, op, node.start),
          'logical-assignment',
          `logical assignment ${op} is a syntax error ${ON_ESPRUINO}; write it out, e.g. a = a ${op.slice(0, 2)} b`,
        );
      }
      break;
    case 'MemberExpression':
      if (node.optional) reportOptional(out, node.object.end, node.start);
      break;
    case 'CallExpression':
      if (node.optional) reportOptional(out, node.callee.end, node.start);
      break;
    case 'AssignmentPattern':
      if (parent && isFunction(parent) && parent.params.includes(node)) {
        out.report(
          node.start,
          'default-parameter',
          `default parameter values are a syntax error ${ON_ESPRUINO}; test in the body: if (x === undefined) x = ...`,
        );
      }
      break;
    case 'Property':
      if (node.computed && parent?.type === 'ObjectExpression') {
        out.report(
          node.start,
          'computed-key',
          `computed keys are a syntax error ${ON_ESPRUINO}; create the object, then assign obj[key] = value`,
        );
      }
      break;
    case 'MethodDefinition':
    case 'PropertyDefinition':
      if (node.computed) {
        out.report(
          node.start,
          'computed-key',
          `computed class member names are a syntax error ${ON_ESPRUINO}; assign to the prototype after the class`,
        );
      }
      break;
    case 'LabeledStatement':
      out.report(
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
        out.report(at, 'async', `async functions are a syntax error ${ON_ESPRUINO}; return a Promise and chain .then`);
      }
      if (node.generator) {
        out.report(
          at,
          'generator',
          `generators are a syntax error ${ON_ESPRUINO}; use an explicit iterator object or a callback`,
        );
      }
      break;
    }
    case 'AwaitExpression':
      out.report(node.start, 'await', `await is a syntax error ${ON_ESPRUINO}; chain .then on the Promise`);
      break;
    case 'YieldExpression':
      out.report(node.start, 'yield', `yield is a syntax error ${ON_ESPRUINO}; use an explicit iterator object or a callback`);
      break;
    case 'ForOfStatement':
      if (node.await) {
        out.report(node.start, 'for-await', `for await is a syntax error ${ON_ESPRUINO}; chain .then over the items`);
      }
      break;
    case 'Literal':
      if (node.bigint !== undefined) {
        out.report(
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
      out.report(
        node.start,
        'module-syntax',
        `import/export is a syntax error ${ON_ESPRUINO} (its lexer has no such keywords); bundle to a single script (iife)`,
      );
      break;
    case 'MetaProperty':
      if (node.meta.name === 'import') {
        out.report(node.start, 'module-syntax', `import.meta is a syntax error ${ON_ESPRUINO}; bundle to a single script (iife)`);
      }
      break;
    default:
      break;
  }
}

function reportExponent(out: Reporter, leftEnd: number, op: string, fallback: number): void {
  out.report(
    out.tokenAfter(leftEnd, op, fallback),
    'exponent',
    `the ${op} operator is a syntax error ${ON_ESPRUINO}; use Math.pow(a, b) or a multiplication`,
  );
}

function reportOptional(out: Reporter, objectEnd: number, fallback: number): void {
  out.report(
    out.tokenAfter(objectEnd, '?.', fallback),
    'optional-chaining',
    `optional chaining ?. is a syntax error ${ON_ESPRUINO}; test explicitly: a == null ? undefined : a.b`,
  );
}
