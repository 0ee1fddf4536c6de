// DOM helpers of the web view. Text from events or records only ever enters the page as
// text (text nodes, textContent), never as HTML: see docs/web-view.md.

// el("a", {href: x, class: "y"}, "text", child): children that are not nodes become text.
export function el(tag, props, ...children) {
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

export function setText(node, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

export function app() {
  return document.getElementById("app");
}

export function notice(text, kind) {
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

export function badge(status) {
  return el("span", { class: "badge badge-" + (status || "unknown") }, status || "unknown");
}

export function setBadge(node, status) {
  const value = status || "unknown";
  node.className = "badge badge-" + value;
  setText(node, value);
}

// A W3C trace ID: 32 lowercase hex digits, not all zero.
export function isTraceId(value) {
  return typeof value === "string" && /^[0-9a-f]{32}$/.test(value) && !/^0+$/.test(value);
}

// Only http(s) links: a misconfigured template must not become a javascript: URL.
export function safeHref(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (_err) {
    return null;
  }
}

export function parse(text) {
  try {
    return JSON.parse(text);
  } catch (_err) {
    return null;
  }
}

export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}
