// Findings and where they are: the Finding record and its one-line format,
// source offsets to line:column, and the Reporter every check reports
// through (it also finds an operator's token for the column).
import type { Node as AcornNode } from 'acorn';

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

export class LineIndex {
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

/** Collects the findings of one file. */
export class Reporter {
  private readonly findings: Finding[] = [];
  private readonly lines: LineIndex;

  constructor(
    private readonly source: string,
    private readonly file: string,
  ) {
    this.lines = new LineIndex(source);
  }

  report(offset: number, construct: string, message: string): void {
    const { line, column } = this.lines.at(offset);
    this.findings.push({ file: this.file, line, column, construct, message });
  }

  /** Offset of an operator token that follows `from`, skipping `)`, whitespace and comments. */
  tokenAfter(from: number, token: string, fallback: number): number {
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

  snippet(n: AcornNode): string {
    const text = this.source.slice(n.start, n.end).replace(/\s+/g, ' ');
    return text.length > 40 ? `${text.slice(0, 37)}...` : text;
  }

  /** Every finding so far, by line, column and construct (ties keep the order reported). */
  sorted(): Finding[] {
    return this.findings.sort((a, b) => a.line - b.line || a.column - b.column || a.construct.localeCompare(b.construct));
  }
}
