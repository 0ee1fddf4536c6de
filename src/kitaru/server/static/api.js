// Talking to the kitaru server: the documented API only (docs/protocol.md), with the
// read-only token the page trades the API token for (docs/web-view.md).
import { now } from "./time.js";

export const API = "/api/v1";
const READ_TOKEN_KEY = "kitaru.readToken";

export const auth = { apiToken: null, readToken: null, expiresAt: null, renewTimer: null };

export class AuthError extends Error {}

export class HttpError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

// The API token arrives once in the URL: as #token=... (preferred: a fragment never
// reaches the server or its logs) or ?token=.... It is removed from the address bar at
// once and kept in memory only; what is stored (per tab) is the short-lived read token.
export function takeTokenFromUrl() {
  const url = new URL(location.href);
  let token = null;
  const fragment = new URLSearchParams(url.hash.replace(/^#/, ""));
  if (fragment.has("token")) {
    token = fragment.get("token");
    fragment.delete("token");
  }
  if (url.searchParams.has("token")) {
    token = token || url.searchParams.get("token");
    url.searchParams.delete("token");
  }
  if (token !== null) {
    const rest = fragment.toString();
    history.replaceState(null, "", url.pathname + url.search + (rest ? "#" + rest : ""));
  }
  return token ? token.trim() : null;
}

export function loadReadToken() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(READ_TOKEN_KEY) || "null");
    if (saved && typeof saved.token === "string" && saved.expiresAt > now() + 5) {
      auth.readToken = saved.token;
      auth.expiresAt = saved.expiresAt;
    }
  } catch (_err) {
    sessionStorage.removeItem(READ_TOKEN_KEY);
  }
}

function saveReadToken(token, expiresAt) {
  auth.readToken = token;
  auth.expiresAt = expiresAt;
  if (token) {
    sessionStorage.setItem(READ_TOKEN_KEY, JSON.stringify({ token, expiresAt }));
  } else {
    sessionStorage.removeItem(READ_TOKEN_KEY);
  }
}

export async function exchange(apiToken) {
  const resp = await fetch(API + "/stream-tokens", {
    method: "POST",
    headers: { Authorization: "Bearer " + apiToken, "Content-Type": "application/json" },
    body: "{}",
    cache: "no-store",
  });
  if (resp.status === 401 || resp.status === 403) {
    throw new AuthError("The server refused this API token.");
  }
  if (!resp.ok) throw await httpError(resp);
  const body = await resp.json();
  auth.apiToken = apiToken;
  saveReadToken(body.token || null, body.expires_at || null);
  scheduleRenew(body.ttl);
}

// While the API token is in memory, renew the read token before it expires.
function scheduleRenew(ttl) {
  clearTimeout(auth.renewTimer);
  if (!auth.apiToken || !ttl) return;
  auth.renewTimer = setTimeout(() => {
    exchange(auth.apiToken).catch(() => scheduleRenew(30));
  }, Math.max(5, ttl * 0.75) * 1000);
}

function authHeaders() {
  return auth.readToken ? { Authorization: "Bearer " + auth.readToken } : {};
}

async function httpError(resp) {
  let kind = null;
  let message = "HTTP " + resp.status;
  try {
    const detail = (await resp.json()).detail;
    if (detail && typeof detail === "object") {
      kind = detail.kind || null;
      message = detail.message || message;
    } else if (typeof detail === "string") {
      message = detail;
    }
  } catch (_err) {
    // Not JSON: keep the status line.
  }
  return new HttpError(resp.status, kind, message);
}

export async function getJson(path) {
  const resp = await fetch(API + path, { headers: authHeaders(), cache: "no-store" });
  if (resp.status === 401 || resp.status === 403) {
    throw new AuthError(
      auth.readToken ? "Your access has expired." : "This server needs an API token.",
    );
  }
  if (!resp.ok) throw await httpError(resp);
  return resp.json();
}

export function executionPath(execId, rest) {
  return "/executions/" + encodeURIComponent(execId) + (rest || "");
}

// The SSE URL of an execution: EventSource cannot send headers, so the read token (never
// the API token) goes in the query.
export function streamUrl(execId, cursor) {
  const params = new URLSearchParams({ message_events: "true" });
  if (cursor) params.set("since", cursor);
  if (auth.readToken) params.set("token", auth.readToken);
  return API + executionPath(execId, "/events/stream?") + params;
}
