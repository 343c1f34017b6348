// The serial rule (docs/protocol.md section 1), the one place every side
// checks it: the factory, the registry, the ingest schemas, the relay. No
// imports, so the relay page bundles it without the rest of protocol/.

/** The rule in words, for error messages. */
export const SERIAL_RULE = '1 to 32 characters A-Z a-z 0-9 . _ -, starting with a letter or digit';

/** The rule as a pattern string, for JSON schemas. */
export const SERIAL_SOURCE = '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$';

export const SERIAL_RE = new RegExp(SERIAL_SOURCE);

/** True for a string that follows the serial rule. */
export function isSerial(text: unknown): text is string {
  return typeof text === 'string' && SERIAL_RE.test(text);
}
