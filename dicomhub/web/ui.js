// Pieces shared by every page: the message banner, the confirmation dialog,
// the page frame (title, breadcrumb, body) and small building blocks.

import { ApiError } from "./api.js";
import { clear, h, say } from "./dom.js";

export const $ = (id) => document.getElementById(id);

export function errorText(error) {
  return error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`;
}

export function showError(error) {
  say($("message"), errorText(error), "error");
}

export function showInfo(text) {
  say($("message"), text, "info");
}

// A notice to show on the next page (e.g. "deleted" once the list is back).
let notice = null;

export function noticeForNextPage(text) {
  notice = text;
}

// Called on every navigation: an old message does not stay on a new page.
export function resetMessage() {
  say($("message"), notice || "", "info");
  notice = null;
}

export function clearMessage() {
  say($("message"), "");
}

// Resolves to true when the person confirms; the button says what will happen.
export function confirmDialog(text, action = "Delete") {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = action;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

export function tagList(entries) {
  return h(
    "dl",
    { className: "tags" },
    entries
      .filter(([, value]) => value !== undefined && value !== null && value !== "")
      .flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

export function panel(id, title, ...children) {
  return h("section", { className: "panel", "aria-labelledby": id }, h("h3", { id }, title), ...children);
}

// A status line next to a form or button: screen readers announce what it says.
export function statusLine() {
  return h("p", { className: "inline-status", role: "status", "aria-live": "polite" });
}

// Runs an action from a button: disables it meanwhile and reports failures next to it.
export function action(label, run, { className = "", status = null, title = undefined } = {}) {
  const button = h("button", { type: "button", className, title }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await run(button);
    } catch (error) {
      if (status) say(status, errorText(error), "error");
      else showError(error);
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
  return button;
}

// The frame of every page other than the study list; `token` lets a page that
// finishes loading after the person moved on notice it and drop its result.
let pageToken = 0;

export function openPage(title, crumbs = []) {
  $("studies-view").hidden = true;
  $("page-view").hidden = false;
  $("page-title").textContent = title;
  clear(
    $("crumbs"),
    crumbs.length
      ? h(
          "ol",
          {},
          crumbs.map(([text, href]) => h("li", {}, href ? h("a", { href }, text) : h("span", { "aria-current": "page" }, text))),
        )
      : null,
  );
  clear($("page-body"), h("p", { role: "status", className: "loading" }, "Loading…"));
  pageToken += 1;
  return pageToken;
}

export function isCurrent(token) {
  return token === pageToken;
}

export function setTitle(title) {
  $("page-title").textContent = title;
}

export function fillPage(token, ...children) {
  if (!isCurrent(token)) return false;
  clear($("page-body"), ...children);
  return true;
}

// A page that could not load says why, in place of its content.
export function failPage(token, title, error) {
  if (!isCurrent(token)) return;
  setTitle(title);
  clear($("page-body"), h("p", { className: "message", "data-kind": "error", role: "alert" }, errorText(error)));
}
