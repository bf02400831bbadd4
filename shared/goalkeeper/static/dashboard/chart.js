// A daily chart as SVG of our own (a few dozen lines, smaller than any library): one bar
// per day of counted conversions, the largest day's figure on the axis, first and last
// day under it. Its text alternative says the same in words; the daily table beside it
// holds every figure.
import { count } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 360;
const HEIGHT = 120;
const PLOT = { left: 28, right: 6, top: 10, bottom: 20 };

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function dailyChart(title, days, measure = (day) => day.counted) {
  const values = days.map(measure);
  const top = Math.max(1, ...values);
  const best = days[values.indexOf(Math.max(...values))];
  const summary = `${title}: ${count(values.reduce((a, b) => a + b, 0))} counted from ${days[0].date} to ${days[days.length - 1].date}` +
    (Math.max(...values) > 0 ? `, most on ${best.date} (${count(Math.max(...values))})` : "");
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": summary });
  chart.append(svg("title", {}, summary));
  const width = WIDTH - PLOT.left - PLOT.right;
  const height = HEIGHT - PLOT.top - PLOT.bottom;
  const step = width / days.length;
  values.forEach((value, i) => {
    if (!value) return;
    const barHeight = (value / top) * height;
    chart.append(svg("rect", {
      class: "bar",
      x: (PLOT.left + i * step + step * 0.1).toFixed(1),
      y: (PLOT.top + height - barHeight).toFixed(1),
      width: Math.max(1, step * 0.8).toFixed(1),
      height: barHeight.toFixed(1),
    }, undefined));
    chart.lastChild.append(svg("title", {}, `${days[i].date}: ${count(value)}`));
  });
  const baseline = PLOT.top + height;
  chart.append(
    svg("line", { class: "axis", x1: PLOT.left, x2: WIDTH - PLOT.right, y1: baseline, y2: baseline }),
    svg("line", { class: "axis", x1: PLOT.left, x2: PLOT.left, y1: PLOT.top, y2: baseline }),
    svg("text", { x: PLOT.left - 4, y: PLOT.top + 8, "text-anchor": "end" }, count(top)),
    svg("text", { x: PLOT.left - 4, y: baseline, "text-anchor": "end" }, "0"),
    svg("text", { x: PLOT.left, y: HEIGHT - 6 }, days[0].date),
    svg("text", { x: WIDTH - PLOT.right, y: HEIGHT - 6, "text-anchor": "end" }, days[days.length - 1].date),
  );
  return chart;
}
