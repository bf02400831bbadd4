// The goal library, and the editor: a goal is tried on the range's stored events (a
// dry-run, which writes nothing) before it can be saved.
import { call, getAll, key, pathId } from "./api.js";
import { count, instant } from "./format.js";
import { goalForm, RULES } from "./editor.js";
import { action, el, empty, message, table } from "./ui.js";

const state = { editing: undefined }; // undefined: no editor; null: a new goal; else the goal

function describeValue(value) {
  if (value.type === "fixed") return `${value.amount} ${value.currency}`;
  if (value.type === "percent_of_transaction") return `${value.percent}% of the sale`;
  return "";
}

function describeDedup(goal) {
  const keys = goal.dedup.keys.length ? goal.dedup.keys.join(" + ") : "none";
  return goal.dedup.window_days ? `${keys}, ${goal.dedup.window_days} days` : keys;
}

function dryRunResult(answer) {
  const figures = [["Events examined", answer.examined], ["Matched", answer.matched], ["Would count", answer.would_count], ["Would be void", answer.would_void]];
  return el("div", { class: "dry-run", "data-dry-run": "" },
    el("h3", { text: `Dry-run, ${answer.from} to ${answer.to}` }),
    answer.truncated ? message(`Only the first events were examined (up to ${instant(answer.examined_until)}): try fewer days.`) : null,
    el("div", { class: "cards" }, ...figures.map(([label, n]) => el("div", { class: "card", "data-card": label }, el("div", { class: "hint", text: label }), el("div", { class: "figure", text: count(n) })))),
    answer.sample.length ? table({
      name: "dry-run-sample",
      title: "First matches",
      rows: answer.sample,
      rowClass: (r) => (r.status === "would_void" ? "void" : null),
      columns: [
        { label: "When", name: "occurred_at", value: (r) => r.occurred_at, show: (r) => instant(r.occurred_at) },
        { label: "Event", name: "event_id", value: (r) => r.event_id },
        { label: "Visitor", name: "visitor_id", value: (r) => r.visitor_id || "" },
        { label: "Outcome", name: "status", value: (r) => r.status, show: (r) => r.status.replace("_", " ") },
        { label: "Why void", name: "reason", value: (r) => r.reason || "" },
      ],
    }) : empty("No stored event of the range matches this goal."));
}

function editor(container, goals, context) {
  const goal = state.editing;
  const { form, spec } = goalForm(goal, goals);
  const outcome = el("div", { "aria-live": "polite" });
  const tryIt = el("button", { type: "button", text: "Dry-run" });
  const save = el("button", { type: "button", text: goal ? "Save changes" : "Create goal", disabled: true });
  const cancel = el("button", { type: "button", class: "secondary", text: "Close" });
  let tried = null; // the goal as dry-run: saving needs the dry-run of exactly what is saved
  const redraw = () => container.dispatchEvent(new Event("redraw", { bubbles: true }));
  const failed = (error) => outcome.replaceChildren(message(error.message, "error"));
  form.addEventListener("input", () => { save.disabled = true; });
  form.addEventListener("change", () => { save.disabled = true; });
  tryIt.addEventListener("click", async () => {
    try {
      const made = spec();
      outcome.replaceChildren(message("Trying the goal on the stored events…", "loading"));
      const answer = await call("POST", "/v1/goals/dry-run", { role: "write", body: { goal: made, from: context.range.from || undefined, to: context.range.to || undefined } });
      tried = JSON.stringify(made);
      outcome.replaceChildren(dryRunResult(answer));
      save.disabled = false;
    } catch (error) {
      failed(error);
    }
  });
  save.addEventListener("click", async () => {
    try {
      const made = spec();
      if (JSON.stringify(made) !== tried) throw new Error("The goal changed since its dry-run: run it again.");
      const saved = goal
        ? await call("PUT", `/v1/goals/${pathId(goal.goal_id)}`, { role: "write", body: made })
        : await call("POST", "/v1/goals", { role: "write", body: made });
      state.editing = undefined;
      state.saved = `Saved “${saved.name}” (version ${saved.version}): it applies to every event received from now on.`;
      redraw();
    } catch (error) {
      failed(error);
    }
  });
  cancel.addEventListener("click", () => { state.editing = undefined; redraw(); });
  return el("section", { class: "goal-editor", "data-editor": "" },
    el("h3", { text: goal ? `Edit “${goal.name}”` : "New goal" }), form,
    el("div", { class: "actions" }, tryIt, save, cancel),
    el("p", { class: "hint", text: "Run the dry-run first: it shows what the goal would have counted over the range's stored events (at most 31 days), and writes nothing." }),
    outcome);
}

export default {
  id: "goals",
  title: "Goal library",
  async render(container, context) {
    const goals = await getAll("/v1/goals", "goals", {}, key("read") ? "read" : "write");
    const redraw = () => container.dispatchEvent(new Event("redraw", { bubbles: true }));
    const canWrite = Boolean(key("write"));
    if (state.saved) {
      container.append(message(state.saved));
      state.saved = null;
    }
    container.append(el("button", {
      type: "button", text: "New goal", disabled: !canWrite,
      onclick: () => { state.editing = null; redraw(); },
    }));
    if (!canWrite) container.append(el("p", { class: "hint", text: "Paste the write key above to create, change or deactivate goals." }));
    if (state.editing !== undefined && canWrite) container.append(editor(container, goals, context));
    if (!goals.length) {
      container.append(empty("No goals yet. A goal says which events count: a thank-you page, a sale, a call of a minute or more. Create one with New goal."));
      return;
    }
    container.append(table({
      name: "goal-library",
      title: "Goals",
      rows: goals,
      columns: [
        { label: "Goal", name: "name", value: (g) => g.name },
        { label: "Rule", name: "kind", value: (g) => g.rule.kind, show: (g) => (RULES[g.rule.kind] || { label: g.rule.kind }).label },
        { label: "Group", name: "converting", value: (g) => g.converting, show: (g) => (g.converting ? "Converting" : "Non-converting") },
        { label: "Active", name: "active", value: (g) => g.active, show: (g) => (g.active ? "yes" : "no") },
        { label: "De-dup keys", name: "dedup", value: describeDedup },
        { label: "Value", name: "value", value: (g) => describeValue(g.value) },
        { label: "Version", name: "version", numeric: true, value: (g) => g.version },
        { label: "Actions", name: "goal_id", value: (g) => g.goal_id, cell: (g) => el("span", {},
          action("Edit", `Edit ${g.name}`, async () => { state.editing = g; redraw(); }, !canWrite),
          action("Deactivate", `Deactivate ${g.name}`, async () => {
            await call("DELETE", `/v1/goals/${pathId(g.goal_id)}`, { role: "write" });
            redraw();
          }, !canWrite || !g.active)) },
      ],
    }));
  },
};
