// The dashboard's sign-in state (docs/api.md, "Authentication"): the API
// token, kept in sessionStorage only (this tab, gone when it closes), or
// taken once from the URL fragment (`#token=...`, as `sealpost demo` prints
// it), which never reaches the server and is removed from the address at once.

const TOKEN_KEY = 'sealpost.token';

/** The server refused the token (401): the page signs out and asks again. */
export class SignedOut extends Error {}

export const session = {
  token: null as string | null,
};

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage blocked: the token lives in this page only
  }
}

export function keepToken(token: string | null): void {
  session.token = token;
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage blocked: session.token still holds it until the page closes
  }
}

/** Takes `#token=...` out of the address (history.replaceState: no reload, no history entry) and returns it. */
export function tokenFromFragment(): string | null {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search);
  const t = decodeURIComponent(m[1]!).trim();
  return t === '' ? null : t;
}
