// Numbers per the browser's locale, money per ISO 4217 currency, instants in the
// account's time zone. Amounts come from the API as decimal strings and are formatted
// as such (Intl reads a string exactly), never summed across currencies.
const LOCALE = navigator.language || "en-US";
const INTEGER = new Intl.NumberFormat(LOCALE);
const PERCENT = new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 1 });
const NOTHING = "–";

let zone = "UTC";
let instantFormat = null;

export function setTimeZone(name) {
  zone = name || "UTC";
  instantFormat = null;
}

export const count = (n) => (n === null || n === undefined ? NOTHING : INTEGER.format(n));
export const percent = (rate) => (rate === null || rate === undefined ? NOTHING : PERCENT.format(rate));
export const money = (amount, currency) =>
  new Intl.NumberFormat(LOCALE, { style: "currency", currency }).format(amount);

// "2026-11-30 10:00:00" in the account's zone: one unambiguous form on every locale.
export function instant(iso) {
  if (!iso) return NOTHING;
  instantFormat ??= new Intl.DateTimeFormat("en-CA", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  const part = Object.fromEntries(instantFormat.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}:${part.second}`;
}

export function seconds(value) {
  if (value === null || value === undefined) return NOTHING;
  const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
  const [unit, size] = units.find(([, size]) => value >= size) || units[3];
  return `${INTEGER.format(Math.round(value / size))} ${unit}`;
}

// The currencies that appear in the rows' values, in order: one table column each.
export function currencies(rows, pick = (row) => row.value) {
  return [...new Set(rows.flatMap((row) => Object.keys(pick(row) || {})))].sort();
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export const csv = (header, rows) =>
  [header, ...rows].map((row) => row.map(csvCell).join(",")).join("\r\n") + "\r\n";
