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
