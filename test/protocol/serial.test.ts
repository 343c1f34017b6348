// protocol/serial.ts, the one serial rule (docs/protocol.md section 1): what
// it accepts and refuses, and that checkSerial and a JSON schema pattern
// (ajv compiles patterns with the u flag) follow it exactly.
import { describe, expect, it } from 'vitest';
import { SERIAL_RE, SERIAL_RULE, SERIAL_SOURCE, checkSerial, isSerial } from '../../protocol/index.js';

const GOOD = ['SP-000001', 'a', '0', 'A'.repeat(32), 'a.b_c-d', '9...', 'Z-_'];
const BAD: unknown[] = ['', '-1', '.a', '_a', 'A'.repeat(33), 'SP 1', ' SP1', 'SP1 ', 'SP-ü', 'a/b', 'a+b', 'SP1\n', '\nSP1', 'SP\u00001', 12, null, undefined, ['SP1'], { serial: 'SP1' }];

describe('the serial rule', () => {
  it('accepts 1 to 32 of A-Z a-z 0-9 . _ - starting with a letter or digit, nothing else', () => {
    for (const s of GOOD) expect(isSerial(s), s).toBe(true);
    for (const s of BAD) expect(isSerial(s), JSON.stringify(s)).toBe(false);
  });

  it('is the same rule as a pattern string, a RegExp and checkSerial', () => {
    const schema = new RegExp(SERIAL_SOURCE, 'u');
    expect(SERIAL_RE.source).toBe(SERIAL_SOURCE);
    for (const s of [...GOOD, ...BAD]) {
      const ok = isSerial(s);
      if (typeof s === 'string') {
        expect(schema.test(s), s).toBe(ok);
        expect(SERIAL_RE.test(s), s).toBe(ok);
      }
      if (ok) expect(checkSerial(s)).toBe(s);
      else expect(() => checkSerial(s), JSON.stringify(s)).toThrow(typeof s === 'string' ? `is not valid: use ${SERIAL_RULE}` : /expected a string/);
    }
  });
});
