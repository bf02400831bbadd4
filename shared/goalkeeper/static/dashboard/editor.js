// The goal editor: every rule kind with its options, de-dup keys and window, value,
// prerequisite. It makes the goal as POST /v1/goals takes it; empty optional fields are
// left out, so the API's defaults apply.
import { el, field, select } from "./ui.js";

const text = (name, label, hint) => ({ name, label, hint, type: "text" });
const number = (name, label, hint) => ({ name, label, hint, type: "number" });
const choice = (name, label, options) => ({ name, label, options, type: "choice" });
const flag = (name, label, initial = false) => ({ name, label, initial, type: "flag" });
const json = (name, label, hint) => ({ name, label, hint, type: "json" });
const list = (name, label, hint) => ({ name, label, hint, type: "list" });
const EITHER = [["", "either"], ["true", "yes"], ["false", "no"]];

// The rule kinds (README, "Goals"), each with its options.
export const RULES = {
  url: { label: "Page URL", fields: [
    choice("match", "Match", [["exact", "is exactly"], ["prefix", "starts with"], ["contains", "contains"], ["regex", "matches the regex (RE2)"]]),
    text("pattern", "URL or pattern"), flag("case_sensitive", "Case-sensitive")] },
  custom_trigger: { label: "Custom trigger", fields: [
    text("name", "Trigger name"),
    json("conditions", "Conditions (JSON)", 'e.g. [{"field": "plan", "op": "eq", "value": "pro"}]')] },
  transaction: { label: "Sale (transaction)", fields: [
    text("min_value", "Minimum value", "empty: any"), flag("inclusive", "At least (not more than) the minimum", true),
    text("currency", "Currency of the minimum", "ISO 4217; empty: the minimum applies in any currency")] },
  lead: { label: "Lead", fields: [] },
  call: { label: "Phone call", fields: [
    choice("connected", "Connected", EITHER), number("min_bridged_seconds", "Talked at least (s)"),
    number("max_bridged_seconds", "Talked less than (s)"), number("first_time_caller_days", "First-time caller within (days)")] },
  call_rating: { label: "Call rating", fields: [text("rating", "Rating")] },
  service_activity: { label: "Service status", fields: [json("topics", "Topics and statuses (JSON)", 'e.g. {"booking": ["confirmed"]}')] },
  page_views: { label: "Pages per visit", fields: [number("min_pages", "At least this many page views")] },
  tags: { label: "Contact tags", fields: [list("tags", "Tags", "comma-separated"), choice("match", "Holds", [["all", "all of them"], ["any", "any of them"]])] },
};
const DEDUP_KEYS = ["visitor", "goal", "transaction_ref", "visit", "caller"];
const DEFAULT = { name: "", converting: true, active: true, rule: { kind: "url", match: "prefix" }, once_per_visit: false, once_per_contact: false, value: { type: "none" } };

function input(spec, value) {
  if (spec.type === "flag") return el("input", { type: "checkbox", name: spec.name, checked: value ?? spec.initial });
  if (spec.type === "choice") return select(spec.name, spec.options, value === null || value === undefined ? spec.options[0][0] : String(value));
  if (spec.type === "json") return el("textarea", { name: spec.name, spellcheck: "false" }, value ? JSON.stringify(value) : "");
  const shown = spec.type === "list" ? (value || []).join(", ") : value ?? "";
  return el("input", { type: spec.type === "number" ? "number" : "text", name: spec.name, value: shown, spellcheck: "false" });
}

function read(spec, node) {
  if (spec.type === "flag") return node.checked;
  const raw = node.value.trim();
  if (raw === "") return undefined;
  if (spec.type === "number") return Number(raw);
  if (spec.type === "list") return raw.split(",").map((t) => t.trim()).filter(Boolean);
  if (spec.type === "json") {
    try {
      return JSON.parse(raw);
    } catch {
      throw new Error(`${spec.label}: not valid JSON`);
    }
  }
  if (spec.name === "connected") return raw === "true";
  return raw;
}

// The form for `goal` (null: a new one) among `goals` (the prerequisite choices).
// Returns {form, spec()}: spec() reads the form into a goal, or throws saying what is wrong.
export function goalForm(goal, goals) {
  const start = goal || DEFAULT;
  const name = el("input", { name: "name", required: true, value: start.name });
  const converting = el("input", { type: "checkbox", name: "converting", checked: start.converting });
  const active = el("input", { type: "checkbox", name: "active", checked: start.active });
  const kind = select("kind", Object.entries(RULES).map(([k, r]) => [k, r.label]), start.rule.kind);
  const ruleBox = el("fieldset", {}, el("legend", { text: "Rule" }));
  let ruleInputs = [];
  const drawRule = () => {
    const values = kind.value === start.rule.kind ? start.rule : {};
    ruleInputs = RULES[kind.value].fields.map((spec) => [spec, input(spec, values[spec.name])]);
    ruleBox.replaceChildren(el("legend", { text: "Rule" }), field("Kind", kind),
      ...ruleInputs.map(([spec, node]) => field(spec.label, node, spec.hint)));
  };
  kind.addEventListener("change", drawRule);
  drawRule();

  const ownDedup = el("input", { type: "checkbox", name: "own_dedup", checked: Boolean(goal) });
  const dedupKeys = DEDUP_KEYS.map((k) => [k, el("input", { type: "checkbox", name: `dedup_${k}`, checked: Boolean(goal && goal.dedup.keys.includes(k)) })]);
  const windowDays = el("input", { type: "number", name: "window_days", min: 1, value: goal && goal.dedup.window_days ? goal.dedup.window_days : "" });
  const perVisit = el("input", { type: "checkbox", name: "once_per_visit", checked: start.once_per_visit });
  const perContact = el("input", { type: "checkbox", name: "once_per_contact", checked: start.once_per_contact });

  const valueType = select("value_type", [["none", "no value"], ["fixed", "a fixed amount"], ["percent_of_transaction", "a percent of the sale"]], start.value.type);
  const amount = el("input", { name: "amount", value: start.value.amount || "", inputmode: "decimal" });
  const currency = el("input", { name: "value_currency", value: start.value.currency || "", maxlength: 3 });
  const percentOf = el("input", { name: "percent", value: start.value.percent || "", inputmode: "decimal" });

  const requires = select("requires", [["", "no prerequisite"], ...goals.filter((g) => !goal || g.goal_id !== goal.goal_id).map((g) => [g.goal_id, g.name])], start.requires ? start.requires.goal_id : "");
  const within = el("input", { type: "number", name: "within_days", min: 1, value: start.requires ? start.requires.within_days : "" });

  const form = el("form", { class: "editor", "aria-label": goal ? `Edit ${goal.name}` : "New goal" },
    field("Name", name), field("Converting (counts toward the conversion rate)", converting), field("Active", active),
    ruleBox,
    el("fieldset", {}, el("legend", { text: "De-duplication" }),
      field("Own de-dup keys (else the kind's default)", ownDedup),
      ...dedupKeys.map(([k, box]) => field(k, box)),
      field("Window (days)", windowDays, "empty: forever"),
      field("Once per visit", perVisit), field("Once per contact", perContact)),
    el("fieldset", {}, el("legend", { text: "Value" }),
      field("Value", valueType), field("Amount", amount), field("Currency", currency, "ISO 4217, e.g. GBP"), field("Percent", percentOf)),
    el("fieldset", {}, el("legend", { text: "Prerequisite" }),
      field("Counts only after", requires), field("Within (days)", within)));

  function spec() {
    const rule = { kind: kind.value };
    for (const [fieldSpec, node] of ruleInputs) {
      const value = read(fieldSpec, node);
      if (value !== undefined) rule[fieldSpec.name] = value;
    }
    const made = { name: name.value.trim(), converting: converting.checked, active: active.checked, rule, once_per_visit: perVisit.checked, once_per_contact: perContact.checked };
    if (ownDedup.checked) {
      made.dedup = { keys: dedupKeys.filter(([, box]) => box.checked).map(([k]) => k), window_days: windowDays.value ? Number(windowDays.value) : null };
    }
    if (valueType.value === "fixed") made.value = { type: "fixed", amount: amount.value.trim(), currency: currency.value.trim().toUpperCase() };
    else if (valueType.value === "percent_of_transaction") made.value = { type: "percent_of_transaction", percent: percentOf.value.trim() };
    else made.value = { type: "none" };
    if (requires.value) made.requires = { goal_id: requires.value, within_days: Number(within.value || 30) };
    return made;
  }
  return { form, spec };
}
