// Runtime logs, metadata and usage in the web view (docs/runtime-logs-and-metadata.md).
// Log lines are fetched on demand per lane (a durable record, never a live event); metadata
// and usage come from the execution's record, fetched after the snapshot and again at its
// end. Everything is shown as text (setText / el children), never as HTML.
import { executionPath, getJson } from "./api.js";
import { el, setText } from "./dom.js";
import { fmtClock } from "./time.js";

const LOG_LINES_MAX = 1000;

function num(value) {
  return typeof value === "number" && isFinite(value) ? value : null;
}

function str(value) {
  return typeof value === "string" && value ? value : null;
}

// The logs button, log box and metadata line of one lane. `guarded` runs the fetch and
// reports access problems like the rest of the page.
export function laneExtras(view, correlationId, guarded) {
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
  const body = await getJson(executionPath(view.execId, "/logs?" + params));
  const lines = Array.isArray(body.lines) ? body.lines : [];
  if (lines.length === 0) {
    setText(box, "No log lines.");
    return;
  }
  setText(
    box,
    lines.map((l) => `${fmtClock(l.ts)} ${str(l.level) || ""} ${str(l.message) || ""}`).join("\n"),
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

function renderLaneMeta(view, correlationId) {
  const node = view.laneMeta && view.laneMeta.get(correlationId);
  if (!node || !view.record) return;
  for (const cp of view.record.checkpoints || []) {
    for (const a of cp.attempts || []) {
      if (a.correlation_id === correlationId) setText(node, fmtFields(a.metadata));
    }
  }
}

// The execution's metadata and its tokens and cost, under the page.
export function renderAnnotations(view, rec) {
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

// Tokens and cost per checkpoint name over the newest executions (GET /usage), on the list.
export function usagePanel() {
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
        el(
          "tr",
          {},
          ...["Checkpoint", "Executions", "Input", "Output", "Reused", "Cost (USD)"].map((h) =>
            el("th", {}, h),
          ),
        ),
      ),
      el("tbody", { id: "usage-panel-body" }),
    ),
  );
}

export async function refreshUsagePanel() {
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
