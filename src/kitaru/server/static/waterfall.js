// The live waterfall: one bar per checkpoint execution on the execution's time axis, built
// from the live events alone (docs/web-view.md), so the shape of the trace shows before any
// span is exported. A running bar grows until its terminal event; bars are coloured by
// state; retries carry their attempt number. Checkpoint calls that reused a recorded output
// (cache hits, replayed steps) publish no live events: they come from the durable record
// as zero-length markers.
import { el, setText } from "./dom.js";
import { byStart } from "./lanes.js";
import { fmtDuration, fmtOffset, now } from "./time.js";

const TICKS = 5;

export class Waterfall {
  constructor() {
    this.rows = new Map(); // correlation ID (or reused checkpoint ID) -> {row, bar, label}
    this.reused = [];
    this.axis = el("div", { class: "wf-axis", "aria-hidden": "true" });
    this.body = el("div", { class: "wf-rows", id: "waterfall-rows" });
    this.empty = el("p", { class: "muted", id: "waterfall-empty" }, "No checkpoint has started yet.");
    this.node = el(
      "section",
      { class: "waterfall", id: "waterfall", "aria-label": "Waterfall of checkpoint executions" },
      this.axis,
      this.body,
      this.empty,
    );
  }

  // Checkpoint records (from GET /executions/{id}) that reused an output.
  setReused(checkpoints) {
    this.reused = (checkpoints || [])
      .filter((cp) => cp && (cp.status === "cached" || cp.status === "replayed"))
      .map((cp) => ({
        key: "reused:" + cp.checkpoint_id,
        status: cp.status,
        step_name: cp.step_name,
        started_at: typeof cp.started_at === "number" ? cp.started_at : null,
      }));
  }

  // lanes: the folded lanes; start/end: the execution's times (end null while running).
  update(lanes, start, end) {
    const ordered = [...lanes].filter((l) => l.started_at !== null).sort(byStart);
    const at = now();
    let t0 = typeof start === "number" ? start : null;
    let t1 = typeof end === "number" ? end : null;
    for (const lane of ordered) {
      if (t0 === null || lane.started_at < t0) t0 = lane.started_at;
    }
    const running = ordered.some((l) => l.status === "running");
    if (t1 === null || running) t1 = Math.max(t1 || 0, at);
    for (const lane of ordered) {
      if (lane.ended_at !== null && lane.ended_at > t1) t1 = lane.ended_at;
    }
    if (t0 === null) {
      this.empty.hidden = false;
      this.axis.replaceChildren();
      return;
    }
    const span = Math.max(t1 - t0, 0.001);
    const pct = (ts) => (Math.min(Math.max(ts - t0, 0), span) / span) * 100;
    this.empty.hidden = true;
    this.renderAxis(span);

    const wanted = [];
    for (const lane of ordered) {
      const entry = this.entry(lane.correlation_id);
      const end = lane.status === "running" ? at : lane.ended_at !== null ? lane.ended_at : at;
      const left = pct(lane.started_at);
      const width = Math.max(pct(end) - left, 0);
      const attempt = lane.attempt || 1;
      entry.row.dataset.status = lane.status;
      entry.row.dataset.started = String(lane.started_at);
      entry.row.dataset.attempt = String(attempt);
      entry.row.classList.toggle("wf-retry", attempt > 1);
      setText(entry.label, (lane.step_name || lane.checkpoint_name || "checkpoint"));
      setText(entry.mark, attempt > 1 ? "retry " + attempt : "");
      entry.bar.style.left = left.toFixed(3) + "%";
      entry.bar.style.width = width.toFixed(3) + "%";
      const took = fmtDuration(end - lane.started_at);
      entry.bar.title =
        `${lane.step_name || lane.checkpoint_name || "checkpoint"} · attempt ${attempt} · ` +
        `${lane.status} · ${took} (starts ${fmtOffset(lane.started_at - t0)})`;
      setText(entry.time, took);
      wanted.push(entry.row);
    }
    for (const item of this.reused) {
      if (item.started_at === null) continue;
      const entry = this.entry(item.key);
      entry.row.dataset.status = item.status;
      entry.row.dataset.started = String(item.started_at);
      entry.row.classList.add("wf-reused");
      setText(entry.label, item.step_name || "checkpoint");
      setText(entry.mark, item.status === "cached" ? "cache hit" : "replayed");
      entry.bar.style.left = pct(item.started_at).toFixed(3) + "%";
      entry.bar.style.width = "0%";
      entry.bar.title = `${item.step_name} · ${item.status} (recorded output reused)`;
      wanted.push(entry.row);
    }
    wanted.sort((a, b) => Number(a.dataset.started) - Number(b.dataset.started));
    wanted.forEach((row, i) => {
      if (this.body.children[i] !== row) this.body.insertBefore(row, this.body.children[i] || null);
    });
  }

  entry(key) {
    let entry = this.rows.get(key);
    if (!entry) {
      const label = el("span", { class: "wf-name" });
      const mark = el("span", { class: "wf-mark" });
      const time = el("span", { class: "wf-time muted" });
      const bar = el("div", { class: "wf-bar" });
      const row = el(
        "div",
        { class: "wf-row", dataset: { key } },
        el("div", { class: "wf-label" }, label, mark),
        el("div", { class: "wf-track" }, bar),
        time,
      );
      entry = { row, bar, label, mark, time };
      this.rows.set(key, entry);
    }
    return entry;
  }

  renderAxis(span) {
    const ticks = [];
    for (let i = 0; i <= TICKS; i += 1) {
      const tick = el("span", { class: "wf-tick" }, fmtOffset((span * i) / TICKS));
      tick.style.left = (i * 100) / TICKS + "%";
      ticks.push(tick);
    }
    this.axis.replaceChildren(el("div", { class: "wf-axis-track" }, ...ticks));
  }
}
