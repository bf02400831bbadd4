// Funnels: each step's entered, converted and drop-off over the range, and the median
// time from the previous step.
import { call, get, getAll, key, pathId } from "./api.js";
import { count, seconds } from "./format.js";
import { el, empty, field, message, select, table } from "./ui.js";

const chosen = { funnel: "" };
const MAX_STEPS = 8;

// A new funnel (write key): its name, window, and 2 to 8 goals in order.
function createForm(container, goals) {
  const name = el("input", { name: "funnel_name", required: true });
  const windowDays = el("input", { type: "number", name: "window_days", min: 1, max: 3650, value: 30 });
  const choices = [["", "—"], ...goals.filter((g) => g.active).map((g) => [g.goal_id, g.name])];
  const steps = Array.from({ length: MAX_STEPS }, (_, i) => select(`step_${i + 1}`, choices, ""));
  const outcome = el("div", { "aria-live": "polite" });
  const form = el("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const body = { name: name.value.trim(), steps: steps.map((s) => s.value).filter(Boolean), window_days: Number(windowDays.value) };
      try {
        chosen.funnel = (await call("POST", "/v1/funnels", { role: "write", body })).funnel_id;
        container.dispatchEvent(new Event("redraw", { bubbles: true }));
      } catch (error) {
        outcome.replaceChildren(message(error.message, "error"));
      }
    },
  }, field("Funnel name", name), field("Window (days)", windowDays, "each step within this many days of the previous"),
  ...steps.map((step, i) => field(`Step ${i + 1}`, step)),
  el("button", { type: "submit", text: "Create funnel" }));
  return el("details", {}, el("summary", { text: "Create a funnel" }), form, outcome);
}

export default {
  id: "funnels",
  title: "Funnels",
  async render(container, context) {
    const [{ funnels }, goals] = await Promise.all([get("/v1/funnels"), getAll("/v1/goals", "goals")]);
    if (key("write")) container.append(createForm(container, goals));
    if (!funnels.length) {
      container.append(empty("No funnels yet. A funnel is a chain of 2 to 8 goals reported step by step, each step counted for visitors who reached the previous one: create one above (write key)."));
      return;
    }
    const funnel = funnels.find((f) => f.funnel_id === chosen.funnel) || funnels[0];
    const picker = select("funnel", funnels.map((f) => [f.funnel_id, f.name]), funnel.funnel_id);
    picker.addEventListener("change", () => {
      chosen.funnel = picker.value;
      container.dispatchEvent(new Event("redraw", { bubbles: true }));
    });
    container.append(el("form", {}, field("Funnel", picker)));
    const report = await get(`/v1/reports/funnels/${pathId(funnel.funnel_id)}`, context.range);
    container.append(table({
      name: `funnel-${funnel.funnel_id}`,
      title: `${report.name}: steps within ${report.window_days} days, ${report.from} to ${report.to}`,
      rows: report.steps,
      columns: [
        { label: "Step", name: "step", numeric: true, value: (s) => s.step },
        { label: "Goal", name: "name", value: (s) => s.name },
        { label: "Entered", name: "entered", numeric: true, value: (s) => s.entered, show: (s) => count(s.entered) },
        { label: "Converted", name: "converted", numeric: true, value: (s) => s.converted, show: (s) => count(s.converted) },
        { label: "Drop-off", name: "drop_off", numeric: true, value: (s) => s.drop_off, show: (s) => count(s.drop_off) },
        { label: "Median time from previous step", name: "median_seconds_to_convert", numeric: true, value: (s) => s.median_seconds_to_convert ?? "", show: (s) => seconds(s.median_seconds_to_convert) },
      ],
    }));
  },
};
