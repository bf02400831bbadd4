// Call tracking: the account's numbers, registering and deleting one, the pool report
// with its sizing advice (above the table, in its CSV), and connecting Twilio (README,
// "Call tracking").
import { call, get, pathId } from "./api.js";
import { count, instant } from "./format.js";
import { action, el, empty, field, message, select, table } from "./ui.js";
import { trackerTag } from "./view-overview.js";

const KINDS = [["pool", "Pool (one per visit)"], ["static", "Static (fixed attribution)"]];
const ATTRIBUTION = ["source", "medium", "campaign", "keyword"];
const label = (name) => name[0].toUpperCase() + name.slice(1);
const redraw = (container) => container.dispatchEvent(new Event("redraw", { bubbles: true }));
let registered = "";

function howToPool() {
  return [
    el("p", { text: "For dynamic number insertion, register pool numbers that replace the site's own number, then add data-number (the site's own number) to the tracker's tag:" }),
    el("pre", {}, el("code", { text: trackerTag('data-number="+442079460000"') })),
    el("p", { text: "Each visit is then shown a number of the pool, and a call to it is credited to that visit's keyword. Post calls with tracking_number, or connect Twilio below." }),
  ];
}

function registerForm(container) {
  const number = el("input", { name: "number", required: true, placeholder: "+442079460001", autocomplete: "off" });
  const kind = select("kind", KINDS, "pool");
  const pool = el("input", { name: "pool", placeholder: "Website" });
  const replaces = el("input", { name: "replaces", placeholder: "+442079460000" });
  const attribution = ATTRIBUTION.map((name) => [name, el("input", { name })]);
  const poolFields = el("fieldset", {}, el("legend", { text: "Pool" }), field("Pool name", pool, "default: the number it replaces"), field("Replaces (the site's own number)", replaces));
  const staticFields = el("fieldset", { hidden: true }, el("legend", { text: "Attribution of every call to it" }), ...attribution.map(([name, input]) => field(label(name), input)));
  kind.addEventListener("change", () => {
    poolFields.hidden = kind.value !== "pool";
    staticFields.hidden = kind.value !== "static";
  });
  const outcome = el("div", { "aria-live": "polite" });
  const form = el("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const body = { number: number.value.trim(), kind: kind.value };
      if (kind.value === "pool") Object.assign(body, { pool: pool.value.trim() || undefined, replaces: replaces.value.trim() });
      else body.attribution = Object.fromEntries(attribution.map(([name, input]) => [name, input.value.trim()]).filter(([, value]) => value));
      try {
        registered = (await call("POST", "/v1/numbers", { role: "write", body })).number;
        redraw(container);
      } catch (error) {
        outcome.replaceChildren(message(error.message, "error"));
      }
    },
  }, field("Number (E.164)", number), field("Kind", kind), poolFields, staticFields, el("button", { type: "submit", text: "Register number" }));
  return el("details", {}, el("summary", { text: "Register a number" }), form, outcome);
}

function twilioForm() {
  const token = el("input", { name: "auth_token", type: "password", required: true, autocomplete: "off", pattern: "[0-9a-fA-F]{32}" });
  const outcome = el("div", { "aria-live": "polite" });
  const form = el("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        const { webhook_url: url } = await call("PUT", "/v1/integrations/twilio", { role: "write", body: { auth_token: token.value.trim() } });
        token.value = "";
        outcome.replaceChildren(
          el("p", { text: "Connected. In Twilio, set each tracked number's “call status changes” URL (HTTP POST) to exactly:" }),
          el("pre", { "data-webhook-url": "" }, el("code", { text: url })));
      } catch (error) {
        outcome.replaceChildren(message(error.message, "error"));
      }
    },
  }, field("Twilio Auth Token", token, "32 hex characters, from Twilio's Account Info; kept to check signatures, never shown again"),
  el("button", { type: "submit", text: "Connect Twilio" }));
  return el("details", {}, el("summary", { text: "Connect Twilio" }), form, outcome);
}

function poolReport(report) {
  const figure = (label, name, pick = (p) => p[name]) => ({ label, name, numeric: true, value: pick, show: (p) => count(pick(p)) });
  return [
    ...report.pools.map((p) => el("p", { class: "message advice", "data-advice": p.replaces }, el("strong", { text: `${p.pool}: ` }), p.advice.text)),
    table({
      name: "pools",
      title: `Pools, ${report.from} to ${report.to} (UTC days)`,
      rows: report.pools,
      columns: [
        { label: "Pool", name: "pool", value: (p) => p.pool },
        { label: "Replaces", name: "replaces", value: (p) => p.replaces },
        { label: "Numbers", name: "numbers", value: (p) => p.numbers.join(" "), show: (p) => p.numbers.join(", ") },
        figure("Peak holds", "peak_holds"),
        figure("Assignments", "assignments"),
        figure("Exhausted", "exhausted_assignments"),
        figure("Calls matched", "calls_matched"),
        figure("Calls unmatched", "calls_unmatched"),
        figure("Add numbers", "add_numbers", (p) => p.advice.add_numbers),
        { label: "Advice", name: "advice", value: (p) => p.advice.text, csvOnly: true },
      ],
    }),
  ];
}

export default {
  id: "numbers",
  title: "Numbers",
  async render(container, context) {
    const [{ numbers }, report] = await Promise.all([get("/v1/numbers"), get("/v1/reports/numbers", context.range)]);
    context.showRange(report);
    if (registered) {
      container.append(message(`Registered ${registered}.`));
      registered = "";
    }
    if (!numbers.length) {
      container.append(empty("No tracking numbers yet. Register a number below: a static one carries fixed attribution (the number on a billboard).", ...howToPool()));
    } else {
      container.append(...(report.pools.length ? poolReport(report) : [empty("No pool numbers yet, only static ones.", ...howToPool())]));
      container.append(table({
        name: "numbers",
        title: "Tracking numbers",
        rows: numbers,
        columns: [
          { label: "Number", name: "number", value: (n) => n.number },
          { label: "Kind", name: "kind", value: (n) => n.kind },
          { label: "Pool", name: "pool", value: (n) => n.pool || "" },
          { label: "Replaces", name: "replaces", value: (n) => n.replaces || "" },
          ...ATTRIBUTION.map((name) => ({ label: label(name), name, value: (n) => (n.attribution || {})[name] || "" })),
          { label: "Registered", name: "created_at", value: (n) => n.created_at, show: (n) => instant(n.created_at) },
          { label: "Delete", name: "delete", cell: (n) => action("Delete", `Delete ${n.number}`, async () => {
            await call("DELETE", `/v1/numbers/${pathId(n.number)}`, { role: "write" });
            redraw(container);
          }) },
        ],
      }));
    }
    container.append(registerForm(container), twilioForm());
  },
};
