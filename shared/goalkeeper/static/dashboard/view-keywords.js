// The keywords with the most counted conversions of converting goals.
import { get, getAll } from "./api.js";
import { count } from "./format.js";
import { empty, ledgerColumns, table } from "./ui.js";
import { goalNames } from "./view-attribution.js";

export default {
  id: "keywords",
  title: "Top keywords",
  async render(container, context) {
    const [report, goals] = await Promise.all([
      get("/v1/reports/top-keywords", { ...context.range, limit: 200 }),
      getAll("/v1/goals", "goals"),
    ]);
    const rows = report.keywords;
    if (!rows.length) {
      container.append(empty("No keyword has a counted conversion in this range. Keywords come from utm_term in landing URLs, or the attribution.keyword of events."));
      return;
    }
    const names = goalNames(goals);
    container.append(table({
      name: "top-keywords",
      title: `Top keywords, ${report.from} to ${report.to}`,
      rows,
      columns: [
        { label: "Keyword", name: "keyword", value: (r) => r.keyword },
        { label: "Counted", name: "counted", numeric: true, value: (r) => r.counted, show: (r) => count(r.counted) },
        ...ledgerColumns(rows),
        { label: "Goals", name: "goals", value: (r) => r.goals.join(" "), show: (r) => names(r.goals) },
      ],
    }));
  },
};
