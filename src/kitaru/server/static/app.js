// The kitaru web view: a list of recent executions and a live page per execution.
//
// Plain browser JavaScript, no build step, nothing loaded from elsewhere. It uses the
// documented API only (docs/protocol.md): GET /api/v1/executions for the list, GET
// .../snapshot to render an execution at once, and the SSE stream through EventSource,
// resumed from the snapshot's cursor and, after a drop, from the last cursor seen.
//
// Safety rule: text that comes from events or records is only ever put into the page as
// text (text nodes, textContent), never parsed as HTML. The server also sends a strict
// Content-Security-Policy, so even a mistake here could not run an injected script.
"use strict";

(() => {
  const API = "/api/v1";
  const UI = "/ui/";
  const READ_TOKEN_KEY = "kitaru.readToken";
  const TIMELINE_MAX = 200;
  const DEBUG_MAX = 100000; // frames kept in window.kitaruView.received
  const LIST_POLL_MS = 2000;
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 10000;
  const KIND_STARTED = "kitaru.checkpoint.started";
  const KIND_RETURNED = "kitaru.checkpoint.returned";
  const KIND_FAILED = "kitaru.checkpoint.failed";
  const LIFECYCLE_PREFIX = "kitaru.checkpoint.";
  const TERMINAL = { [KIND_RETURNED]: "returned", [KIND_FAILED]: "failed" };
  const ENDED_STATUSES = new Set(["completed", "failed", "lost"]);

  // What tests (and curious people in the console) can read: every data frame received,
  // before de-duplication, and every connection state the page went through.
  const debug = { received: [], duplicates: 0, transitions: [], opened: 0 };
  window.kitaruView = debug;

  const auth = { apiToken: null, readToken: null, expiresAt: null, renewTimer: null };
  let teardown = () => {};

  // ---------------------------------------------------------------- DOM helpers

  // el("a", {href: x, class: "y"}, "text", child): children that are not nodes become text.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(node, text) {
    const value = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function app() {
    return document.getElementById("app");
  }

  function notice(text, kind) {
    const box = document.getElementById("notice");
    if (!text) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    box.className = "notice notice-" + (kind || "info");
    box.replaceChildren(document.createTextNode(text));
    box.hidden = false;
  }

  function badge(status) {
    return el("span", { class: "badge badge-" + (status || "unknown") }, status || "unknown");
  }

  function setBadge(node, status) {
    const value = status || "unknown";
    node.className = "badge badge-" + value;
    setText(node, value);
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
    const s = Math.max(0, seconds);
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 60) return Math.round(s) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";
    return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
  }

  function fmtTime(ts) {
    if (typeof ts !== "number" || !isFinite(ts)) return "";
    return new Date(ts * 1000).toLocaleTimeString([], { hour12: false });
  }

  function fmtDate(ts) {
    if (typeof ts !== "number" || !isFinite(ts)) return "";
    const d = new Date(ts * 1000);
    return d.toLocaleDateString() + " " + d.toLocaleTimeString([], { hour12: false });
  }

  function shortId(id) {
    return typeof id === "string" && id.length > 12 ? id.slice(0, 8) : id;
  }

  function now() {
    return Date.now() / 1000;
  }

  // Only http(s) links: a misconfigured template must not become a javascript: URL.
  function isTraceId(value) {
    return typeof value === "string" && /^[0-9a-f]{32}$/.test(value) && !/^0+$/.test(value);
  }

  function safeHref(url) {
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (_err) {
      return null;
    }
  }

  // ---------------------------------------------------------------- auth

  class AuthError extends Error {}

  class HttpError extends Error {
    constructor(status, kind, message) {
      super(message);
      this.status = status;
      this.kind = kind;
    }
  }

  // The API token arrives once in the URL: as #token=... (preferred: a fragment never
  // reaches the server or its logs) or ?token=.... It is removed from the address bar at
  // once and kept in memory only; what is stored (per tab) is the short-lived read token.
  function takeTokenFromUrl() {
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

  function loadReadToken() {
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

  async function exchange(apiToken) {
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

  async function getJson(path) {
    const resp = await fetch(API + path, { headers: authHeaders(), cache: "no-store" });
    if (resp.status === 401 || resp.status === 403) {
      throw new AuthError(
        auth.readToken ? "Your access has expired." : "This server needs an API token."
      );
    }
    if (!resp.ok) throw await httpError(resp);
    return resp.json();
  }

  function showSignIn(reason) {
    teardown();
    teardown = () => {};
    const input = el("input", {
      type: "password",
      id: "token-input",
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "API token",
      "aria-label": "API token",
    });
    const error = el("p", { class: "form-error", id: "signin-error" });
    const form = el(
      "form",
      {
        class: "signin",
        id: "signin",
        onsubmit: async (event) => {
          event.preventDefault();
          setText(error, "");
          try {
            await exchange(input.value.trim());
            route();
          } catch (err) {
            setText(error, err.message);
          }
        },
      },
      el("h1", {}, "Sign in"),
      el("p", { class: "muted", id: "signin-reason" }, reason),
      el(
        "p",
        { class: "muted" },
        "Paste the server's API token (KITARU_API_TOKEN), or open this page as ",
        el("code", {}, "/ui/#token=<API token>"),
        ". The page trades it for a read-only token that expires in minutes.",
      ),
      input,
      el("button", { type: "submit" }, "Open"),
      error,
    );
    app().replaceChildren(form);
    input.focus();
  }

  // ---------------------------------------------------------------- routing

  function navigate(path) {
    history.pushState(null, "", path);
    route();
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-nav]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate(link.getAttribute("href"));
  });
  window.addEventListener("popstate", () => route());

  function route() {
    teardown();
    teardown = () => {};
    notice(null);
    const match = location.pathname.match(/^\/ui\/executions\/([^/]+)\/?$/);
    if (match) {
      showExecution(decodeURIComponent(match[1]));
    } else {
      showList();
    }
  }

  async function guarded(work) {
    try {
      await work();
    } catch (err) {
      if (err instanceof AuthError) showSignIn(err.message);
      else if (err instanceof HttpError) notice(err.message, "error");
      else notice("Cannot reach the kitaru server (" + err.message + ").", "error");
    }
  }

  // ---------------------------------------------------------------- executions list

  function showList() {
    document.title = "kitaru · executions";
    const body = el("tbody", { id: "executions-body" });
    const empty = el(
      "p",
      { class: "muted empty", id: "executions-empty", hidden: true },
      "No executions yet. Run a flow with KITARU_SERVER_URL set to this server.",
    );
    app().replaceChildren(
      el("h1", {}, "Executions"),
      el(
        "table",
        { class: "executions" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", {}, "Status"),
            el("th", {}, "Flow"),
            el("th", {}, "Execution"),
            el("th", {}, "Started"),
            el("th", {}, "Duration"),
          ),
        ),
        body,
      ),
      empty,
      usagePanel(),
    );
    let timer = null;
    let stopped = false;
    const poll = async () => {
      await guarded(async () => {
        const rows = await getJson("/executions?limit=100");
        if (stopped) return;
        notice(null);
        body.replaceChildren(...rows.map(executionRow));
        empty.hidden = rows.length > 0;
        await refreshUsagePanel();
      });
      if (!stopped && document.getElementById("executions-body") === body) {
        timer = setTimeout(poll, LIST_POLL_MS);
      }
    };
    teardown = () => {
      stopped = true;
      clearTimeout(timer);
    };
    poll();
  }

  // Tokens and cost per checkpoint name over the newest executions (GET /usage).
  function usagePanel() {
    return el(
      "section",
      { class: "usage-panel", id: "usage-panel", hidden: true },
      el("h2", {}, "Tokens and cost per checkpoint"),
      el(
        "table",
        { class: "usage" },
        el(
          "thead",
          {},
          el("tr", {}, ...["Checkpoint", "Executions", "Input", "Output", "Reused", "Cost (USD)"].map((h) => el("th", {}, h))),
        ),
        el("tbody", { id: "usage-panel-body" }),
      ),
    );
  }

  async function refreshUsagePanel() {
    const panel = document.getElementById("usage-panel");
    const body = document.getElementById("usage-panel-body");
    if (!panel || !body) return;
    let data;
    try {
      data = await getJson("/usage?limit=100");
    } catch (_err) {
      return; // an extra: the list works without it
    }
    const entries = Object.entries((data && data.checkpoints) || {});
    entries.sort((a, b) => (num(b[1].total_tokens) || 0) - (num(a[1].total_tokens) || 0));
    body.replaceChildren(
      ...entries.map(([name, t]) =>
        el(
          "tr",
          { dataset: { checkpoint: name } },
          el("td", {}, name),
          el("td", {}, String(num(t.executions) || 0)),
          el("td", {}, String(num(t.input_tokens) || 0)),
          el("td", {}, String(num(t.output_tokens) || 0)),
          el("td", {}, String((num(t.reused_input_tokens) || 0) + (num(t.reused_output_tokens) || 0))),
          el("td", {}, num(t.cost_usd) === null ? "—" : num(t.cost_usd).toFixed(4)),
        ),
      ),
    );
    panel.hidden = entries.length === 0;
  }

  function executionRow(rec) {
    const href = UI + "executions/" + encodeURIComponent(rec.exec_id);
    const end = rec.ended_at || (ENDED_STATUSES.has(rec.status) ? null : now());
    return el(
      "tr",
      { class: "execution-row", dataset: { execId: rec.exec_id, status: rec.status } },
      el("td", {}, badge(rec.status)),
      el("td", { class: "flow" }, rec.flow_name || ""),
      el("td", { class: "mono" }, el("a", { href, "data-nav": "" }, rec.exec_id)),
      el("td", {}, fmtDate(rec.created_at)),
      el("td", {}, end && rec.created_at ? fmtDuration(end - rec.created_at) : ""),
    );
  }

  // ---------------------------------------------------------------- the lane fold

  // The same fold as kitaru.lanes.LaneBoard (Python), so a snapshot's lanes continue
  // exactly: latest message and percent by highest index, terminal status whenever it
  // arrives, identity fields first-known-wins, start time the earliest seen.
  function newLane(correlationId) {
    return {
      correlation_id: correlationId,
      checkpoint_name: null,
      status: "running",
      message: null,
      percent: null,
      event_count: 0,
      started_at: null,
      ended_at: null,
      last_index: -1,
      last_kind: null,
      error_type: null,
      trace_id: null,
      span_id: null,
      attempt: null,
      checkpoint_id: null,
      step_name: null,
      exec_id: null,
      message_index: -1,
      percent_index: -1,
      terminal_index: -1,
    };
  }

  function num(value) {
    return typeof value === "number" && isFinite(value) ? value : null;
  }

  function str(value) {
    return typeof value === "string" && value ? value : null;
  }

  function foldEvent(lane, ev) {
    const payload = ev.payload && typeof ev.payload === "object" ? ev.payload : {};
    const meta = payload.kitaru && typeof payload.kitaru === "object" ? payload.kitaru : {};
    const data = payload.data && typeof payload.data === "object" ? payload.data : {};
    const index = ev.index;
    const ts = num(meta.ts);
    lane.event_count += 1;
    const identity = {
      checkpoint_name: str(ev.checkpoint_name) || str(meta.checkpoint_name),
      checkpoint_id: str(ev.checkpoint_id) || str(meta.checkpoint_id),
      step_name: str(ev.step_name),
      exec_id: str(ev.exec_id) || str(meta.execution_id),
      trace_id: str(meta.trace_id),
      span_id: str(meta.span_id),
    };
    for (const [field, value] of Object.entries(identity)) {
      if (value && lane[field] === null) lane[field] = value;
    }
    if (lane.attempt === null && Number.isInteger(meta.attempt)) lane.attempt = meta.attempt;
    if (index > lane.last_index) {
      lane.last_index = index;
      lane.last_kind = ev.kind;
    }
    if (typeof payload.message === "string" && index > lane.message_index) {
      lane.message = payload.message;
      lane.message_index = index;
    }
    const percent = num(data.percent);
    if (percent !== null && percent >= 0 && percent <= 1 && index > lane.percent_index) {
      lane.percent = percent;
      lane.percent_index = index;
    }
    if (ts !== null && (lane.started_at === null || ts < lane.started_at)) lane.started_at = ts;
    const terminal = TERMINAL[ev.kind];
    if (terminal && index > lane.terminal_index) {
      lane.status = terminal;
      lane.terminal_index = index;
      lane.ended_at = ts;
      lane.error_type =
        terminal === "failed" && typeof payload.error_type === "string"
          ? payload.error_type
          : null;
    }
    return lane;
  }

  function laneOrder(a, b) {
    const sa = a.started_at === null ? [1, 0] : [0, a.started_at];
    const sb = b.started_at === null ? [1, 0] : [0, b.started_at];
    if (sa[0] !== sb[0]) return sa[0] - sb[0];
    if (sa[1] !== sb[1]) return sa[1] - sb[1];
    return a.correlation_id < b.correlation_id ? -1 : a.correlation_id > b.correlation_id ? 1 : 0;
  }

  // ---------------------------------------------------------------- execution page

  function showExecution(execId) {
    document.title = "kitaru · " + execId;
    const view = new ExecutionView(execId);
    teardown = () => view.close();
    guarded(() => view.start());
  }

  // -- runtime logs, metadata and usage (docs/runtime-logs-and-metadata.md) ------------------
  // Log lines are fetched on demand per lane (a durable record, never a live event); metadata
  // and usage come from the execution's record, fetched after the snapshot and again at its end.
  // Everything is shown as text (setText / el children), never as HTML.

  const LOG_LINES_MAX = 1000;

  function laneExtras(view, correlationId) {
    const meta = el("div", { class: "lane-meta mono muted", dataset: { role: "lane-meta" } });
    const box = el("pre", { class: "lane-logs mono", hidden: true, dataset: { role: "lane-logs" } });
    const button = el("button", { type: "button", class: "lane-logs-toggle" }, "Logs");
    button.addEventListener("click", () => {
      if (!box.hidden) {
        box.hidden = true;
        setText(button, "Logs");
        return;
      }
      box.hidden = false;
      setText(button, "Hide logs");
      setText(box, "loading…");
      guarded(() => loadLaneLogs(view, correlationId, box));
    });
    view.laneMeta = view.laneMeta || new Map();
    view.laneMeta.set(correlationId, meta);
    if (view.record) renderLaneMeta(view, correlationId);
    return el("div", { class: "lane-extras" }, meta, button, box);
  }

  async function loadLaneLogs(view, correlationId, box) {
    const params = new URLSearchParams({ correlation_id: correlationId, limit: String(LOG_LINES_MAX) });
    const body = await getJson("/executions/" + encodeURIComponent(view.execId) + "/logs?" + params);
    const lines = Array.isArray(body.lines) ? body.lines : [];
    if (lines.length === 0) {
      setText(box, "No log lines.");
      return;
    }
    setText(
      box,
      lines
        .map((l) => `${fmtTime(l.ts)} ${str(l.level) || ""} ${str(l.message) || ""}`)
        .join("\n"),
    );
  }

  function fmtFields(obj) {
    if (!obj || typeof obj !== "object") return "";
    return Object.entries(obj)
      .map(([k, v]) => {
        let text;
        try {
          text = typeof v === "string" ? v : JSON.stringify(v);
        } catch (_err) {
          text = "?";
        }
        if (text.length > 200) text = text.slice(0, 200) + "…";
        return k + "=" + text;
      })
      .join("  ");
  }

  async function loadAnnotations(view) {
    try {
      const rec = await getJson("/executions/" + encodeURIComponent(view.execId));
      if (!view.closed) renderAnnotations(view, rec);
    } catch (_err) {
      // The record view is an extra: the live view works without it.
    }
  }

  function renderLaneMeta(view, correlationId) {
    const node = view.laneMeta && view.laneMeta.get(correlationId);
    if (!node || !view.record) return;
    for (const cp of view.record.checkpoints || []) {
      for (const a of cp.attempts || []) {
        if (a.correlation_id === correlationId) setText(node, fmtFields(a.metadata));
      }
    }
  }

  function renderAnnotations(view, rec) {
    view.record = rec;
    const box = view.recordBox;
    if (!box) return;
    const children = [];
    if (rec.metadata && Object.keys(rec.metadata).length) {
      children.push(el("h2", {}, "Metadata"));
      children.push(el("p", { class: "mono", id: "exec-metadata" }, fmtFields(rec.metadata)));
    }
    const rows = [];
    let input = 0;
    let output = 0;
    let cost = null;
    for (const cp of rec.checkpoints || []) {
      for (const u of cp.usage || []) {
        input += num(u.input_tokens) || 0;
        output += num(u.output_tokens) || 0;
        if (num(u.cost_usd) !== null) cost = (cost || 0) + num(u.cost_usd);
        rows.push(
          el(
            "tr",
            { dataset: { step: str(cp.step_name) || "" } },
            el("td", {}, str(cp.step_name) || ""),
            el("td", {}, str(u.model) || ""),
            el("td", {}, String(num(u.input_tokens) || 0)),
            el("td", {}, String(num(u.output_tokens) || 0)),
            el("td", {}, String(num(u.cache_read_tokens) || 0)),
            el("td", {}, num(u.cost_usd) === null ? "—" : num(u.cost_usd).toFixed(4)),
            el("td", {}, u.reused === true ? "reused" : ""),
          ),
        );
      }
    }
    if (rows.length) {
      const head = ["Step", "Model", "Input", "Output", "Cache read", "Cost (USD)", ""];
      children.push(el("h2", {}, "Tokens and cost"));
      children.push(
        el(
          "table",
          { class: "usage", id: "usage" },
          el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows),
        ),
      );
      children.push(
        el(
          "p",
          { class: "muted", id: "usage-total" },
          `${input + output} tokens (${input} input, ${output} output), incurred ` +
            (cost === null ? "cost unknown" : `$${cost.toFixed(4)}`),
        ),
      );
    }
    box.replaceChildren(...children);
    if (view.laneMeta) for (const corr of view.laneMeta.keys()) renderLaneMeta(view, corr);
  }

  class ExecutionView {
    constructor(execId) {
      this.execId = execId;
      this.lanes = new Map(); // correlation ID -> lane object
      this.rows = new Map(); // correlation ID -> {row, parts}
      this.seen = new Set(); // "correlation#index" folded since the snapshot
      this.timelineKeys = new Set();
      this.cursor = null;
      this.status = null;
      this.createdAt = null;
      this.endedAt = null;
      this.events = 0;
      this.lost = 0;
      this.source = null;
      this.closed = false;
      this.retryMs = RETRY_MIN_MS;
      this.retryTimer = null;
      this.dirty = new Set();
      this.flushTimer = null;
      this.tick = null;
      this.build();
    }

    build() {
      this.statusBadge = badge("unknown");
      this.statusBadge.id = "exec-status";
      this.conn = el("span", { class: "conn", id: "conn", dataset: { state: "connecting" } });
      this.connText = el("span", { class: "conn-text" }, "connecting");
      this.conn.append(el("span", { class: "dot" }), this.connText);
      this.flowName = el("h1", { id: "flow-name" }, "…");
      this.duration = el("span", { id: "exec-duration" });
      this.counts = el("span", { id: "lane-counts" });
      this.eventCount = el("span", { id: "event-count" });
      this.traceBox = el("span", { id: "trace" });
      this.gapBox = el("p", { class: "notice notice-warn", id: "gap", hidden: true });
      this.lanesBox = el("div", { class: "lanes", id: "lanes" });
      this.lanesEmpty = el("p", { class: "muted", id: "lanes-empty" }, "No checkpoint events yet.");
      this.timeline = el("ol", { class: "timeline", id: "timeline" });
      this.timelineEmpty = el("p", { class: "muted", id: "timeline-empty" }, "No custom events.");
      app().replaceChildren(
        el("p", { class: "crumbs" }, el("a", { href: UI, "data-nav": "" }, "← Executions")),
        el(
          "div",
          { class: "exec-head" },
          el("div", {}, this.flowName, el("div", { class: "mono muted", id: "exec-id" }, this.execId)),
          el("div", { class: "exec-state" }, this.statusBadge, this.conn),
        ),
        el(
          "div",
          { class: "exec-meta" },
          el("span", {}, "Duration ", this.duration),
          this.counts,
          this.eventCount,
          this.traceBox,
        ),
        this.gapBox,
        el("h2", {}, "Checkpoints"),
        this.lanesBox,
        this.lanesEmpty,
        el("h2", {}, "Custom events"),
        this.timeline,
        this.timelineEmpty,
        this.recordBox = el("section", { class: "record-annotations", id: "annotations" }),
      );
    }

    async start() {
      let snap = null;
      try {
        snap = await getJson("/executions/" + encodeURIComponent(this.execId) + "/snapshot");
      } catch (err) {
        if (!(err instanceof HttpError) || err.status !== 501) throw err;
        // Streaming is off on this server: show the durable record only.
        const rec = await getJson("/executions/" + encodeURIComponent(this.execId));
        this.applyRecord(rec);
        renderAnnotations(this, rec);
        this.setConnection("off", "live events are disabled on this server");
        this.render();
        return;
      }
      if (this.closed) return;
      this.applySnapshot(snap);
      loadAnnotations(this);
      this.tick = setInterval(() => this.renderTimes(), 1000);
      if (snap.ended) {
        this.setConnection("ended", "ended");
      } else {
        this.open();
      }
    }

    close() {
      this.closed = true;
      clearInterval(this.tick);
      clearTimeout(this.retryTimer);
      clearTimeout(this.flushTimer);
      if (this.source) this.source.close();
      this.source = null;
    }

    applyRecord(rec) {
      this.status = rec.status;
      this.createdAt = rec.created_at;
      this.endedAt = rec.ended_at;
      setText(this.flowName, rec.flow_name || "execution");
      document.title = "kitaru · " + (rec.flow_name || "") + " " + shortId(this.execId);
    }

    applySnapshot(snap) {
      this.applyRecord(snap);
      this.cursor = snap.cursor || null;
      this.lost = snap.lost || 0;
      for (const lane of snap.lanes || []) {
        this.lanes.set(lane.correlation_id, Object.assign(newLane(lane.correlation_id), lane));
        this.dirty.add(lane.correlation_id);
        this.events += lane.event_count || 0;
      }
      for (const ev of snap.timeline || []) this.addTimeline(ev);
      // The server builds the link only from a real trace ID; checked again here, so a
      // producer's text never becomes a link (docs/server-architecture.md, "Untrusted text").
      const traceHref =
        snap.trace_url && isTraceId(snap.trace_id) ? safeHref(snap.trace_url) : null;
      if (traceHref) {
        this.traceBox.replaceChildren(
          el(
            "a",
            { href: traceHref, target: "_blank", rel: "noopener noreferrer", id: "trace-link" },
            "Trace " + shortId(snap.trace_id || ""),
          ),
        );
      } else if (snap.trace_id) {
        this.traceBox.replaceChildren(
          el("span", { class: "muted mono", title: "OpenTelemetry trace ID" }, "trace " + snap.trace_id),
        );
      }
      this.render();
    }

    // -- the stream

    streamUrl() {
      const params = new URLSearchParams({ message_events: "true" });
      if (this.cursor) params.set("since", this.cursor);
      if (auth.readToken) params.set("token", auth.readToken);
      return (
        API + "/executions/" + encodeURIComponent(this.execId) + "/events/stream?" + params
      );
    }

    open() {
      if (this.closed) return;
      debug.opened += 1;
      const source = new EventSource(this.streamUrl());
      this.source = source;
      source.onopen = () => {
        this.retryMs = RETRY_MIN_MS;
        this.setConnection("live", "live");
      };
      source.onmessage = (event) => this.onData(event);
      source.addEventListener("cursor", (event) => {
        if (event.lastEventId) this.cursor = event.lastEventId;
      });
      source.addEventListener("gap", (event) => {
        if (event.lastEventId) this.cursor = event.lastEventId;
        const data = parse(event.data) || {};
        this.lost += typeof data.lost === "number" ? data.lost : 0;
        this.render();
      });
      source.addEventListener("end", (event) => {
        const data = parse(event.data) || {};
        source.close();
        this.source = null;
        if (data.status) this.status = data.status;
        this.setConnection("ended", "ended");
        this.render();
        // The end frame has the final status; the record also has the end time.
        getJson("/executions/" + encodeURIComponent(this.execId))
          .then((rec) => {
            this.applyRecord(rec);
            renderAnnotations(this, rec);
            this.render();
          })
          .catch(() => {});
      });
      source.addEventListener("error", (event) => {
        if (source !== this.source) return;
        if (event instanceof MessageEvent) {
          // The server's own error frame: terminal for this connection; try again later.
          source.close();
          this.reconnectLater();
          return;
        }
        if (source.readyState === EventSource.CLOSED) {
          // EventSource gave up (an HTTP error such as an expired token): reopen ourselves.
          this.reconnectLater();
        } else {
          // EventSource reconnects by itself and sends Last-Event-ID.
          this.setConnection("reconnecting", "reconnecting");
        }
      });
    }

    reconnectLater() {
      if (this.source) this.source.close();
      this.source = null;
      this.setConnection("reconnecting", "reconnecting");
      clearTimeout(this.retryTimer);
      const delay = this.retryMs * (0.5 + Math.random() / 2);
      this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
      this.retryTimer = setTimeout(() => this.reopen(), delay);
    }

    async reopen() {
      if (this.closed) return;
      if (auth.readToken && auth.expiresAt && auth.expiresAt < now() + 5) {
        if (auth.apiToken) {
          try {
            await exchange(auth.apiToken);
          } catch (_err) {
            this.reconnectLater();
            return;
          }
        } else {
          this.setConnection("reconnecting", "access expired");
          notice("Your access has expired: open this page with #token=<API token> again.", "warn");
          return;
        }
      }
      this.open();
    }

    onData(event) {
      if (event.lastEventId) this.cursor = event.lastEventId;
      const ev = parse(event.data);
      if (!ev || typeof ev.correlation_id !== "string" || typeof ev.index !== "number") return;
      const key = ev.correlation_id + "#" + ev.index;
      if (debug.received.length < DEBUG_MAX) {
        debug.received.push({ key, cursor: event.lastEventId, kind: ev.kind });
      }
      // A resumed stream starts after the cursor, so this is a safety net: an event is
      // folded once, however a reconnect went.
      if (this.seen.has(key)) {
        debug.duplicates += 1;
        return;
      }
      this.seen.add(key);
      this.events += 1;
      const lane = this.lanes.get(ev.correlation_id) || newLane(ev.correlation_id);
      this.lanes.set(ev.correlation_id, foldEvent(lane, ev));
      this.dirty.add(ev.correlation_id);
      if (!ev.kind.startsWith(LIFECYCLE_PREFIX)) this.addTimeline(ev);
      this.scheduleRender();
    }

    setConnection(state, text) {
      if (this.conn.dataset.state !== state) debug.transitions.push(state);
      this.conn.dataset.state = state;
      setText(this.connText, text);
    }

    // -- rendering

    scheduleRender() {
      if (this.flushTimer === null) {
        this.flushTimer = setTimeout(() => {
          this.flushTimer = null;
          this.render();
        }, 30);
      }
    }

    render() {
      for (const corr of this.dirty) this.renderLane(this.lanes.get(corr));
      const reorder = this.dirty.size > 0;
      this.dirty.clear();
      if (reorder) {
        const ordered = [...this.lanes.values()].sort(laneOrder);
        ordered.forEach((lane, i) => {
          const row = this.rows.get(lane.correlation_id).row;
          if (this.lanesBox.children[i] !== row) this.lanesBox.insertBefore(row, this.lanesBox.children[i] || null);
        });
      }
      this.lanesEmpty.hidden = this.lanes.size > 0;
      this.timelineEmpty.hidden = this.timeline.children.length > 0;
      setBadge(this.statusBadge, this.status);
      const counts = { running: 0, returned: 0, failed: 0 };
      for (const lane of this.lanes.values()) counts[lane.status] += 1;
      setText(
        this.counts,
        `${this.lanes.size} checkpoint${this.lanes.size === 1 ? "" : "s"}: ` +
          `${counts.running} running, ${counts.returned} returned, ${counts.failed} failed`,
      );
      setText(this.eventCount, `${this.events} event${this.events === 1 ? "" : "s"}`);
      if (this.lost > 0) {
        setText(this.gapBox, `${this.lost} older event(s) are no longer retained by the server.`);
        this.gapBox.hidden = false;
      }
      this.renderTimes();
    }

    renderTimes() {
      const ended = this.endedAt || (ENDED_STATUSES.has(this.status) ? null : now());
      setText(this.duration, this.createdAt && ended ? fmtDuration(ended - this.createdAt) : "—");
      for (const [corr, { parts }] of this.rows) {
        const lane = this.lanes.get(corr);
        const end = lane.ended_at || (lane.status === "running" ? now() : null);
        setText(parts.duration, lane.started_at && end ? fmtDuration(end - lane.started_at) : "");
      }
    }

    renderLane(lane) {
      let entry = this.rows.get(lane.correlation_id);
      if (!entry) {
        const parts = {
          name: el("span", { class: "lane-name" }),
          sub: el("span", { class: "lane-sub mono muted" }),
          status: badge("running"),
          bar: el("div", { class: "bar" }),
          fill: el("div", { class: "bar-fill" }),
          percent: el("span", { class: "lane-percent" }),
          message: el("div", { class: "lane-message" }),
          events: el("span", { class: "lane-events muted" }),
          duration: el("span", { class: "lane-duration muted" }),
        };
        parts.bar.append(parts.fill);
        const row = el(
          "div",
          { class: "lane", dataset: { correlationId: lane.correlation_id } },
          el("div", { class: "lane-title" }, parts.name, parts.sub),
          el("div", { class: "lane-status" }, parts.status),
          el("div", { class: "lane-progress" }, parts.bar, parts.percent),
          parts.message,
          el("div", { class: "lane-stats" }, parts.events, parts.duration),
          laneExtras(this, lane.correlation_id),
        );
        entry = { row, parts };
        this.rows.set(lane.correlation_id, entry);
        this.lanesBox.append(row);
      }
      const { row, parts } = entry;
      row.dataset.status = lane.status;
      setText(parts.name, lane.step_name || lane.checkpoint_name || "checkpoint");
      const sub = [shortId(lane.correlation_id.split(":").pop())];
      if (lane.attempt !== null && lane.attempt > 1) sub.unshift("attempt " + lane.attempt);
      setText(parts.sub, sub.join(" · "));
      setBadge(parts.status, lane.status);
      if (lane.percent === null) {
        parts.bar.hidden = true;
        row.dataset.percent = "";
        setText(parts.percent, "");
      } else {
        const pct = Math.round(lane.percent * 1000) / 10;
        parts.bar.hidden = false;
        parts.fill.style.width = pct + "%";
        row.dataset.percent = String(pct);
        setText(parts.percent, pct + "%");
      }
      let message = lane.message || "";
      if (lane.status === "failed" && lane.error_type) message = lane.error_type + ": " + message;
      setText(parts.message, message);
      row.dataset.events = String(lane.event_count);
      setText(parts.events, `${lane.event_count} event${lane.event_count === 1 ? "" : "s"}`);
    }

    addTimeline(ev) {
      const key = ev.correlation_id + "#" + ev.index;
      if (this.timelineKeys.has(key)) return;
      this.timelineKeys.add(key);
      const payload = ev.payload && typeof ev.payload === "object" ? ev.payload : {};
      const meta = payload.kitaru && typeof payload.kitaru === "object" ? payload.kitaru : {};
      let data = "";
      if (payload.data !== undefined) {
        try {
          data = JSON.stringify(payload.data);
        } catch (_err) {
          data = "";
        }
        if (data.length > 300) data = data.slice(0, 300) + "…";
      }
      const item = el(
        "li",
        { class: "timeline-item", dataset: { kind: ev.kind, key } },
        el("span", { class: "tl-time mono muted" }, fmtTime(meta.ts)),
        el("span", { class: "tl-kind mono" }, ev.kind),
        el("span", { class: "tl-checkpoint muted" }, ev.step_name || ev.checkpoint_name || ""),
        el("span", { class: "tl-message" }, typeof payload.message === "string" ? payload.message : ""),
        data ? el("code", { class: "tl-data" }, data) : null,
      );
      // Newest first; keep the page bounded on chatty executions.
      this.timeline.prepend(item);
      while (this.timeline.children.length > TIMELINE_MAX) this.timeline.lastElementChild.remove();
      this.timelineEmpty.hidden = true;
    }
  }

  function parse(text) {
    try {
      return JSON.parse(text);
    } catch (_err) {
      return null;
    }
  }

  // ---------------------------------------------------------------- start

  async function showServerInfo() {
    try {
      const info = await getJson("/info");
      setText(document.getElementById("server-info"), "server " + (info.version || ""));
    } catch (_err) {
      // The pages report access problems themselves.
    }
  }

  async function main() {
    const apiToken = takeTokenFromUrl();
    loadReadToken();
    if (apiToken) {
      try {
        await exchange(apiToken);
      } catch (err) {
        showSignIn(err instanceof AuthError ? err.message : "Cannot reach the server.");
        return;
      }
    }
    showServerInfo();
    route();
  }

  main();
})();
