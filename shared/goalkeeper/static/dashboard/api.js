// The API of the page's own origin: the dashboard is served by it (README, "Dashboard"),
// so its URL is this file's folder's parent, whatever stage or path prefix it sits under.
const BASE = new URL("..", import.meta.url);
// Keys live in this tab's session storage only: never in a URL, a cookie or a log.
const STORE = window.sessionStorage;
const STORED = { read: "goalkeeper.read_key", write: "goalkeeper.write_key" };

export function key(role) {
  return STORE.getItem(STORED[role]) || "";
}

export function setKey(role, value) {
  if (value) STORE.setItem(STORED[role], value);
  else STORE.removeItem(STORED[role]);
}

// What the page shows of a key: its role and first characters, as the API's `prefix` does.
export function keyHint(role) {
  const value = key(role);
  return value ? value.slice(0, `gk_${role}_`.length + 4) + "…" : "";
}

function explain(status, body, role) {
  if (status === 401) return `The ${role} key was refused (401): it is wrong or revoked. Paste it again above.`;
  if (status === 403) return `This needs the account's ${role} key; the key pasted as ${role} key is another kind (403).`;
  const error = body && body.error;
  if (!error) return `The API answered ${status}.`;
  const fields = (error.fields || []).map((f) => `${f.field}: ${f.reason}`);
  return [error.message + ` (${status})`, ...fields].join("\n");
}

export class ApiError extends Error {
  constructor(status, body, role, message) {
    super(message || explain(status, body, role));
    this.status = status;
    this.body = body;
  }
}

// The API's answer to a request with the pasted key: a Response, or an ApiError.
async function send(method, path, { role = "read", query = {}, body } = {}) {
  const secret = key(role);
  if (!secret) throw new ApiError(0, null, role, `Paste the account's ${role} key above to see this.`);
  const url = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(query)) {
    if (value !== "" && value !== null && value !== undefined) url.searchParams.set(name, value);
  }
  const headers = { "x-api-key": secret };
  if (body !== undefined) headers["content-type"] = "application/json";
  let answer;
  try {
    answer = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, null, role, "The API could not be reached: check the connection and try again.");
  }
  if (!answer.ok) throw new ApiError(answer.status, await answer.json().catch(() => null), role);
  return answer;
}

export async function call(method, path, options = {}) {
  const answer = await send(method, path, options);
  return answer.json().catch(() => null);
}

// A file the API writes (text/csv), as a Blob: its bytes as sent.
export async function download(path, query, role = "read") {
  return (await send("GET", path, { role, query })).blob();
}

export const get = (path, query, role = "read") => call("GET", path, { role, query });

// Every page of a listing that pages with next_cursor, its items concatenated.
export async function getAll(path, field, query = {}, role = "read") {
  const items = [];
  let cursor = "";
  do {
    const page = await get(path, { ...query, cursor }, role);
    items.push(...page[field]);
    cursor = page.next_cursor || "";
  } while (cursor);
  return items;
}

export const pathId = (id) => encodeURIComponent(id);
