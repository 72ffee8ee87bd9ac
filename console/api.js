// The admin API, with the admin token from sessionStorage (never a URL,
// cookie or localStorage: it dies with the tab, and Sign out clears it).
const KEY = "keybroker.adminToken";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** Server time minus local time, from the last response's `Date` (ms). */
export let clockOffsetMs = 0;

export class ApiError extends Error {
  constructor(status, reason, message) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

/** Calls `/admin/v1{path}`; resolves to the JSON body (null for 204). */
export async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token.get() || ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(`/admin/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "network_error", "The broker did not answer. Check that it is running.");
  }
  const date = Date.parse(response.headers.get("date") || "");
  if (!Number.isNaN(date)) clockOffsetMs = date - Date.now();
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const error = (json && json.error) || {};
    const reason = error.reason || `http_${response.status}`;
    const message = error.message || `The broker answered ${response.status}.`;
    throw new ApiError(response.status, reason, `${message} (${reason})`);
  }
  return json;
}

export const enc = encodeURIComponent;
