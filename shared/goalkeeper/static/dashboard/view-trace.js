// What one visitor did: their events and the conversions each caused, in time order;
// a void conversion with its reason and the counted conversion it duplicates; a
// conversion's adjustments (refunds, changed values) under it, and, with the write key,
// a form to make one.
import { ApiError, call, get, key, pathId } from "./api.js";
import { instant, money } from "./format.js";
import { el, empty, field, message, select, table } from "./ui.js";

const PAGE = 100;
const search = { visitor: "", items: [], next: null };

const shownMoney = (value) => (value ? money(value.amount, value.currency) : "no value");
const ADJUSTMENT = { retract: "Refund", restate: "Value changed" };

function detail(item) {
  if (item.kind === "adjustment") {
    const after = item.type === "retract" ? "refunded" : shownMoney(item.value);
    return `${shownMoney(item.previous_value)} → ${after}${item.reason ? ` · ${item.reason}` : ""}`;
  }
  if (item.kind === "conversion") {
    const value = item.value ? ` · ${money(item.value.amount, item.value.currency)}` : "";
    const net = item.adjustments ? ` · net ${item.retracted ? "refunded" : shownMoney(item.net_value)}` : "";
    return `${item.goal_name || item.goal_id}${value}${net}`;
  }
  const sale = item.transaction ? money(item.transaction.value, item.transaction.currency) : "";
  const what = item.url || item.name || item.lead_id || item.call_id || item.service_id || item.contact_id;
  return [what, sale].filter(Boolean).join(" · ");
}

function what(item) {
  if (item.kind === "event") return item.type.replace("_", " ");
  return item.kind === "adjustment" ? `↳ ${ADJUSTMENT[item.type] || item.type}` : "→ conversion";
}

// The CSV's detail: the API's own values (an adjustment's type and new amount).
function rawDetail(item) {
  if (item.kind === "event") return item.url || item.name || "";
  if (item.kind === "adjustment") return [item.type, item.value?.amount, item.value?.currency].filter(Boolean).join(" ");
  return item.goal_id;
}

function attribution(item) {
  if (item.kind !== "conversion") return "";
  const a = item.attribution || {};
  const labels = ["source", "medium", "campaign", "keyword"].map((k) => a[k]).filter(Boolean);
  return labels.length ? `${labels.join(" / ")} (${item.attribution_source})` : `(none) (${item.attribution_source})`;
}

function duplicates(items) {
  const byId = Object.fromEntries(items.filter((i) => i.kind === "conversion").map((i) => [i.conversion_id, i]));
  return (item) => {
    if (!item.duplicate_of) return "";
    const first = byId[item.duplicate_of];
    return first ? `${first.goal_name || first.goal_id} at ${instant(first.at)}` : item.duplicate_of;
  };
}

const adjustable = (item) => item.kind === "conversion" && item.status === "counted" && !item.retracted;

// Refund a conversion or change its value: one adjustment, under an id of its own (sent
// again, the API answers the stored one), then the trace anew.
function adjustForm(item, redraw) {
  const type = select("type", [["retract", "Refund (takes its whole value out)"], ["restate", "Change value"]], "retract");
  const amount = el("input", { name: "value", inputmode: "decimal", autocomplete: "off" });
  const currency = el("input", { name: "currency", value: (item.net_value || item.value || {}).currency || "", maxlength: 3, size: 4 });
  const reason = el("input", { name: "reason", autocomplete: "off" });
  const adjustmentId = `dashboard-${crypto.randomUUID()}`;
  const form = el("form", {
    "data-adjust": item.conversion_id,
    onsubmit: async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      form.querySelector(".message")?.remove();
      const body = { adjustment_id: adjustmentId, type: type.value, reason: reason.value.trim() || undefined };
      if (type.value === "restate") Object.assign(body, { value: amount.value.trim(), currency: currency.value.trim() || undefined });
      try {
        await call("POST", `/v1/conversions/${pathId(item.conversion_id)}/adjustments`, { role: "write", body });
        search.items = [];
        redraw();
      } catch (error) {
        form.append(message(error.message, "error"));
        button.disabled = false;
      }
    },
  }, field("Change", type), field("New value", amount, "for a changed value"), field("Currency", currency), field("Reason", reason),
  el("button", { type: "submit", text: "Save adjustment" }));
  return el("section", { class: "adjust" },
    el("h3", { text: `Refund or change the value of ${item.goal_name || item.goal_id} at ${instant(item.at)}` }), form);
}

async function load(visitor, cursor) {
  const page = await get(`/v1/visitors/${pathId(visitor)}/trace`, { limit: PAGE, cursor });
  search.items.push(...page.items);
  search.next = page.next_cursor;
}

export default {
  id: "trace",
  title: "Visitor trace",
  async render(container) {
    const input = el("input", { name: "visitor", required: true, value: search.visitor, spellcheck: "false", autocomplete: "off" });
    const redraw = () => container.dispatchEvent(new Event("redraw", { bubbles: true }));
    container.append(el("form", {
      onsubmit: (event) => {
        event.preventDefault();
        Object.assign(search, { visitor: input.value.trim(), items: [], next: null });
        redraw();
      },
    }, field("Visitor id", input, "as your events name it, or as the tracker keeps it in the browser (gk_vid)"), el("button", { type: "submit", text: "Search" })));
    if (!search.visitor) {
      container.append(empty("Type a visitor id to see their events and conversions, void ones with the reason."));
      return;
    }
    if (!search.items.length) {
      try {
        await load(search.visitor, "");
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        container.append(empty(`No events from visitor “${search.visitor}” in this account.`));
        return;
      }
    }
    const items = search.items;
    const duplicateOf = duplicates(items);
    const editor = el("div");
    const change = key("write") ? [{
      label: "Value",
      name: "adjust",
      cell: (r) => (adjustable(r) ? el("button", {
        type: "button",
        class: "secondary",
        text: "Refund / change value",
        "aria-label": `Refund or change the value of ${r.goal_name || r.goal_id} at ${instant(r.at)}`,
        onclick: () => {
          editor.replaceChildren(adjustForm(r, redraw));
          editor.querySelector("select").focus();
        },
      }) : ""),
    }] : [];
    container.append(table({
      name: `trace-${search.visitor}`,
      title: `Visitor ${search.visitor}: ${items.length} entries`,
      rows: items,
      rowClass: (r) => (r.status === "void" ? "void" : null),
      columns: [
        { label: "When", name: "at", value: (r) => r.at, show: (r) => instant(r.at) },
        { label: "What", name: "kind", value: (r) => (r.kind === "event" ? r.type : r.kind), show: what },
        { label: "Detail", name: "detail", value: rawDetail, show: detail },
        { label: "Status", name: "status", value: (r) => r.status || "", show: (r) => r.status || "" },
        { label: "Why void", name: "reason", value: (r) => (r.kind === "adjustment" ? "" : r.reason || "") },
        { label: "Duplicates", name: "duplicate_of", value: (r) => r.duplicate_of || "", show: duplicateOf },
        { label: "Credited to", name: "attribution", value: attribution },
        { label: "Visit", name: "visit_id", value: (r) => r.visit_id || "" },
        ...change,
      ],
    }), editor);
    if (search.next) {
      container.append(el("button", {
        type: "button",
        text: "Load more",
        onclick: async (event) => {
          try {
            await load(search.visitor, search.next);
            redraw();
          } catch (error) {
            event.target.after(message(error.message, "error"));
          }
        },
      }));
    }
  },
};
