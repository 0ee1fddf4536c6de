// Times of the web view: relative ("12 s ago") with the exact date as a tooltip, and
// durations that tick while something runs. Timestamps are seconds since the epoch.

export function now() {
  return Date.now() / 1000;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  const s = Math.max(0, seconds);
  if (s < 10) return s.toFixed(1) + " s";
  if (s < 60) return Math.round(s) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";
  return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
}

export function fmtAgo(ts, at) {
  if (typeof ts !== "number" || !isFinite(ts)) return "";
  const s = Math.max(0, (at === undefined ? now() : at) - ts);
  if (s < 5) return "just now";
  if (s < 60) return Math.floor(s) + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  const days = Math.floor(s / 86400);
  return days === 1 ? "yesterday" : days + " days ago";
}

export function fmtDate(ts) {
  if (typeof ts !== "number" || !isFinite(ts)) return "";
  const d = new Date(ts * 1000);
  return d.toLocaleDateString() + " " + d.toLocaleTimeString([], { hour12: false });
}

export function fmtClock(ts) {
  if (typeof ts !== "number" || !isFinite(ts)) return "";
  return new Date(ts * 1000).toLocaleTimeString([], { hour12: false });
}

// "+1.2 s" from the start of the execution: how the timeline and the waterfall read.
export function fmtOffset(seconds) {
  if (!isFinite(seconds)) return "";
  return "+" + fmtDuration(seconds);
}
