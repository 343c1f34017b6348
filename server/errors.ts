// Every error class of the server, in one module with no imports, so any
// module may throw them without an import cycle. The fastify error handler
// that turns them into responses is server/plugins/errors.ts.

/** A configuration or start-up problem; its message names the setting and what it expects. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** An error the API answers with its own status and message (and headers, e.g. Retry-After). */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * 429 with Retry-After in whole seconds (at least 1, RFC 9110 section 10.2.3),
 * and the same wait at the end of the message: `MESSAGE; retry after N s`.
 */
export function tooManyRequests(message: string, seconds: number): HttpError {
  const wait = Math.max(1, Math.ceil(seconds));
  return new HttpError(429, `${message}; retry after ${wait} s`, { 'retry-after': String(wait) });
}

/** The backend cannot serve reads right now (the SQLite read worker crashed or its queue is full): answer 503. */
export class ReadsUnavailableError extends Error {
  readonly statusCode = 503;
  /** The message is meant for the client (server/plugins/errors.ts). */
  readonly expose = true;
  readonly headers: Record<string, string>;
  constructor(message: string, retryAfterSeconds = 1) {
    super(message);
    this.name = 'ReadsUnavailableError';
    this.headers = { 'retry-after': String(retryAfterSeconds) };
  }
}

/** Why a device's keys are not available; the frame is rejected with this reason. */
export class DeviceKeyError extends Error {}

/** A manifest the registry refuses, or a device it does not have (server/registry.ts). */
export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** A token name, role or operation refused (server/auth/tokens.ts). */
export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}
