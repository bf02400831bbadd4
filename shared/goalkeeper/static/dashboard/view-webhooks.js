// Webhooks (write key: their URLs may carry a receiver's token) and each one's delivery
// log, with a retry for a finished delivery.
import { call, get, getAll, pathId } from "./api.js";
import { count, instant } from "./format.js";
import { action, el, empty, field, message, table } from "./ui.js";

const chosen = { webhook: "", created: null };

function createForm(container, goals) {
  const url = el("input", { name: "url", type: "url", required: true, placeholder: "https://crm.example/hooks" });
  const description = el("input", { name: "description" });
  const boxes = goals.filter((g) => g.active).map((g) => [g.goal_id, el("input", { type: "checkbox", name: `goal_${g.goal_id}` })]);
  const outcome = el("div", { "aria-live": "polite" });
  const form = el("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const goalIds = boxes.filter(([, box]) => box.checked).map(([id]) => id);
      try {
        chosen.created = await call("POST", "/v1/webhooks", { role: "write", body: { url: url.value.trim(), goal_ids: goalIds, description: description.value.trim() || undefined } });
        chosen.webhook = chosen.created.webhook_id;
        container.dispatchEvent(new Event("redraw", { bubbles: true }));
      } catch (error) {
        outcome.replaceChildren(message(error.message, "error"));
      }
    },
  }, field("URL", url), field("Description", description),
  el("fieldset", {}, el("legend", { text: "Goals (none ticked: every goal)" }), ...boxes.map(([id, box]) => field(goals.find((g) => g.goal_id === id).name, box))),
  el("button", { type: "submit", text: "Add webhook" }));
  return el("details", {}, el("summary", { text: "Add a webhook" }), form, outcome);
}

export default {
  id: "webhooks",
  title: "Webhooks",
  async render(container) {
    const [{ webhooks }, goals] = await Promise.all([get("/v1/webhooks", {}, "write"), getAll("/v1/goals", "goals", {}, "write")]);
    const redraw = () => container.dispatchEvent(new Event("redraw", { bubbles: true }));
    if (chosen.created) {
      container.append(message(`Webhook created. Its signing secret, shown this once: ${chosen.created.secret}`));
      chosen.created = null;
    }
    container.append(createForm(container, goals));
    if (!webhooks.length) {
      container.append(empty("No webhooks yet. A webhook tells your CRM or automation at once when a goal counts: add one above."));
      return;
    }
    const names = Object.fromEntries(goals.map((g) => [g.goal_id, g.name]));
    container.append(table({
      name: "webhooks",
      title: "Webhooks",
      rows: webhooks,
      columns: [
        { label: "URL", name: "url", value: (w) => w.url },
        { label: "Description", name: "description", value: (w) => w.description || "" },
        { label: "Goals", name: "goal_ids", value: (w) => (w.goal_ids || []).join(" "), show: (w) => (w.goal_ids ? w.goal_ids.map((id) => names[id] || id).join(", ") : "every goal") },
        { label: "Status", name: "status", value: (w) => w.status },
        { label: "Created", name: "created_at", value: (w) => w.created_at, show: (w) => instant(w.created_at) },
        { label: "Actions", name: "webhook_id", value: (w) => w.webhook_id, cell: (w) => el("span", {},
          action("Deliveries", `Deliveries of ${w.url}`, async () => { chosen.webhook = w.webhook_id; redraw(); }),
          action("Delete", `Delete ${w.url}`, async () => { await call("DELETE", `/v1/webhooks/${pathId(w.webhook_id)}`, { role: "write" }); redraw(); })) },
      ],
    }));
    const webhook = webhooks.find((w) => w.webhook_id === chosen.webhook) || webhooks[0];
    const deliveries = await getAll(`/v1/webhooks/${pathId(webhook.webhook_id)}/deliveries`, "deliveries", {}, "write");
    if (!deliveries.length) {
      container.append(empty(`No deliveries to ${webhook.url} yet: one is made for each counted conversion of its goals.`));
      return;
    }
    const finished = new Set(["delivered", "dead", "cancelled"]);
    container.append(table({
      name: `deliveries-${webhook.webhook_id}`,
      title: `Deliveries to ${webhook.url}`,
      rows: deliveries,
      rowClass: (d) => (d.status === "dead" ? "void" : null),
      columns: [
        { label: "Created", name: "created_at", value: (d) => d.created_at, show: (d) => instant(d.created_at) },
        { label: "Goal", name: "goal_id", value: (d) => d.goal_id, show: (d) => names[d.goal_id] || d.goal_id },
        { label: "Status", name: "status", value: (d) => d.status },
        { label: "Attempts", name: "attempts", numeric: true, value: (d) => d.attempts, show: (d) => count(d.attempts) },
        { label: "Last answer", name: "last_response_code", value: (d) => d.last_response_code ?? "", show: (d) => d.last_response_code ?? d.last_error ?? "" },
        { label: "Next attempt", name: "next_attempt_at", value: (d) => d.next_attempt_at || "", show: (d) => (d.next_attempt_at ? instant(d.next_attempt_at) : "") },
        { label: "Delivered", name: "delivered_at", value: (d) => d.delivered_at || "", show: (d) => (d.delivered_at ? instant(d.delivered_at) : "") },
        { label: "Retry", name: "delivery_id", value: (d) => d.delivery_id, cell: (d) => (finished.has(d.status)
          ? action("Retry", `Retry delivery ${d.delivery_id}`, async () => { await call("POST", `/v1/webhooks/${pathId(webhook.webhook_id)}/deliveries/${pathId(d.delivery_id)}/retry`, { role: "write" }); redraw(); })
          : document.createTextNode("")) },
      ],
    }));
  },
};
