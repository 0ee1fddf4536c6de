// The executions list: filter by flow and status, search by ID prefix, page through the
// newest-first order. Filters live in the address bar (?flow=&status=&id=&page=), so a
// filtered list can be shared and survives a reload; the server does the filtering
// (GET /api/v1/executions?flow=&status=&id_prefix=&limit=&offset=).
import { refreshUsagePanel, usagePanel } from "./annotations.js";
import { getJson } from "./api.js";
import { app, badge, el, notice, setText } from "./dom.js";
import { fmtAgo, fmtDate, fmtDuration, now } from "./time.js";

const UI = "/ui/";
const PAGE_SIZE = 25;
const POLL_MS = 2000;
const STATUSES = ["running", "completed", "failed", "lost", "cancelled"];
const ENDED_STATUSES = new Set(["completed", "failed", "lost", "cancelled"]);

function readFilters() {
  const params = new URLSearchParams(location.search);
  const page = Number(params.get("page") || "1");
  return {
    flow: params.get("flow") || "",
    status: STATUSES.includes(params.get("status")) ? params.get("status") : "",
    id: params.get("id") || "",
    page: Number.isInteger(page) && page > 0 ? page : 1,
  };
}

function writeFilters(filters) {
  const params = new URLSearchParams();
  if (filters.flow) params.set("flow", filters.flow);
  if (filters.status) params.set("status", filters.status);
  if (filters.id) params.set("id", filters.id);
  if (filters.page > 1) params.set("page", String(filters.page));
  const query = params.toString();
  history.replaceState(null, "", UI + (query ? "?" + query : ""));
}

// Returns the teardown of the page.
export function showList(guarded) {
  document.title = "kitaru · executions";
  const filters = readFilters();
  const flowNames = new Set();
  const body = el("tbody", { id: "executions-body" });
  const empty = el("p", { class: "muted empty", id: "executions-empty", hidden: true });
  const flowInput = el("input", {
    id: "filter-flow",
    type: "search",
    list: "flow-names",
    placeholder: "any flow",
    "aria-label": "Flow",
    value: filters.flow,
  });
  const flowList = el("datalist", { id: "flow-names" });
  const statusSelect = el(
    "select",
    { id: "filter-status", "aria-label": "Status" },
    el("option", { value: "" }, "any status"),
    ...STATUSES.map((s) => el("option", { value: s }, s)),
  );
  statusSelect.value = filters.status;
  const idInput = el("input", {
    id: "filter-id",
    type: "search",
    placeholder: "execution ID starts with…",
    "aria-label": "Execution ID prefix",
    spellcheck: "false",
    autocomplete: "off",
    value: filters.id,
  });
  const prev = el("button", { type: "button", id: "page-prev" }, "← Newer");
  const next = el("button", { type: "button", id: "page-next" }, "Older →");
  const pageInfo = el("span", { class: "muted", id: "page-info" });
  app().replaceChildren(
    el("h1", {}, "Executions"),
    el(
      "form",
      { class: "filters", id: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      el("label", {}, "Flow ", flowInput),
      flowList,
      el("label", {}, "Status ", statusSelect),
      el("label", { class: "grow" }, "ID ", idInput),
    ),
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
    el("div", { class: "pager" }, prev, pageInfo, next),
    usagePanel(),
  );

  let timer = null;
  let stopped = false;
  let generation = 0;
  let rows = [];

  const poll = async () => {
    clearTimeout(timer);
    const mine = ++generation;
    await guarded(async () => {
      const params = new URLSearchParams({
        limit: String(PAGE_SIZE + 1),
        offset: String((filters.page - 1) * PAGE_SIZE),
      });
      if (filters.flow) params.set("flow", filters.flow);
      if (filters.status) params.set("status", filters.status);
      if (filters.id) params.set("id_prefix", filters.id);
      const answer = await getJson("/executions?" + params);
      if (stopped || mine !== generation) return;
      notice(null);
      const more = answer.length > PAGE_SIZE;
      rows = answer.slice(0, PAGE_SIZE);
      for (const rec of rows) {
        if (rec.flow_name && !flowNames.has(rec.flow_name)) {
          flowNames.add(rec.flow_name);
          flowList.append(el("option", { value: rec.flow_name }));
        }
      }
      body.replaceChildren(...rows.map(executionRow));
      const filtered = filters.flow || filters.status || filters.id;
      setText(
        empty,
        filtered
          ? "No executions match these filters."
          : "No executions yet. Run a flow with KITARU_SERVER_URL set to this server.",
      );
      empty.hidden = rows.length > 0;
      prev.disabled = filters.page <= 1;
      next.disabled = !more;
      setText(pageInfo, rows.length ? `page ${filters.page}` : "");
      await refreshUsagePanel();
    });
    if (!stopped && mine === generation) timer = setTimeout(poll, POLL_MS);
  };

  const refilter = () => {
    filters.flow = flowInput.value.trim();
    filters.status = statusSelect.value;
    filters.id = idInput.value.trim().toLowerCase();
    filters.page = 1;
    writeFilters(filters);
    poll();
  };
  let typing = null;
  const onType = () => {
    clearTimeout(typing);
    typing = setTimeout(refilter, 200);
  };
  flowInput.addEventListener("input", onType);
  idInput.addEventListener("input", onType);
  statusSelect.addEventListener("change", refilter);
  prev.addEventListener("click", () => {
    filters.page = Math.max(1, filters.page - 1);
    writeFilters(filters);
    poll();
  });
  next.addEventListener("click", () => {
    filters.page += 1;
    writeFilters(filters);
    poll();
  });
  // Relative times and running durations tick between polls.
  const ticker = setInterval(() => {
    for (const tr of body.children) updateTimes(tr);
  }, 1000);
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(typing);
    clearInterval(ticker);
  };
}

function executionRow(rec) {
  const href = UI + "executions/" + encodeURIComponent(rec.exec_id);
  const started = el("td", { class: "started", title: fmtDate(rec.created_at) });
  const duration = el("td", { class: "duration" });
  const tr = el(
    "tr",
    { class: "execution-row", dataset: { execId: rec.exec_id, status: rec.status } },
    el("td", {}, badge(rec.status)),
    el("td", { class: "flow" }, rec.flow_name || ""),
    el("td", { class: "mono" }, el("a", { href, "data-nav": "" }, rec.exec_id)),
    started,
    duration,
  );
  tr.record = rec;
  updateTimes(tr);
  return tr;
}

function updateTimes(tr) {
  const rec = tr.record;
  if (!rec) return;
  const at = now();
  const end = rec.ended_at || (ENDED_STATUSES.has(rec.status) ? null : at);
  setText(tr.children[3], fmtAgo(rec.created_at, at));
  setText(tr.children[4], end && rec.created_at ? fmtDuration(end - rec.created_at) : "");
}
