// The dashboard's one way to call the API: the admin key from this tab's session storage, as a bearer token.
const KEY = "aistudio-proxy.admin-key";

export class UnauthorizedError extends Error {}

export function adminKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function saveKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

// opts: {method, body (sent as JSON), raw (return a Blob)}. Throws an Error with the API's own message.
export async function api(path, opts = {}) {
  const headers = { Authorization: `Bearer ${adminKey()}` };
  const init = { method: opts.method || "GET", headers };
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const message = (body.error && body.error.message) || `${response.status} ${response.statusText}`;
    if (response.status === 401) {
      forgetKey();
      throw new UnauthorizedError(message);
    }
    throw new Error(message);
  }
  if (opts.raw) return response.blob();
  return response.json();
}
