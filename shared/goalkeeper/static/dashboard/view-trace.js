// What one visitor did: their events and the conversions each caused, in time order;
// a void conversion with its reason and the counted conversion it duplicates.
import { ApiError, get, pathId } from "./api.js";
import { instant, money } from "./format.js";
import { el, empty, field, message, table } from "./ui.js";

const PAGE = 100;
const search = { visitor: "", items: [], next: null };

function detail(item) {
  if (item.kind === "conversion") {
    const value = item.value ? ` · ${money(item.value.amount, item.value.currency)}` : "";
    return `${item.goal_name || item.goal_id}${value}`;
  }
  const sale = item.transaction ? money(item.transaction.value, item.transaction.currency) : "";
  const what = item.url || item.name || item.lead_id || item.call_id || item.service_id || item.contact_id;
  return [what, sale].filter(Boolean).join(" · ");
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
    container.append(table({
      name: `trace-${search.visitor}`,
      title: `Visitor ${search.visitor}: ${items.length} entries`,
      rows: items,
      rowClass: (r) => (r.status === "void" ? "void" : null),
      columns: [
        { label: "When", name: "at", value: (r) => r.at, show: (r) => instant(r.at) },
        { label: "What", name: "kind", value: (r) => (r.kind === "event" ? r.type : "conversion"), show: (r) => (r.kind === "event" ? r.type.replace("_", " ") : "→ conversion") },
        { label: "Detail", name: "detail", value: (r) => (r.kind === "event" ? r.url || r.name || "" : r.goal_id), show: detail },
        { label: "Status", name: "status", value: (r) => r.status || "", show: (r) => r.status || "" },
        { label: "Why void", name: "reason", value: (r) => r.reason || "" },
        { label: "Duplicates", name: "duplicate_of", value: (r) => r.duplicate_of || "", show: duplicateOf },
        { label: "Credited to", name: "attribution", value: attribution },
        { label: "Visit", name: "visit_id", value: (r) => r.visit_id || "" },
      ],
    }));
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
