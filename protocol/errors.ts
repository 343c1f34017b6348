// The protocol's error for bad arguments (ArgumentError), thrown by every protocol function.
/**
 * A caller passed a value the protocol cannot use. `argument` names it, so a
 * message always says what was wrong ("sealKey expected 16 bytes, got 15").
 */
export class ArgumentError extends TypeError {
  readonly argument: string;
  constructor(argument: string, message: string) {
    super(`${argument} ${message}`);
    this.name = 'ArgumentError';
    this.argument = argument;
  }
}

/**
 * A frame or an acknowledgement failed authentication. There is one message
 * for every cause (wrong key, flipped bit, truncated tag, wrong counter) so
 * the error itself tells an attacker nothing, and no plaintext is returned.
 */
export class AuthenticationError extends Error {
  constructor(what: 'frame' | 'ack') {
    super(`${what} authentication failed`);
    this.name = 'AuthenticationError';
  }
}
