// Building blocks of the views. Text from the API is only ever set as text (textContent,
// attribute values), never parsed as HTML.
import { count, csv, currencies, money } from "./format.js";

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function message(text, kind = "info") {
  // Errors are announced at once; loading and empty states politely.
  return el("p", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status", text });
}

export const loading = (what) => message(`Loading ${what}…`, "loading");

// An empty state: what is missing and what to do about it.
export function empty(text, ...more) {
  return el("div", { class: "message empty", role: "status", "data-empty": "" }, el("p", { text }), ...more);
}

// A file the browser saves: text, or a Blob kept byte for byte as the API answered it.
export function saveFile(name, data) {
  const link = el("a", { href: URL.createObjectURL(new Blob([data], { type: "text/csv" })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// The value ledger's columns of a report, per currency (amounts are never summed across
// currencies): the net value and, in a currency where an adjustment made them differ, the
// gross beside it (blank where equal); then how many were refunded (retracted). The CSV
// has every gross column, with the API's values.
export function ledgerColumns(rows) {
  const gross = (row) => row.gross_value || {};
  return [
    ...currencies(rows, (row) => ({ ...row.value, ...gross(row) })).flatMap((currency) => {
      const net = (row) => (row.value || {})[currency];
      const differs = (row) => gross(row)[currency] !== undefined && gross(row)[currency] !== net(row);
      return [
        { label: `Net value (${currency})`, name: `value_${currency}`, numeric: true, value: (row) => net(row) ?? "",
          show: (row) => (net(row) === undefined ? "–" : money(net(row), currency)) },
        { label: `Gross (${currency})`, name: `gross_value_${currency}`, numeric: true, csvOnly: !rows.some(differs),
          value: (row) => gross(row)[currency] ?? "", show: (row) => (differs(row) ? money(gross(row)[currency], currency) : "") },
      ];
    }),
    { label: "Refunded", name: "retracted", numeric: true, value: (row) => row.retracted ?? 0, show: (row) => count(row.retracted ?? 0) },
  ];
}

// A table with its caption and a CSV download of exactly its rows. A column is
// {label, name (the CSV header), value(row) (the API's value), show(row) (text shown,
// default the value), numeric, cell(row) (a node instead of text)}; a column without a
// value (a button) is on screen only, one with csvOnly (said on screen another way) in
// the CSV only.
export function table({ name, title, columns, rows, rowClass }) {
  const shown = columns.filter((c) => !c.csvOnly);
  const head = el("tr", {}, ...shown.map((c) => el("th", { scope: "col", class: c.numeric ? "number" : null, text: c.label })));
  const body = rows.map((row) =>
    el("tr", { class: rowClass ? rowClass(row) : null },
      ...shown.map((c) => {
        const cell = el("td", { class: c.numeric ? "number" : null, "data-column": c.name });
        if (c.cell) cell.append(c.cell(row));
        else cell.textContent = String((c.show || c.value)(row) ?? "");
        return cell;
      })));
  const download = el("button", {
    type: "button",
    class: "secondary",
    "data-csv": name,
    "aria-label": `Download ${title} as CSV`,
    text: "Download CSV",
    onclick: () => {
      const saved = columns.filter((c) => c.value);
      saveFile(`${name}.csv`, csv(saved.map((c) => c.name), rows.map((row) => saved.map((c) => c.value(row)))));
    },
  });
  return el("section", { class: "table", "data-table": name },
    el("div", { class: "table-head" }, el("h3", { text: title }), download),
    el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...body))));
}

// A view's form: labelled fields, a submit button, and the handler given the values.
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const isCheck = input.type === "checkbox";
  const caption = el("label", { for: id, text: label });
  const parts = isCheck ? [input, caption] : [caption, input];
  if (hint) parts.push(el("span", { class: "hint", text: hint }));
  return el("div", { class: isCheck ? "field check" : "field" }, ...parts);
}

export const select = (name, options, value) =>
  el("select", { name }, ...options.map(([v, text]) => el("option", { value: v, text, selected: v === value })));

// A button that runs an API call; what goes wrong is said next to it.
export function action(text, label, run, disabled = false) {
  return el("button", {
    type: "button",
    class: "secondary",
    text,
    "aria-label": label,
    disabled,
    onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        await run();
      } catch (error) {
        button.after(message(error.message, "error"));
      } finally {
        button.disabled = false;
      }
    },
  });
}
