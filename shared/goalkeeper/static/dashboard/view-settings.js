// The account: its time zone (report days) and how conversions without attribution of
// their own are credited.
import { call } from "./api.js";
import { el, field, message, select, table } from "./ui.js";

const MODELS = [["last_non_direct", "Last non-direct touch"], ["last_touch", "Last touch"], ["first_touch", "First touch"]];

export default {
  id: "settings",
  title: "Account",
  async render(container, context) {
    const account = context.account;
    container.append(table({
      name: "account",
      title: "Account",
      rows: [account],
      columns: [
        { label: "Name", name: "name", value: (a) => a.name || "" },
        { label: "Account id", name: "account_id", value: (a) => a.account_id },
        { label: "Time zone (report days)", name: "timezone", value: (a) => a.timezone },
        { label: "Attribution model", name: "model", value: (a) => a.attribution.model },
        { label: "Lookback (days)", name: "lookback_days", numeric: true, value: (a) => a.attribution.lookback_days },
      ],
    }));
    const model = select("model", MODELS, account.attribution.model);
    const lookback = el("input", { type: "number", name: "lookback_days", min: 1, max: 90, value: account.attribution.lookback_days });
    const outcome = el("div", { "aria-live": "polite" });
    container.append(el("form", {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          context.account = await call("PUT", "/v1/account", { role: "write", body: { attribution: { model: model.value, lookback_days: Number(lookback.value) } } });
          container.dispatchEvent(new Event("redraw", { bubbles: true }));
        } catch (error) {
          outcome.replaceChildren(message(error.message, "error"));
        }
      },
    }, field("Credit conversions without attribution to", model), field("Lookback (days)", lookback, "1 to 90"),
    el("button", { type: "submit", text: "Save settings" })), outcome,
    el("p", { class: "hint", text: "A change applies to conversions decided after it; those already decided keep their attribution." }));
  },
};
