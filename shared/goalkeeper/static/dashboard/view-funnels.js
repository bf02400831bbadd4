// Funnels: each step's entered, converted and drop-off over the range, and the median
// time from the previous step.
import { get, pathId } from "./api.js";
import { count, seconds } from "./format.js";
import { el, empty, field, select, table } from "./ui.js";

const chosen = { funnel: "" };

export default {
  id: "funnels",
  title: "Funnels",
  async render(container, context) {
    const { funnels } = await get("/v1/funnels");
    if (!funnels.length) {
      container.append(empty("No funnels yet. A funnel is a chain of 2 to 8 goals reported step by step: create one with POST /v1/funnels (README, “Funnels and prerequisite goals”)."));
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
