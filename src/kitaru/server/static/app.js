// The kitaru web view: a list of recent executions and a live page per execution.
//
// Plain browser JavaScript modules, no build step, nothing loaded from elsewhere. Each
// module is one concept: api.js (the server and its tokens), dom.js, time.js, lanes.js (the
// lane fold and order), list.js (the executions list), execution.js (one execution's page),
// waterfall.js, annotations.js (runtime logs, metadata, usage), signin.js. This one routes. See docs/web-view.md.
//
// Safety rule: text that comes from events or records is only ever put into the page as
// text (text nodes, textContent), never parsed as HTML. The server also sends a strict
// Content-Security-Policy, so even a mistake here could not run an injected script.
import { AuthError, HttpError, exchange, getJson, loadReadToken, takeTokenFromUrl } from "./api.js";
import { notice, setText } from "./dom.js";
import { ExecutionView, debug } from "./execution.js";
import { showList } from "./list.js";
import { showSignIn } from "./signin.js";

window.kitaruView = debug;
let teardown = () => {};

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

async function guarded(work) {
  try {
    await work();
  } catch (err) {
    if (err instanceof AuthError) signIn(err.message);
    else if (err instanceof HttpError) notice(err.message, "error");
    else notice("Cannot reach the kitaru server (" + err.message + ").", "error");
  }
}

function signIn(reason) {
  teardown();
  teardown = () => {};
  showSignIn(reason, route);
}

function route() {
  teardown();
  teardown = () => {};
  notice(null);
  const match = location.pathname.match(/^\/ui\/executions\/([^/]+)\/?$/);
  if (match) {
    let execId = match[1];
    try {
      execId = decodeURIComponent(match[1]);
    } catch (_err) {
      // A malformed escape: look it up as written (it will not be found).
    }
    document.title = "kitaru · " + execId;
    const view = new ExecutionView(execId, guarded);
    teardown = () => view.close();
    guarded(() => view.start());
  } else {
    teardown = showList(guarded);
  }
}

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
      signIn(err instanceof AuthError ? err.message : "Cannot reach the server.");
      return;
    }
  }
  showServerInfo();
  route();
}

main();
