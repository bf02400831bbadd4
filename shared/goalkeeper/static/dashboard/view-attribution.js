// Where conversions came from: counted conversions and their net value by source, medium,
// campaign or keyword, for converting goals, non-converting ones, or all.
import { get, getAll } from "./api.js";
import { count } from "./format.js";
import { el, empty, field, ledgerColumns, select, table } from "./ui.js";

const DIMENSIONS = [["source", "Source"], ["medium", "Medium"], ["campaign", "Campaign"], ["keyword", "Keyword"]];
const GROUPS = [["converting", "Converting goals"], ["non_converting", "Non-converting goals"], ["all", "All goals"]];
const chosen = { dimension: "source", group: "converting" };

// Decimal strings added exactly (amounts are never floats): "12.50" + "0.5" = "13.00".
function addAmounts(a, b) {
  const scale = Math.max(...[a, b].map((x) => (x.split(".")[1] || "").length));
  const whole = (x) => BigInt(x.replace(".", "") + "0".repeat(scale - (x.split(".")[1] || "").length));
  const sum = (whole(a) + whole(b)).toString().padStart(scale + 1, "0");
  return scale ? `${sum.slice(0, -scale)}.${sum.slice(-scale)}` : sum;
}

function addValues(into, values) {
  for (const [currency, amount] of Object.entries(values)) {
    into[currency] = into[currency] ? addAmounts(into[currency], amount) : amount;
  }
}

// A label can appear on several pages of the report: the report is their sum (counts,
// net and gross values per currency, refunded conversions, goals).
export function mergeRows(rows, dimension) {
  const merged = new Map();
  for (const row of rows) {
    const into = merged.get(row[dimension]);
    if (!into) {
      merged.set(row[dimension], { ...row, value: { ...row.value }, gross_value: { ...row.gross_value }, goals: [...row.goals] });
      continue;
    }
    into.counted += row.counted;
    into.retracted += row.retracted;
    addValues(into.value, row.value);
    addValues(into.gross_value, row.gross_value);
    into.goals = [...new Set([...into.goals, ...row.goals])].sort();
  }
  return [...merged.values()].sort((a, b) => b.counted - a.counted || (a[dimension] < b[dimension] ? -1 : 1));
}

export function goalNames(goals) {
  const names = Object.fromEntries(goals.map((g) => [g.goal_id, g.name]));
  return (ids) => ids.map((id) => names[id] || id).join(", ");
}

export default {
  id: "attribution",
  title: "Attribution",
  async render(container, context) {
    const dimension = select("dimension", DIMENSIONS, chosen.dimension);
    const group = select("group", GROUPS, chosen.group);
    const redraw = () => {
      chosen.dimension = dimension.value;
      chosen.group = group.value;
      container.dispatchEvent(new Event("redraw", { bubbles: true }));
    };
    dimension.addEventListener("change", redraw);
    group.addEventListener("change", redraw);
    container.append(el("form", { class: "filters" }, field("By", dimension), field("Goals", group)));
    const [pages, goals] = await Promise.all([
      getAll("/v1/reports/attribution", "rows", { ...context.range, dimension: chosen.dimension, group: chosen.group }),
      getAll("/v1/goals", "goals"),
    ]);
    const rows = mergeRows(pages, chosen.dimension);
    if (!rows.length) {
      container.append(empty("No counted conversions in this range for these goals. Conversions are credited to the campaign that brought the visitor (README, “Attribution”)."));
      return;
    }
    const label = DIMENSIONS.find(([d]) => d === chosen.dimension)[1];
    const names = goalNames(goals);
    container.append(table({
      name: `attribution-${chosen.dimension}-${chosen.group}`,
      title: `Counted conversions by ${label.toLowerCase()}`,
      rows,
      columns: [
        { label, name: chosen.dimension, value: (r) => r[chosen.dimension] },
        { label: "Counted", name: "counted", numeric: true, value: (r) => r.counted, show: (r) => count(r.counted) },
        ...ledgerColumns(rows),
        { label: "Goals", name: "goals", value: (r) => r.goals.join(" "), show: (r) => names(r.goals) },
      ],
    }));
  },
};
