// The lane fold and the order lanes are shown in.
//
// The fold is the same as kitaru.lanes.LaneBoard (Python), so a snapshot's lanes continue
// exactly: latest message and percent by highest index, terminal status whenever it
// arrives, identity fields first-known-wins, start time the earliest seen.
//
// The order (docs/web-view.md): lanes are grouped by checkpoint; groups with running lanes
// come first; inside a group running lanes come first, and fan-out items keep their input
// order (the call's input position, payload.kitaru.item, where the event carries it; else
// the step number the flow gave each call: fetch, fetch_2, fetch_3, ...), retries after
// their first attempt.

export const KIND_STARTED = "kitaru.checkpoint.started";
export const KIND_RETURNED = "kitaru.checkpoint.returned";
export const KIND_FAILED = "kitaru.checkpoint.failed";
export const LIFECYCLE_PREFIX = "kitaru.checkpoint.";
const TERMINAL = { [KIND_RETURNED]: "returned", [KIND_FAILED]: "failed" };
// An execution that ended with one of these gives it to every lane that never ended
// (docs/outcomes.md).
const VERDICTS = new Set(["lost", "cancelled"]);

export function newLane(correlationId) {
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
    item: null,
  };
}

function num(value) {
  return typeof value === "number" && isFinite(value) ? value : null;
}

function str(value) {
  return typeof value === "string" && value ? value : null;
}

export function eventMeta(ev) {
  const payload = ev.payload && typeof ev.payload === "object" ? ev.payload : {};
  const meta = payload.kitaru && typeof payload.kitaru === "object" ? payload.kitaru : {};
  return { payload, meta };
}

export function foldEvent(lane, ev) {
  const { payload, meta } = eventMeta(ev);
  const data = payload.data && typeof payload.data === "object" ? payload.data : {};
  const index = ev.index;
  const ts = num(meta.ts);
  lane.event_count += 1;
  const identity = {
    checkpoint_name: str(ev.checkpoint_name) || str(meta.checkpoint_name),
    checkpoint_id: str(ev.checkpoint_id) || str(meta.checkpoint_id),
    step_name: str(ev.step_name) || str(meta.step_name),
    exec_id: str(ev.exec_id) || str(meta.execution_id),
    trace_id: str(meta.trace_id),
    span_id: str(meta.span_id),
  };
  for (const [field, value] of Object.entries(identity)) {
    if (value && lane[field] === null) lane[field] = value;
  }
  if (lane.attempt === null && Number.isInteger(meta.attempt)) lane.attempt = meta.attempt;
  if (lane.item === null && Number.isInteger(meta.item) && meta.item >= 0) lane.item = meta.item;
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
      terminal === "failed" && typeof payload.error_type === "string" ? payload.error_type : null;
  }
  return lane;
}

// The call's position among the calls of its checkpoint, counted from 1: the fan-out's
// input position (payload.kitaru.item, counted from 0) where the events carry it, else the
// step name's number (1 for "fetch", 3 for "fetch_3"), or null when neither says (another
// process's call: "fetch_3@1234" still counts as 3).
export function inputPosition(lane) {
  if (Number.isInteger(lane.item) && lane.item >= 0) return lane.item + 1;
  const name = lane.checkpoint_name;
  const step = (lane.step_name || "").split("@")[0];
  if (!name || !step) return null;
  if (step === name) return 1;
  if (step.startsWith(name + "_")) {
    const n = Number(step.slice(name.length + 1));
    if (Number.isInteger(n) && n > 0) return n;
  }
  return null;
}

function compareNullsLast(a, b) {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

function inputOrder(a, b) {
  return (
    compareNullsLast(inputPosition(a), inputPosition(b)) ||
    compareNullsLast(a.attempt, b.attempt) ||
    compareNullsLast(a.started_at, b.started_at) ||
    (a.correlation_id < b.correlation_id ? -1 : a.correlation_id > b.correlation_id ? 1 : 0)
  );
}

export function groupName(lane) {
  return lane.checkpoint_name || "checkpoint";
}

// [{name, running: [lanes], finished: [lanes], startedAt}], in display order.
export function groupLanes(lanes) {
  const groups = new Map();
  for (const lane of lanes) {
    const name = groupName(lane);
    let group = groups.get(name);
    if (!group) {
      group = { name, running: [], finished: [], startedAt: null };
      groups.set(name, group);
    }
    (lane.status === "running" ? group.running : group.finished).push(lane);
    if (lane.started_at !== null && (group.startedAt === null || lane.started_at < group.startedAt)) {
      group.startedAt = lane.started_at;
    }
  }
  const ordered = [...groups.values()];
  for (const group of ordered) {
    group.running.sort(inputOrder);
    group.finished.sort(inputOrder);
  }
  ordered.sort(
    (a, b) =>
      (b.running.length > 0) - (a.running.length > 0) ||
      compareNullsLast(a.startedAt, b.startedAt) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  return ordered;
}

// Trace order for the waterfall: by start time, then input order.
export function byStart(a, b) {
  return compareNullsLast(a.started_at, b.started_at) || inputOrder(a, b);
}

// Lanes that never ended take the execution's verdict when it ended lost or cancelled, and
// their time stops at its end. Returns the correlation IDs of the lanes it changed.
export function settleLanes(lanes, status, endedAt) {
  const changed = [];
  if (!VERDICTS.has(status)) return changed;
  for (const lane of lanes) {
    if (lane.status !== "running") continue;
    lane.status = status;
    if (endedAt) lane.ended_at = Math.max(endedAt, lane.started_at || 0);
    changed.push(lane.correlation_id);
  }
  return changed;
}

function callKey(lane) {
  return lane.checkpoint_id || lane.step_name;
}

// The failed attempts that a later attempt of the same call replaced: a retry, not a
// failure (as kitaru.lanes.LaneBoard.superseded()). A set of correlation IDs.
export function retriedLanes(lanes) {
  const all = [...lanes];
  const lastAttempt = new Map();
  for (const lane of all) {
    const call = callKey(lane);
    if (call && lane.attempt !== null) {
      lastAttempt.set(call, Math.max(lastAttempt.get(call) || 0, lane.attempt));
    }
  }
  const retried = new Set();
  for (const lane of all) {
    const call = callKey(lane);
    if (lane.status === "failed" && call && lane.attempt !== null && lane.attempt < lastAttempt.get(call)) {
      retried.add(lane.correlation_id);
    }
  }
  return retried;
}
