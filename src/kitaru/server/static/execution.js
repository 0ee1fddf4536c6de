// The page of one execution: its live lanes (grouped by checkpoint, running first, fan-out
// items in input order, finished lanes past a screenful collapsed), the waterfall, and the
// custom events. Rendered at once from the snapshot, then followed over SSE from its cursor
// and, after a drop, from the last cursor seen (docs/web-view.md).
import { laneExtras, renderAnnotations } from "./annotations.js";
import { HttpError, auth, exchange, executionPath, getJson, streamUrl } from "./api.js";
import { app, badge, el, isTraceId, notice, parse, plural, safeHref, setBadge, setText } from "./dom.js";
import {
  KIND_FAILED,
  LIFECYCLE_PREFIX,
  eventMeta,
  foldEvent,
  groupLanes,
  inputPosition,
  newLane,
  retriedLanes,
  settleLanes,
} from "./lanes.js";
import { fmtAgo, fmtClock, fmtDate, fmtDuration, fmtOffset, now } from "./time.js";
import { Waterfall } from "./waterfall.js";

const UI = "/ui/";
const TIMELINE_MAX = 200;
const DEBUG_MAX = 100000; // frames kept in window.kitaruView.received
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10000;
const SCREENFUL = 12; // lanes shown before finished ones collapse, like the terminal
const ENDED_STATUSES = new Set(["completed", "failed", "lost", "cancelled"]);

// What tests (and curious people in the console) can read: every data frame received,
// before de-duplication, and every connection state the page went through.
export const debug = { received: [], duplicates: 0, transitions: [], opened: 0 };

function shortId(id) {
  return typeof id === "string" && id.length > 12 ? id.slice(0, 8) : id;
}

export class ExecutionView {
  constructor(execId, guarded) {
    this.execId = execId;
    this.guarded = guarded; // runs a fetch and reports access problems like the page does
    this.record = null;
    this.lanes = new Map(); // correlation ID -> lane object
    this.rows = new Map(); // correlation ID -> {row, parts}
    this.groups = new Map(); // checkpoint name -> {box, head, parts, more, expanded}
    this.seen = new Set(); // "correlation#index" folded since the snapshot
    this.failures = new Map(); // correlation ID -> the record's failure of that attempt
    this.retried = new Set(); // failed attempts a later attempt of the same call replaced
    this.failuresLoading = false;
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
    this.waterfall = new Waterfall();
    this.build();
  }

  build() {
    this.statusBadge = badge("unknown");
    this.statusBadge.id = "exec-status";
    this.conn = el("span", { class: "conn", id: "conn", dataset: { state: "connecting" } });
    this.connText = el("span", { class: "conn-text" }, "connecting");
    this.conn.append(el("span", { class: "dot" }), this.connText);
    this.flowName = el("h1", { id: "flow-name" }, "…");
    this.started = el("span", { id: "exec-started" });
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
        el("span", {}, "Started ", this.started),
        el("span", {}, "Duration ", this.duration),
        this.counts,
        this.eventCount,
        this.traceBox,
      ),
      this.gapBox,
      el("h2", {}, "Checkpoints"),
      this.lanesBox,
      this.lanesEmpty,
      el("h2", {}, "Waterfall"),
      this.waterfall.node,
      el("h2", {}, "Custom events"),
      this.timeline,
      this.timelineEmpty,
      (this.recordBox = el("section", { class: "record-annotations", id: "annotations" })),
    );
  }

  async start() {
    let snap = null;
    try {
      snap = await getJson(executionPath(this.execId, "/snapshot"));
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) {
        this.showNotFound();
        return;
      }
      if (!(err instanceof HttpError) || err.status !== 501) throw err;
      // Streaming is off on this server: show the durable record only.
      let rec = null;
      try {
        rec = await getJson(executionPath(this.execId));
      } catch (recErr) {
        if (recErr instanceof HttpError && recErr.status === 404) {
          this.showNotFound();
          return;
        }
        throw recErr;
      }
      this.applyRecord(rec);
      renderAnnotations(this, rec);
      this.setConnection("off", "live events are disabled on this server");
      this.render();
      return;
    }
    if (this.closed) return;
    this.applySnapshot(snap);
    this.tick = setInterval(() => this.renderTimes(), 500);
    this.loadRecord();
    if (snap.ended) {
      this.setConnection("ended", "ended");
    } else {
      this.open();
    }
  }

  showNotFound() {
    this.close();
    document.title = "kitaru · execution not found";
    app().replaceChildren(
      el(
        "section",
        { class: "not-found", id: "not-found" },
        el("h1", {}, "Execution not found"),
        el(
          "p",
          {},
          "This server has no execution with the ID ",
          el("code", { class: "mono", id: "not-found-id" }, this.execId),
          ".",
        ),
        el(
          "p",
          { class: "muted" },
          "Execution IDs are exact (prefixes are not accepted). It may also have been removed " +
            "by the server's retention, or recorded by another server or the local database.",
        ),
        el("p", {}, el("a", { href: UI, "data-nav": "", id: "back-to-list" }, "← All executions")),
      ),
    );
  }

  // The durable record: the end time, and the calls that reused an output (no live events).
  loadRecord() {
    getJson(executionPath(this.execId))
      .then((rec) => {
        if (this.closed) return;
        this.applyRecord(rec);
        this.waterfall.setReused(rec.checkpoints);
        renderAnnotations(this, rec);
        this.render();
      })
      .catch(() => {});
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
    this.settle();
    if (Array.isArray(rec.checkpoints)) this.applyFailures(rec.checkpoints);
    setText(this.flowName, rec.flow_name || "execution");
    this.started.title = fmtDate(rec.created_at);
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
    this.settle();
    for (const ev of snap.timeline || []) this.addTimeline(ev);
    // The server builds the link only from a real trace ID; checked again here, so a
    // producer's text never becomes a link (docs/server-architecture.md, "Untrusted text").
    const traceHref = snap.trace_url && isTraceId(snap.trace_id) ? safeHref(snap.trace_url) : null;
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

  // A lane that never ended takes the execution's verdict; its time stops at the end.
  settle() {
    for (const corr of settleLanes(this.lanes.values(), this.status, this.endedAt)) {
      this.dirty.add(corr);
    }
  }

  // The failure text lives in the durable record, not in the stream (docs/outcomes.md):
  // fetch the record when a lane fails, and show each failed attempt's message on its lane.
  loadFailures() {
    if (this.failuresLoading || this.closed) return;
    this.failuresLoading = true;
    getJson(executionPath(this.execId))
      .then((rec) => {
        if (this.closed) return;
        if (Array.isArray(rec.checkpoints)) this.applyFailures(rec.checkpoints);
        this.render();
      })
      .catch(() => {})
      .finally(() => {
        this.failuresLoading = false;
      });
  }

  applyFailures(checkpoints) {
    for (const cp of checkpoints) {
      for (const attempt of cp && Array.isArray(cp.attempts) ? cp.attempts : []) {
        if (!attempt || typeof attempt.correlation_id !== "string") continue;
        if (typeof attempt.error_type !== "string") continue;
        this.failures.set(attempt.correlation_id, {
          type: attempt.error_type,
          message: typeof attempt.error_message === "string" ? attempt.error_message : null,
          traceback: typeof attempt.error_traceback === "string" ? attempt.error_traceback : null,
        });
        if (this.lanes.has(attempt.correlation_id)) this.dirty.add(attempt.correlation_id);
      }
    }
  }

  // -- the stream

  open() {
    if (this.closed) return;
    debug.opened += 1;
    const source = new EventSource(streamUrl(this.execId, this.cursor));
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
      this.settle();
      this.setConnection("ended", "ended");
      this.render();
      // The end frame has the final status; the record also has the end time.
      this.loadRecord();
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
    if (ev.kind === KIND_FAILED) this.loadFailures();
    if (typeof ev.kind === "string" && !ev.kind.startsWith(LIFECYCLE_PREFIX)) this.addTimeline(ev);
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
    // A failed attempt that a later attempt of the same call replaced reads as retried.
    const retried = retriedLanes(this.lanes.values());
    for (const corr of new Set([...retried, ...this.retried])) {
      if (retried.has(corr) !== this.retried.has(corr)) this.dirty.add(corr);
    }
    this.retried = retried;
    for (const corr of this.dirty) this.renderLane(this.lanes.get(corr));
    const reorder = this.dirty.size > 0;
    this.dirty.clear();
    if (reorder) this.layout();
    this.lanesEmpty.hidden = this.lanes.size > 0;
    this.timelineEmpty.hidden = this.timeline.children.length > 0;
    setBadge(this.statusBadge, this.status);
    const counts = { running: 0, returned: 0, failed: 0, lost: 0, cancelled: 0, retried: 0 };
    for (const lane of this.lanes.values()) {
      const shown = this.shownStatus(lane);
      counts[shown] = (counts[shown] || 0) + 1;
    }
    const verdicts = ["lost", "cancelled", "retried"]
      .filter((v) => counts[v] > 0)
      .map((v) => `, ${counts[v]} ${v}`)
      .join("");
    setText(
      this.counts,
      `${plural(this.lanes.size, "checkpoint execution")}: ` +
        `${counts.running} running, ${counts.returned} returned, ${counts.failed} failed` +
        verdicts,
    );
    setText(this.eventCount, plural(this.events, "event"));
    if (this.lost > 0) {
      setText(this.gapBox, `${this.lost} older event(s) are no longer retained by the server.`);
      this.gapBox.hidden = false;
    }
    this.renderTimes();
  }

  // Groups in display order, lanes in display order inside each; finished lanes beyond
  // the screenful (what the running lanes leave of it) are collapsed per group.
  layout() {
    const groups = groupLanes(this.lanes.values());
    const running = groups.reduce((n, g) => n + g.running.length, 0);
    let budget = Math.max(0, SCREENFUL - running);
    groups.forEach((group, gi) => {
      const box = this.groupBox(group.name);
      if (this.lanesBox.children[gi] !== box.node) {
        this.lanesBox.insertBefore(box.node, this.lanesBox.children[gi] || null);
      }
      const shown = box.expanded ? group.finished.length : Math.min(budget, group.finished.length);
      budget -= Math.min(budget, group.finished.length);
      const ordered = [...group.running, ...group.finished];
      ordered.forEach((lane, i) => {
        const { row } = this.rows.get(lane.correlation_id);
        row.hidden = i >= group.running.length + shown;
        if (box.list.children[i] !== row) box.list.insertBefore(row, box.list.children[i] || null);
      });
      const hidden = group.finished.length - shown;
      box.more.hidden = hidden <= 0 && !box.expanded;
      setText(
        box.more,
        box.expanded ? "Show fewer finished" : `… ${hidden} more finished (show)`,
      );
      const total = group.running.length + group.finished.length;
      setText(box.title, group.name);
      setText(
        box.summary,
        `${plural(total, "call")} · ${group.running.length} running · ` +
          `${group.finished.filter((l) => this.shownStatus(l) === "failed").length} failed`,
      );
      box.node.dataset.running = String(group.running.length);
    });
  }

  groupBox(name) {
    let box = this.groups.get(name);
    if (!box) {
      const title = el("span", { class: "group-name" });
      const summary = el("span", { class: "group-summary muted" });
      const list = el("div", { class: "group-lanes" });
      const more = el("button", { type: "button", class: "group-more", hidden: true });
      box = { title, summary, list, more, expanded: false };
      more.addEventListener("click", () => {
        box.expanded = !box.expanded;
        this.layout();
      });
      box.node = el(
        "section",
        { class: "lane-group", dataset: { checkpoint: name } },
        el("div", { class: "group-head" }, title, summary),
        list,
        more,
      );
      this.groups.set(name, box);
    }
    return box;
  }

  // A lane's status as shown: "retried" for a failed attempt that was retried.
  shownStatus(lane) {
    return this.retried.has(lane.correlation_id) ? "retried" : lane.status;
  }

  renderTimes() {
    const at = now();
    const ended = this.endedAt || (ENDED_STATUSES.has(this.status) ? null : at);
    setText(this.duration, this.createdAt && ended ? fmtDuration(ended - this.createdAt) : "—");
    setText(this.started, this.createdAt ? fmtAgo(this.createdAt, at) : "—");
    for (const [corr, { parts }] of this.rows) {
      const lane = this.lanes.get(corr);
      const end = lane.ended_at || (lane.status === "running" ? at : null);
      setText(parts.duration, lane.started_at && end ? fmtDuration(end - lane.started_at) : "");
      const base = this.createdAt || lane.started_at;
      setText(parts.offset, lane.started_at && base ? fmtOffset(lane.started_at - base) : "");
      parts.offset.title = "started after the execution started";
    }
    this.waterfall.update(this.lanes.values(), this.createdAt, this.endedAt);
  }

  renderLane(lane) {
    let entry = this.rows.get(lane.correlation_id);
    if (!entry) {
      const parts = {
        name: el("span", { class: "lane-name" }),
        sub: el("span", { class: "lane-sub muted" }),
        status: badge("running"),
        bar: el("div", { class: "bar" }),
        fill: el("div", { class: "bar-fill" }),
        percent: el("span", { class: "lane-percent" }),
        message: el("div", { class: "lane-message" }),
        events: el("span", { class: "lane-events muted" }),
        offset: el("span", { class: "lane-offset muted" }),
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
        el("div", { class: "lane-stats" }, parts.events, parts.offset, parts.duration),
        laneExtras(this, lane.correlation_id, this.guarded),
      );
      entry = { row, parts };
      this.rows.set(lane.correlation_id, entry);
    }
    const { row, parts } = entry;
    const shown = this.shownStatus(lane);
    row.dataset.status = shown;
    const position = inputPosition(lane);
    row.dataset.position = position === null ? "" : String(position);
    setText(parts.name, lane.step_name || lane.checkpoint_name || "checkpoint");
    // The step name already says the input position; only a retry needs a word more.
    setText(parts.sub, lane.attempt !== null && lane.attempt > 1 ? "attempt " + lane.attempt : "");
    setBadge(parts.status, shown);
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
    const failure = lane.status === "failed" ? this.failures.get(lane.correlation_id) : null;
    if (failure && failure.message !== null) {
      // The record's text, shown as text (never as HTML), its traceback behind a toggle;
      // built once, so an opened traceback stays open while the lane updates.
      if (parts.failure === failure) return this.renderCount(row, parts, lane);
      parts.failure = failure;
      const summary = el("summary", { class: "lane-error-summary" }, failure.type + ": " + failure.message);
      const details = el("details", { class: "lane-error" }, summary);
      if (failure.traceback) details.append(el("pre", { class: "lane-traceback" }, failure.traceback));
      parts.message.replaceChildren(details);
      parts.message.title = "";
    } else {
      let message = lane.message || "";
      if (lane.status === "failed" && lane.error_type) message = lane.error_type + ": " + message;
      setText(parts.message, message);
      parts.message.title = message; // the whole text when the line is cut short
      parts.failure = null;
    }
    this.renderCount(row, parts, lane);
  }

  renderCount(row, parts, lane) {
    row.dataset.events = String(lane.event_count);
    setText(parts.events, plural(lane.event_count, "event"));
  }

  addTimeline(ev) {
    const key = ev.correlation_id + "#" + ev.index;
    if (this.timelineKeys.has(key)) return;
    this.timelineKeys.add(key);
    const { payload, meta } = eventMeta(ev);
    let data = "";
    if (payload.data !== undefined) {
      try {
        data = JSON.stringify(payload.data);
      } catch (_err) {
        data = "";
      }
      if (data.length > 300) data = data.slice(0, 300) + "…";
    }
    const time = el("span", { class: "tl-time mono muted", title: fmtDate(meta.ts) }, fmtClock(meta.ts));
    const item = el(
      "li",
      { class: "timeline-item", dataset: { kind: ev.kind, key } },
      time,
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
