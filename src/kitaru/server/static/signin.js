// The sign-in form of a server with an API token.
import { exchange } from "./api.js";
import { app, el, setText } from "./dom.js";

export function showSignIn(reason, onSignedIn) {
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
          onSignedIn();
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
