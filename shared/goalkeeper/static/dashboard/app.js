// The dashboard's frame: keys, navigation, the date range, and the view shown.
import { get, key, keyHint, setKey } from "./api.js";
import { setTimeZone } from "./format.js";
import { el, empty, loading, message } from "./ui.js";
import overview from "./view-overview.js";
import attribution from "./view-attribution.js";
import keywords from "./view-keywords.js";
import trace from "./view-trace.js";
import goals from "./view-goals.js";
import funnels from "./view-funnels.js";
import numbers from "./view-numbers.js";
import webhooks from "./view-webhooks.js";
import settings from "./view-settings.js";

// The views, in the navigation's order. A view is a module exporting {id, title, render}:
// render(container, context) fills the container and resolves when done. A new view (value
// adjustments) is one module and one line here.
const VIEWS = [overview, attribution, keywords, trace, goals, funnels, numbers, webhooks, settings];

const main = document.getElementById("main");
const context = {
  range: { from: "", to: "" },
  account: null,
  // A view that learns the range the API used (the default one) shows it in the form.
  showRange({ from, to }) {
    document.getElementById("from").value = from;
    document.getElementById("to").value = to;
  },
};
let shown = 0;

function currentView() {
  return VIEWS.find((view) => `#${view.id}` === location.hash) || VIEWS[0];
}

function drawNav() {
  const current = currentView();
  document.getElementById("nav").replaceChildren(
    ...VIEWS.map((view) => el("li", {}, el("a", {
      href: `#${view.id}`,
      "aria-current": view === current ? "page" : null,
      text: view.title,
    }))));
}

function drawKeyState() {
  const held = ["read", "write"].filter(key).map((role) => `${role} key ${keyHint(role)}`);
  document.getElementById("key-state").textContent = held.length ? `Using the ${held.join(" and the ")}` : "No key yet.";
}

async function account() {
  if (!context.account) {
    context.account = await get("/v1/account", {}, key("read") ? "read" : "write");
    setTimeZone(context.account.timezone);
    document.getElementById("zone").textContent = `Days in the account's time zone, ${context.account.timezone}.`;
  }
  return context.account;
}

function welcome() {
  return empty(
    "Paste the account's read key above to see its goals (and its write key to edit goals, numbers, webhooks and settings).",
    el("p", { text: "The keys come with the account (POST /v1/accounts). They stay in this tab's session storage only, and go to the API in a request header, never in a URL." }),
  );
}

async function show() {
  const view = currentView();
  const mine = ++shown;
  drawNav();
  const body = el("div");
  main.replaceChildren(el("h2", { text: view.title }), body);
  main.dataset.view = view.id;
  main.dataset.state = "loading";
  if (!key("read") && !key("write")) {
    body.replaceChildren(welcome());
    main.dataset.state = "ready";
    return;
  }
  body.replaceChildren(loading(view.title.toLowerCase()));
  try {
    await account();
    const content = el("div");
    await view.render(content, context);
    if (mine !== shown) return;
    body.replaceChildren(content);
    main.dataset.state = "ready";
  } catch (error) {
    if (mine !== shown) return;
    body.replaceChildren(message(error.message, "error"));
    main.dataset.state = "error";
  }
}

document.getElementById("keys").addEventListener("submit", (event) => {
  event.preventDefault();
  for (const role of ["read", "write"]) {
    const input = event.target.elements[role];
    if (input.value.trim()) setKey(role, input.value.trim());
    input.value = "";
  }
  context.account = null;
  drawKeyState();
  show();
});
document.getElementById("forget").addEventListener("click", () => {
  setKey("read", "");
  setKey("write", "");
  context.account = null;
  drawKeyState();
  show();
});
document.getElementById("range").addEventListener("submit", (event) => {
  event.preventDefault();
  context.range = { from: event.target.elements.from.value, to: event.target.elements.to.value };
  show();
});
window.addEventListener("hashchange", () => {
  show();
  main.focus();
});
// A view can ask to be drawn again (after a change it made).
main.addEventListener("redraw", show);
drawKeyState();
show();
