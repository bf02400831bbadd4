// Goals at a glance for the date range: totals, the converting and non-converting
// groups, each goal with its health and net value, a daily chart per goal, and the
// Google Ads import files of the range.
import { download, get, pathId } from "./api.js";
import { dailyChart } from "./chart.js";
import { count, percent } from "./format.js";
import { action, el, empty, field, ledgerColumns, saveFile, select, table } from "./ui.js";

const HEALTH = { ok: "OK", no_recent_match: "No recent match", inactive: "Inactive" };

function badge(health) {
  return el("span", { class: `badge ${health.status}`, title: health.message, text: HEALTH[health.status] || health.status });
}

// The tracker's tag for this API, with more attributes (a pool's `data-number`) if given.
export const trackerTag = (more = "") =>
  `<script async src="${new URL("v1/tracker.js", new URL("..", import.meta.url))}" data-key="gk_site_…"${more ? " " + more : ""}></script>`;

function trackerHelp() {
  return empty(
    "No events in this range yet. Put the tracker on every page of the site, with the account's site key:",
    el("pre", {}, el("code", { text: trackerTag() })),
    el("p", { text: "Calls, CRM and server events go to POST /v1/events (README, “Sending events”). Then create goals under Goal library." }),
  );
}

function countColumns() {
  return [
    { label: "Counted", name: "counted", numeric: true, value: (r) => r.counted, show: (r) => count(r.counted) },
    { label: "Void", name: "void", numeric: true, value: (r) => r.void, show: (r) => count(r.void) },
    { label: "Visitors converted", name: "visitors_converted", numeric: true, value: (r) => r.visitors_converted, show: (r) => count(r.visitors_converted) },
  ];
}

// The Google Ads import file of the range's days (every goal), saved as the API wrote it.
function adsExport({ from, to }) {
  const kind = select("kind", [["conversions", "Conversions (upload first)"], ["adjustments", "Adjustments (refunds, changed values)"]], "conversions");
  return el("section", { class: "ads-export", "data-export": "google-ads" },
    el("h2", { text: "Google Ads export" }),
    el("p", { class: "hint", text: `Conversions credited to a Google Ads click, ${from} to ${to}, as a file to upload in Google Ads (Goals → Conversions → Uploads).` }),
    el("form", { onsubmit: (event) => event.preventDefault() },
      field("Which file", kind),
      action("Download Google Ads file", "Download the Google Ads file", async () => {
        const file = await download("/v1/exports/google-ads", { from, to, kind: kind.value });
        saveFile(`google-ads-${kind.value}-${from}-${to}.csv`, file);
      })));
}

export default {
  id: "overview",
  title: "Overview",
  async render(container, context) {
    const report = await get("/v1/reports/goals", context.range);
    context.showRange(report);
    const goals = report.goals;
    if (!goals.length) {
      container.append(report.visitors_seen ? null : trackerHelp(),
        empty("No goals yet: create one under Goal library (write key), and it counts the events that arrive from then on."));
      return;
    }
    const days = { from: report.from, to: report.to };
    // A chart for each goal with conversions in the range; a deactivated goal's health
    // is known without asking.
    const charted = goals.filter((g) => g.counted || g.void);
    const [health, series] = await Promise.all([
      Promise.all(goals.map((g) => (g.active
        ? get(`/v1/goals/${pathId(g.goal_id)}/health`)
        : { status: "inactive", message: "the goal is deactivated" }))),
      Promise.all(charted.map((g) => get(`/v1/reports/goals/${pathId(g.goal_id)}/timeseries`, days))),
    ]);
    const healthOf = Object.fromEntries(goals.map((g, i) => [g.goal_id, health[i]]));
    const quiet = goals.filter((g) => !g.counted && !g.void).map((g) => g.name);
    const converting = report.groups.converting;
    container.append(el("div", { class: "cards" },
      ...[
        ["Visitors seen", count(report.visitors_seen), "visitors_seen"],
        ["Converting goals counted", count(converting.counted), "counted"],
        ["Void (duplicates)", count(converting.void), "void"],
      ].map(([label, figure, name]) => el("div", { class: "card", "data-card": name }, el("div", { class: "hint", text: label }), el("div", { class: "figure", text: figure })))));
    if (!report.visitors_seen && goals.every((g) => !g.counted && !g.void)) container.append(trackerHelp());

    const groups = [["Converting", "converting"], ["Non-converting", "non_converting"]].map(([label, name]) => ({ label, name, ...report.groups[name] }));
    container.append(table({
      name: "groups",
      title: "Converting and non-converting goals",
      rows: groups,
      columns: [{ label: "Group", name: "group", value: (r) => r.name, show: (r) => r.label }, ...countColumns(), ...ledgerColumns(groups)],
    }));
    container.append(table({
      name: "goals",
      title: `Goals, ${report.from} to ${report.to}`,
      rows: goals,
      columns: [
        { label: "Goal", name: "name", value: (r) => r.name },
        { label: "Group", name: "converting", value: (r) => r.converting, show: (r) => (r.converting ? "Converting" : "Non-converting") },
        { label: "Health", name: "health", value: (r) => healthOf[r.goal_id].status, cell: (r) => badge(healthOf[r.goal_id]) },
        ...countColumns(),
        { label: "Conversion rate", name: "conversion_rate", numeric: true, value: (r) => r.conversion_rate, show: (r) => percent(r.conversion_rate) },
        ...ledgerColumns(goals),
      ],
    }));
    container.append(el("h2", { text: "Day by day" }),
      quiet.length ? el("p", { class: "hint", text: `No conversions in this range: ${quiet.join(", ")}.` }) : null,
      el("div", { class: "charts" },
      ...charted.map((goal, i) => el("section", { class: "chart", "data-chart": goal.goal_id },
        el("h3", { text: goal.name }),
        dailyChart(goal.name, series[i].days),
        el("details", {}, el("summary", { text: "Daily figures" }),
          table({
            name: `daily-${goal.goal_id}`,
            title: `${goal.name} by day`,
            rows: series[i].days,
            columns: [{ label: "Day", name: "date", value: (r) => r.date }, ...countColumns(), ...ledgerColumns(series[i].days)],
          }))))),
      adsExport(days));
  },
};
