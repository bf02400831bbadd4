"""The marketers' dashboard in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium) opens `/` of `goalkeeper serve` loaded with a known
workload, and every figure it shows is checked against the API's own answer, formatted as
an en-US browser formats it; its CSV downloads against the API's raw values; the goal
editor dry-runs, then creates a goal that counts the next event; a wrong key says so.
Each view is screenshotted at 1280 and 390 pixels wide into `.artifacts/dashboard/`
(git-ignored), and the overview's chart is checked for drawn bars in the pixels.

One `goalkeeper serve` (moto) and one browser session for the module.
"""

import base64
import csv
import io
import struct
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from goalkeeper_cli.local_stack.template import REPO_ROOT
from support.browser import chromium_options, needs_chromium, start_chromium, until
from support.receiver import Receiver
from support.served import ServedStack

pytestmark = [pytest.mark.server, needs_chromium, pytest.mark.long]

ADMIN = "dashboard-browser-admin"
ZONE = "America/New_York"
ARTIFACTS = REPO_ROOT / ".artifacts" / "dashboard"
WIDTHS = (1280, 390)
SHOP = "https://shop.example"
# The accent the chart's bars are drawn in (style.css --accent).
BAR_RGB = (0x0B, 0x5C, 0xAD)
SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€"}
NOTHING = "\N{EN DASH}"  # what a cell without a figure shows

GOALS = {
    "thanks": {"name": "Thank-you page", "rule": {"kind": "url", "match": "prefix",
               "pattern": f"{SHOP}/thank-you"}},
    "sale": {"name": "Sale", "rule": {"kind": "transaction"},
             "value": {"type": "percent_of_transaction", "percent": "100"}},
    "newsletter": {"name": "Newsletter", "converting": False,
                   "rule": {"kind": "custom_trigger", "name": "newsletter"},
                   "value": {"type": "fixed", "amount": "1.50", "currency": "EUR"}},
    "landing": {"name": "Landing", "rule": {"kind": "url", "match": "prefix",
                "pattern": f"{SHOP}/landing"}},
}  # fmt: skip


# Call tracking: the site's own number, a pool of two replacing it, a billboard's number.
SITE_NUMBER = "+442079460000"
NUMBERS = [
    {"number": "+442079460001", "kind": "pool", "pool": "Website", "replaces": SITE_NUMBER},
    {"number": "+442079460002", "kind": "pool", "pool": "Website", "replaces": SITE_NUMBER},
    {"number": "+442079460009", "kind": "static",
     "attribution": {"source": "billboard", "campaign": "M25"}},
]  # fmt: skip
ATTRIBUTION = ("source", "medium", "campaign", "keyword")

# What each rule kind needs filled in, by the editor's labels.
EVERY_KIND: dict[str, dict[str, str]] = {
    "url": {"URL or pattern": f"{SHOP}/thank-you"},
    "custom_trigger": {
        "Trigger name": "demo",
        "Conditions (JSON)": '[{"field": "plan", "op": "exists"}]',
    },
    "transaction": {"Minimum value": "100", "Currency of the minimum": "GBP"},
    "lead": {},
    "call": {"Talked at least (s)": "60", "First-time caller within (days)": "30"},
    "call_rating": {"Rating": "good"},
    "service_activity": {"Topics and statuses (JSON)": '{"booking": ["confirmed"]}'},
    "page_views": {"At least this many page views": "3"},
    "tags": {"Tags": "customer, vip"},
}


def _events(now: datetime) -> list[dict[str, Any]]:
    """Four visitors over three days: paid landings, sales in two currencies, a thank-you
    page seen twice (the second is void), newsletter sign-ups, a visitor who only looks."""

    def at(days: int, hours: int = 0) -> str:
        return (now - timedelta(days=days, hours=hours)).isoformat()

    def page(visitor: str, when: str, path: str) -> dict[str, Any]:
        return {"type": "page_view", "visitor_id": visitor, "occurred_at": when, "url": SHOP + path}

    def sale(visitor: str, when: str, value: str, currency: str, ref: str) -> dict[str, Any]:
        transaction = {"value": value, "currency": currency, "reference": ref}
        return {"type": "transaction", "visitor_id": visitor, "occurred_at": when,
                "transaction": transaction}  # fmt: skip

    def trigger(visitor: str, when: str, name: str) -> dict[str, Any]:
        return {"type": "custom_trigger", "visitor_id": visitor, "occurred_at": when, "name": name}

    winter = "?utm_source=google&utm_medium=cpc&utm_campaign=winter&utm_term=boots&gclid=Cj0-ann"
    spring = "?utm_source=bing&utm_medium=cpc&utm_campaign=spring&utm_term=shoes"
    return [
        page("v-ann", at(3, 5), "/landing" + winter),
        page("v-ann", at(3, 4), "/thank-you"),
        sale("v-ann", at(3, 4), "1149.00", "GBP", "o-1"),
        page("v-ann", at(2, 1), "/thank-you"),
        page("v-bob", at(2, 3), "/landing" + spring),
        sale("v-bob", at(2, 2), "40", "USD", "o-2"),
        trigger("v-bob", at(2, 2), "newsletter"),
        page("v-cat", at(1, 2), "/"),
        trigger("v-cat", at(1, 1), "newsletter"),
        page("v-cat", at(1, 1), "/thank-you"),
        trigger("v-cat", at(1), "webinar"),
        page("v-dan", at(0, 1), "/pricing"),
    ]


@pytest.fixture(scope="module")
def served() -> Iterator[ServedStack]:
    stack = ServedStack(ADMIN)
    yield stack
    stack.stop()


def _ok(served: ServedStack, method: str, path: str, key: str, body: Any = None) -> Any:
    status, answer = served.request(method, path, key, body)
    assert 200 <= status < 300, (method, path, status, answer)
    return answer


def _call_tracking(served: ServedStack, write: str) -> None:
    """A static number and a pool of two that three visits ask for (the third finds it
    exhausted); a call to the pool in the first visit's hold, one to it a day before any."""
    for number in NUMBERS:
        _ok(served, "POST", "/v1/numbers", write, number)
    held = [
        _ok(served, "POST", "/v1/numbers/assign", write, {
            "visitor_id": f"v-caller-{n}", "visit_id": f"s-{n}", "replaces": SITE_NUMBER,
            "attribution": {"source": "google", "medium": "cpc", "keyword": "boots"}})
        for n in range(3)
    ]  # fmt: skip
    assert [a["pooled"] for a in held] == [True, True, False]
    now = datetime.now(UTC)
    calls = [
        {"type": "call", "call_id": "c-held", "tracking_number": held[0]["number"],
         "connected": True, "bridged_seconds": 30, "occurred_at": now.isoformat()},
        {"type": "call", "call_id": "c-before", "tracking_number": held[1]["number"],
         "connected": False, "occurred_at": (now - timedelta(days=1)).isoformat()},
    ]  # fmt: skip
    _ok(served, "POST", "/v1/events", write, {"events": calls})


@pytest.fixture(scope="module")
def workload(served: ServedStack) -> Iterator[dict[str, Any]]:
    account = _ok(served, "POST", "/v1/accounts", ADMIN, {"name": "Shop", "timezone": ZONE})
    write, read = account["keys"]["write"], account["keys"]["read"]
    goal_ids = {
        name: _ok(served, "POST", "/v1/goals", write, g)["goal_id"] for name, g in GOALS.items()
    }
    checkout = {
        "name": "Checkout",
        "steps": [goal_ids["landing"], goal_ids["sale"]],
        "window_days": 7,
    }
    _ok(served, "POST", "/v1/funnels", write, checkout)
    receiver = Receiver()
    hook = {"url": receiver.url, "goal_ids": [goal_ids["sale"]]}
    receiver.secret = _ok(served, "POST", "/v1/webhooks", write, hook)["secret"]
    # The landings first: a sale is a funnel step only when its landing was decided before it.
    events = _events(datetime.now(UTC))
    landings = [e for e in events if "/landing" in e.get("url", "")]

    def decided(counted: int, void: int) -> Callable[[], bool]:
        def check() -> bool:
            goals = _ok(served, "GET", "/v1/reports/goals", read)["goals"]
            return (sum(g["counted"] for g in goals), sum(g["void"] for g in goals)) == (
                counted,
                void,
            )

        return check

    _ok(served, "POST", "/v1/events", write, {"events": landings})
    until("the landings", decided(2, 0))
    _ok(served, "POST", "/v1/events", write, {"events": [e for e in events if e not in landings]})
    until("the workload's conversions", decided(8, 1))
    hook_id = _ok(served, "GET", "/v1/webhooks", write)["webhooks"][0]["webhook_id"]

    def delivered() -> bool:
        log = _ok(served, "GET", f"/v1/webhooks/{hook_id}/deliveries", write)["deliveries"]
        return [d["status"] for d in log] == ["delivered"] * 2

    until("both sales delivered to the webhook", delivered)
    _call_tracking(served, write)
    # Each call counts one of the account's default call goals.
    until("the calls' conversions", decided(10, 1))
    yield {"keys": account["keys"], "goal_ids": goal_ids}
    receiver.close()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[webdriver.Chrome]:
    # No scrollbars: a window 390 pixels wide lays the page out 390 wide, as a phone does.
    options = chromium_options(["--hide-scrollbars", "--lang=en-US"])
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "intl.accept_languages": "en-US"}
    )
    driver = start_chromium(options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.set_window_size(WIDTHS[0], 900)
    yield driver
    driver.quit()


# --- what the page shows ----------------------------------------------------------------


def _view(browser: webdriver.Chrome, view: str) -> None:
    """Navigate as a user does (the menu), and wait for the view to be drawn."""
    browser.find_element(By.CSS_SELECTOR, f'nav a[href="#{view}"]').click()
    _wait_drawn(browser, view)


def _wait_drawn(browser: webdriver.Chrome, view: str) -> str:
    state: str = until(
        f"the {view} view",
        lambda: browser.execute_script(
            "const m = document.getElementById('main');"
            "return m.dataset.view === arguments[0] && m.dataset.state !== 'loading'"
            " && m.dataset.state",
            view,
        ),
    )
    return state


def _table(browser: webdriver.Chrome, name: str) -> list[dict[str, str]]:
    rows = browser.execute_script(
        "return [...document.querySelectorAll(`[data-table='${arguments[0]}'] tbody tr`)]"
        ".map(tr => Object.fromEntries([...tr.cells].map(td => [td.dataset.column,"
        " td.textContent])))",
        name,
    )
    return list(rows)


def _field(browser: webdriver.Chrome, label: str, within: str = "main") -> WebElement:
    """The control a label names: a control a user (or a screen reader) can find by it."""
    found = browser.execute_script(
        "const named = [...document.querySelectorAll(arguments[1] + ' label')]"
        ".filter(l => l.textContent.trim() === arguments[0]);"
        "return named.length === 1 ? named[0].control : named.length",
        label,
        within,
    )
    assert isinstance(found, WebElement), f"{found} labels read {label!r}"
    return found


def _paste_keys(browser: webdriver.Chrome, read: str, write: str = "") -> None:
    _field(browser, "Read key", "header").send_keys(read)
    if write:
        browser.find_element(By.ID, "write-key").send_keys(write)
    browser.find_element(By.CSS_SELECTOR, "#keys button[type=submit]").click()


# --- the API's figures as an en-US browser shows them ------------------------------------


def _count(n: int) -> str:
    return f"{n:,}"


def _percent(rate: float | None) -> str:
    if rate is None:
        return NOTHING
    shown = (Decimal(str(rate)) * 100).quantize(Decimal("0.1"), ROUND_HALF_UP).normalize()
    return f"{shown:f}%"


def _number_text(number: float | None) -> str:
    """A JSON number as JavaScript writes it (what the CSV holds): 0.0 is "0"."""
    if number is None:
        return ""
    return str(int(number)) if float(number).is_integer() else repr(number)


def _money(amount: str, currency: str) -> str:
    return f"{SYMBOLS[currency]}{Decimal(amount):,.2f}"


def _money_cells(value: dict[str, str], currencies: list[str]) -> dict[str, str]:
    return {f"value_{c}": _money(value[c], c) if c in value else NOTHING for c in currencies}


def _ledger_cells(
    row: dict[str, Any], currencies: list[str], rows: list[dict[str, Any]]
) -> dict[str, str]:
    """A report row's net value per currency, its gross beside it in a currency where an
    adjustment made some row's differ (blank where equal), and how many were refunded."""

    def differs(r: dict[str, Any], c: str) -> bool:
        return c in r["gross_value"] and r["gross_value"][c] != r["value"].get(c)

    cells = _money_cells(row["value"], currencies)
    for c in currencies:
        if any(differs(r, c) for r in rows):
            cells[f"gross_value_{c}"] = _money(row["gross_value"][c], c) if differs(row, c) else ""
    return {**cells, "retracted": _count(row["retracted"])}


def _ledger_csv(row: dict[str, Any], currencies: list[str]) -> dict[str, str]:
    return {
        **{f"value_{c}": row["value"].get(c, "") for c in currencies},
        **{f"gross_value_{c}": row["gross_value"].get(c, "") for c in currencies},
        "retracted": str(row["retracted"]),
    }


def _currencies(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({c for row in rows for c in row["value"]})


def _goal_names(goals: list[dict[str, Any]], ids: list[str]) -> str:
    names = {g["goal_id"]: g["name"] for g in goals}
    return ", ".join(names[goal_id] for goal_id in ids)


def _duration(seconds: int | None) -> str:
    """Seconds in the largest whole unit they reach, rounded: 3720 is "1 h"."""
    if seconds is None:
        return NOTHING
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    unit, size = next(((u, n) for u, n in units if seconds >= n), units[-1])
    shown = Decimal(seconds / size).quantize(Decimal(1), ROUND_HALF_UP)
    return f"{shown:,} {unit}"


def _instant(iso: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")


def _csv(downloads: Path, browser: webdriver.Chrome, name: str) -> list[dict[str, str]]:
    """Click the table's download button; the file Chromium saved, read back."""
    target = downloads / f"{name}.csv"
    target.unlink(missing_ok=True)
    browser.find_element(By.CSS_SELECTOR, f"[data-csv='{name}']").click()
    until(f"{target.name} downloaded", target.exists)
    return list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))


# --- screenshots --------------------------------------------------------------------------


def _pixels(png: bytes) -> list[tuple[int, int, int]]:
    """The RGB pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 4 if colour == 6 else 3
    data, position = b"", 8
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        if kind == b"IDAT":
            data += png[position + 8 : position + 8 + length]
        position += 12 + length
    raw, stride = zlib.decompress(data), width * channels
    previous, pixels = bytearray(stride), []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - v), n) for n, v in enumerate((left, up, corner)))[1]
                line[i] = (line[i] + (left, up, corner)[near]) & 0xFF
        pixels += [tuple(line[i : i + 3]) for i in range(0, stride, channels)]
        previous = line
    return pixels  # type: ignore[return-value]


def _unlabelled(browser: webdriver.Chrome) -> list[str]:
    """Controls a screen reader could not name: no <label for>, no aria-label."""
    found: list[str] = browser.execute_script(
        "return [...document.querySelectorAll('input, select, textarea, button')]"
        ".filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')"
        " && !(c.tagName === 'BUTTON' && c.textContent.trim()))"
        ".map(c => c.outerHTML)"
    )
    return found


# WCAG's contrast ratio of each element's text against the background it is drawn on.
CONTRAST = """
const luminance = (rgb) => {
  const [r, g, b] = rgb.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => v / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const opaque = (color) => !/rgba\\(.*, 0\\)$/.test(color) && color !== 'transparent';
const background = (node) => {
  for (; node; node = node.parentElement) {
    const color = getComputedStyle(node).backgroundColor;
    if (opaque(color)) return color;
  }
  return 'rgb(255, 255, 255)';
};
return [...document.querySelectorAll('body *')]
  .filter((e) => !(e instanceof SVGElement) && e.getClientRects().length
    && [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
  .map((e) => {
    const [a, b] = [luminance(getComputedStyle(e).color), luminance(background(e))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const style = getComputedStyle(e);
    const large = parseFloat(style.fontSize) >= 24
      || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
    return [e.textContent.trim().slice(0, 40), Math.round(ratio * 100) / 100, large ? 3 : 4.5];
  })
  .filter(([, ratio, needed]) => ratio < needed);
"""


def _screenshots(browser: webdriver.Chrome, view: str) -> None:
    """The whole page of the view at each width, as artefacts, after checking that the page
    fits the width (only a wide table scrolls, inside its own box); back at the first width."""
    assert _unlabelled(browser) == [], view
    assert browser.execute_script(CONTRAST) == [], view
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        browser.set_window_size(width, 900)
        assert browser.execute_script("return document.documentElement.scrollWidth") == width
        shot = browser.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        path = ARTIFACTS / f"{view}-{width}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        print(f"screenshot: {path}")
    browser.set_window_size(WIDTHS[0], 900)


def _chart_is_drawn(browser: webdriver.Chrome, goal_id: str) -> None:
    """The goal's chart, as rendered at the current width: bars of some size, in the bars'
    colour in the pixels."""
    chart = browser.find_element(By.CSS_SELECTOR, f"[data-chart='{goal_id}'] svg")
    browser.execute_script("arguments[0].scrollIntoView()", chart)
    sizes = browser.execute_script(
        "return [...arguments[0].querySelectorAll('rect.bar')]"
        ".map(r => r.getBoundingClientRect()).map(b => [b.width, b.height])",
        chart,
    )
    assert sizes and all(w > 0 and h > 0 for w, h in sizes), sizes
    coloured = sum(pixel == BAR_RGB for pixel in _pixels(chart.screenshot_as_png))
    assert coloured > 50, coloured


# --- the tests ----------------------------------------------------------------------------


def test_a_wrong_key_is_told_so_and_the_page_keeps_keys_out_of_urls(
    served: ServedStack, workload: dict[str, Any], browser: webdriver.Chrome
) -> None:
    browser.get(served.base_url + "/")
    assert _wait_drawn(browser, "overview") == "ready"
    assert "Paste the account's read key" in browser.find_element(By.ID, "main").text
    _paste_keys(browser, "gk_read_not-the-key")
    assert _wait_drawn(browser, "overview") == "error"
    alert = browser.find_element(By.CSS_SELECTOR, "main [role=alert]").text
    assert "The read key was refused (401): it is wrong or revoked." in alert
    assert "gk_read_" not in browser.current_url

    # An account without events is told how to install the tracker, with this API's URL.
    fresh = _ok(served, "POST", "/v1/accounts", ADMIN, {})
    _paste_keys(browser, fresh["keys"]["read"])
    assert _wait_drawn(browser, "overview") == "ready"
    help_text = browser.find_element(By.CSS_SELECTOR, "main [data-empty]").text
    assert "No events in this range yet" in help_text
    assert f'<script async src="{served.base_url}/v1/tracker.js"' in help_text

    # The menu works from the keyboard, and focus moves to the view it opens.
    browser.find_element(By.CSS_SELECTOR, 'nav a[href="#keywords"]').send_keys(Keys.ENTER)
    assert _wait_drawn(browser, "keywords") == "ready"
    assert browser.execute_script("return document.activeElement.id") == "main"
    assert "No keyword has a counted conversion" in browser.find_element(By.ID, "main").text
    # Without numbers: how to start call tracking, the pool's tag included.
    _view(browser, "numbers")
    help_text = browser.find_element(By.CSS_SELECTOR, "main [data-empty]").text
    assert "No tracking numbers yet. Register a number below" in help_text
    assert f'data-key="gk_site_…" data-number="{SITE_NUMBER}"></script>' in help_text

    browser.find_element(By.ID, "forget").click()
    assert browser.execute_script("return sessionStorage.length") == 0


def test_every_view_shows_the_apis_figures_and_downloads_them(
    served: ServedStack,
    workload: dict[str, Any],
    browser: webdriver.Chrome,
    downloads: Path,
) -> None:
    keys = workload["keys"]
    read, write = keys["read"], keys["write"]
    browser.get(served.base_url + "/")
    _paste_keys(browser, read, write)
    assert _wait_drawn(browser, "overview") == "ready"

    # Overview: totals, the two groups, each goal with its health, a chart per goal.
    report = _ok(served, "GET", "/v1/reports/goals", read)
    goals = report["goals"]
    currencies = _currencies(goals)
    assert currencies == ["EUR", "GBP", "USD"]
    health = {
        g["goal_id"]: _ok(served, "GET", f"/v1/goals/{g['goal_id']}/health", read)["status"]
        for g in goals
    }
    shown = _table(browser, "goals")
    assert shown == [
        {
            "name": g["name"],
            "converting": "Converting" if g["converting"] else "Non-converting",
            "health": {"ok": "OK", "no_recent_match": "No recent match"}[health[g["goal_id"]]],
            "counted": _count(g["counted"]),
            "void": _count(g["void"]),
            "visitors_converted": _count(g["visitors_converted"]),
            "conversion_rate": _percent(g["conversion_rate"]),
            **_ledger_cells(g, currencies, goals),
        }
        for g in goals
    ]
    groups = report["groups"]
    assert _table(browser, "groups") == [
        {
            "group": label,
            "counted": _count(groups[name]["counted"]),
            "void": _count(groups[name]["void"]),
            "visitors_converted": _count(groups[name]["visitors_converted"]),
            **_ledger_cells(
                groups[name], _currencies(list(groups.values())), list(groups.values())
            ),
        }
        for label, name in (("Converting", "converting"), ("Non-converting", "non_converting"))
    ]
    assert browser.find_element(By.CSS_SELECTOR, "[data-card='visitors_seen'] .figure").text == (
        _count(report["visitors_seen"])
    )
    # A chart and its daily table for each goal with conversions; the others named.
    charted = [g for g in goals if g["counted"] or g["void"]]
    assert len(charted) == 6
    for goal in charted:
        days = _ok(
            served,
            "GET",
            f"/v1/reports/goals/{goal['goal_id']}/timeseries?from={report['from']}&to={report['to']}",
            read,
        )["days"]
        assert [
            (d["date"], d["counted"], d["void"])
            for d in _table(browser, f"daily-{goal['goal_id']}")
        ] == [(d["date"], _count(d["counted"]), _count(d["void"])) for d in days]
    charts = browser.find_elements(By.CSS_SELECTOR, "[data-chart]")
    assert [c.get_attribute("data-chart") for c in charts] == [g["goal_id"] for g in charted]
    quiet = ", ".join(g["name"] for g in goals if g not in charted)
    assert f"No conversions in this range: {quiet}." in browser.find_element(By.ID, "main").text
    assert _csv(downloads, browser, "goals") == [
        {
            "name": g["name"],
            "converting": str(g["converting"]).lower(),
            "health": health[g["goal_id"]],
            "counted": str(g["counted"]),
            "void": str(g["void"]),
            "visitors_converted": str(g["visitors_converted"]),
            "conversion_rate": _number_text(g["conversion_rate"]),
            **_ledger_csv(g, currencies),
        }
        for g in goals
    ]
    sale = workload["goal_ids"]["sale"]
    for width in WIDTHS:
        browser.set_window_size(width, 900)
        _chart_is_drawn(browser, sale)
    browser.set_window_size(WIDTHS[0], 900)
    browser.execute_script("window.scrollTo(0, 0)")
    _screenshots(browser, "overview")

    # Attribution, by campaign then by keyword over all goals.
    _view(browser, "attribution")
    for dimension, group in (("source", "converting"), ("keyword", "all")):
        Select(_field(browser, "By")).select_by_value(dimension)
        _wait_drawn(browser, "attribution")
        Select(_field(browser, "Goals")).select_by_value(group)
        _wait_drawn(browser, "attribution")
        query = f"dimension={dimension}&group={group}"
        rows = _ok(served, "GET", f"/v1/reports/attribution?{query}", read)["rows"]
        assert len(rows) >= 2
        name, money = f"attribution-{dimension}-{group}", _currencies(rows)
        assert _table(browser, name) == [
            {
                dimension: r[dimension],
                "counted": _count(r["counted"]),
                **_ledger_cells(r, money, rows),
                "goals": _goal_names(goals, r["goals"]),
            }
            for r in rows
        ]
        assert _csv(downloads, browser, name) == [
            {
                dimension: r[dimension],
                "counted": str(r["counted"]),
                **_ledger_csv(r, money),
                "goals": " ".join(r["goals"]),
            }
            for r in rows
        ]
    _screenshots(browser, "attribution")

    _view(browser, "keywords")
    keywords = _ok(served, "GET", "/v1/reports/top-keywords", read)["keywords"]
    assert [r["keyword"] for r in keywords] == ["boots", "shoes"]
    kw_currencies = _currencies(keywords)
    assert _table(browser, "top-keywords") == [
        {
            "keyword": r["keyword"],
            "counted": _count(r["counted"]),
            **_ledger_cells(r, kw_currencies, keywords),
            "goals": _goal_names(goals, r["goals"]),
        }
        for r in keywords
    ]
    _screenshots(browser, "keywords")

    # The trace of the visitor whose second thank-you page is void, in the account's zone.
    _view(browser, "trace")
    _field(browser, "Visitor id").send_keys("v-ann")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    until("the trace", lambda: _table(browser, "trace-v-ann"))
    items = _ok(served, "GET", "/v1/visitors/v-ann/trace?limit=100", read)["items"]
    shown = _table(browser, "trace-v-ann")
    assert [(r["at"], r["status"], r["reason"]) for r in shown] == [
        (_instant(i["at"]), i.get("status", ""), i.get("reason") or "") for i in items
    ]
    (void,) = [r for r in shown if r["status"] == "void"]
    (first,) = [
        i for i in items if i.get("goal_name") == "Thank-you page" and i.get("status") == "counted"
    ]
    assert void["duplicate_of"] == f"Thank-you page at {_instant(first['at'])}"
    _screenshots(browser, "trace")

    _view(browser, "funnels")
    (funnel,) = _ok(served, "GET", "/v1/funnels", read)["funnels"]
    steps = _ok(served, "GET", f"/v1/reports/funnels/{funnel['funnel_id']}", read)["steps"]
    assert [s["converted"] for s in steps] == [2, 2]
    assert [
        (r["name"], r["entered"], r["converted"], r["drop_off"], r["median_seconds_to_convert"])
        for r in _table(browser, f"funnel-{funnel['funnel_id']}")
    ] == [
        (
            s["name"],
            _count(s["entered"]),
            _count(s["converted"]),
            _count(s["drop_off"]),
            _duration(s["median_seconds_to_convert"]),
        )
        for s in steps
    ]
    _screenshots(browser, "funnels")
    # Creating one: the view then shows its report.
    browser.find_element(By.CSS_SELECTOR, "main details summary").click()
    _field(browser, "Funnel name").send_keys("Sign-up to sale")
    Select(_field(browser, "Step 1")).select_by_visible_text("Newsletter")
    Select(_field(browser, "Step 2")).select_by_visible_text("Sale")
    browser.find_element(By.XPATH, "//main//button[text()='Create funnel']").click()
    until("the new funnel", lambda: "Sign-up to sale:" in browser.find_element(By.ID, "main").text)
    created = _ok(served, "GET", "/v1/funnels", read)["funnels"][1]
    ids = workload["goal_ids"]
    assert (created["name"], created["steps"]) == (
        "Sign-up to sale",
        [ids["newsletter"], ids["sale"]],
    )
    assert [r["name"] for r in _table(browser, f"funnel-{created['funnel_id']}")] == [
        "Newsletter",
        "Sale",
    ]

    _numbers_view(served, browser, downloads, read, write)

    _view(browser, "webhooks")
    (hook,) = _ok(served, "GET", "/v1/webhooks", write)["webhooks"]
    deliveries = _ok(served, "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", write)
    shown = _table(browser, f"deliveries-{hook['webhook_id']}")
    assert [(r["status"], r["attempts"], r["last_response_code"]) for r in shown] == [
        (d["status"], _count(d["attempts"]), str(d["last_response_code"]))
        for d in deliveries["deliveries"]
    ]
    assert {r["status"] for r in shown} == {"delivered"}
    _screenshots(browser, "webhooks")
    # Adding one: its secret is shown once, and the API lists it.
    browser.find_element(By.CSS_SELECTOR, "main details summary").click()
    _field(browser, "URL").send_keys("http://localhost:9/crm")
    _field(browser, "Sale").click()
    browser.find_element(By.XPATH, "//main//button[text()='Add webhook']").click()
    until("the new webhook", lambda: "whsec_" in browser.find_element(By.ID, "main").text)
    hooks = _ok(served, "GET", "/v1/webhooks", write)["webhooks"]
    assert [(h["url"], h["goal_ids"]) for h in hooks[1:]] == [
        ("http://localhost:9/crm", [workload["goal_ids"]["sale"]])
    ]

    _view(browser, "settings")
    assert _table(browser, "account")[0]["timezone"] == ZONE
    _screenshots(browser, "settings")
    Select(_field(browser, "Credit conversions without attribution to")).select_by_value(
        "first_touch"
    )
    _field(browser, "Lookback (days)").clear()
    _field(browser, "Lookback (days)").send_keys("14")
    browser.find_element(By.XPATH, "//main//button[text()='Save settings']").click()
    until("the settings saved", lambda: _table(browser, "account")[0]["lookback_days"] == "14")
    settings = _ok(served, "GET", "/v1/account", read)["attribution"]
    assert settings == {"model": "first_touch", "lookback_days": 14}
    assert _table(browser, "account")[0]["model"] == "first_touch"

    # A German browser gets German number formats: the same figures, written its way.
    german = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": "Object.defineProperty(navigator, 'language', {value: 'de-DE'})"},
    )
    try:
        browser.get(served.base_url + "/#overview")
        browser.refresh()  # the same page by another hash: load it anew
        _wait_drawn(browser, "overview")
        (sale_row,) = [r for r in _table(browser, "goals") if r["name"] == "Sale"]
        sale_value = next(g for g in goals if g["name"] == "Sale")["value"]
        german_gbp = f"{Decimal(sale_value['GBP']):,.2f}".translate(str.maketrans(",.", ".,"))
        assert sale_row["value_GBP"] == f"{german_gbp}\N{NO-BREAK SPACE}£"
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", german)


def _numbers_view(
    served: ServedStack, browser: webdriver.Chrome, downloads: Path, read: str, write: str
) -> None:
    """The numbers and the pool report as the API gives them; registering, a 409, deleting,
    and connecting Twilio through the page."""
    _view(browser, "numbers")
    listed = _ok(served, "GET", "/v1/numbers", read)["numbers"]
    assert len(listed) == len(NUMBERS)

    def raw(n: dict[str, Any]) -> dict[str, str]:
        return {
            "number": n["number"],
            "kind": n["kind"],
            "pool": n.get("pool", ""),
            "replaces": n.get("replaces", ""),
            **{a: n.get("attribution", {}).get(a, "") for a in ATTRIBUTION},
            "created_at": n["created_at"],
        }

    assert _table(browser, "numbers") == [
        {**raw(n), "created_at": _instant(n["created_at"]), "delete": "Delete"} for n in listed
    ]
    assert _csv(downloads, browser, "numbers") == [raw(n) for n in listed]
    report = _ok(served, "GET", "/v1/reports/numbers", read)
    (pool,) = report["pools"]
    figures = ("peak_holds", "assignments", "exhausted_assignments")
    calls = ("calls_matched", "calls_unmatched")
    assert [pool[f] for f in (*figures, *calls)] == [2, 2, 1, 1, 1]

    def row(figure: Callable[[int], str], numbers: str) -> dict[str, str]:
        return {
            "pool": pool["pool"],
            "replaces": pool["replaces"],
            "numbers": numbers.join(pool["numbers"]),
            **{f: figure(pool[f]) for f in (*figures, *calls)},
            "add_numbers": figure(pool["advice"]["add_numbers"]),
            "advice": pool["advice"]["text"],
        }

    # The advice is said above the table, and is a column of its CSV.
    assert _table(browser, "pools") == [
        {k: v for k, v in row(_count, ", ").items() if k != "advice"}
    ]
    assert _csv(downloads, browser, "pools") == [row(str, " ")]
    advice = browser.find_element(By.CSS_SELECTOR, f"[data-advice='{SITE_NUMBER}']").text
    assert advice == f"{pool['pool']}: {pool['advice']['text']}"
    assert "(UTC days)" in browser.find_element(By.CSS_SELECTOR, "[data-table='pools'] h3").text
    _screenshots(browser, "numbers")

    # Registering: a number already registered is refused as the API says; a new one is listed.
    browser.find_element(By.XPATH, "//main//summary[text()='Register a number']").click()
    # A static number asks for its attribution, a pool number for its pool.
    Select(_field(browser, "Kind")).select_by_value("static")
    assert _field(browser, "Source").is_displayed()
    assert not _field(browser, "Pool name").is_displayed()
    Select(_field(browser, "Kind")).select_by_value("pool")
    _field(browser, "Number (E.164)").send_keys(NUMBERS[2]["number"])
    _field(browser, "Pool name").send_keys("Website")
    _field(browser, "Replaces (the site's own number)").send_keys(SITE_NUMBER)
    register = browser.find_element(By.XPATH, "//main//button[text()='Register number']")
    register.click()
    alert = until("the 409", lambda: browser.find_elements(By.CSS_SELECTOR, "main [role=alert]"))
    assert "(409)\nnumber: " in alert[0].text
    _screenshots(browser, "numbers-register")
    _field(browser, "Number (E.164)").clear()
    _field(browser, "Number (E.164)").send_keys("+44 (0)20 7946 0003")
    register.click()
    until(
        "the number registered",
        lambda: "Registered +442079460003." in browser.find_element(By.ID, "main").text,
    )
    added = _ok(served, "GET", "/v1/numbers", read)["numbers"]
    assert [(n["number"], n.get("pool")) for n in added if n not in listed] == [
        ("+442079460003", "Website")
    ]
    assert "+442079460003" in [r["number"] for r in _table(browser, "numbers")]
    browser.find_element(By.CSS_SELECTOR, "[aria-label='Delete +442079460003']").click()
    until(
        "the number deleted",
        lambda: "+442079460003" not in [r["number"] for r in _table(browser, "numbers")],
    )
    assert _ok(served, "GET", "/v1/numbers", read)["numbers"] == listed

    # Connecting Twilio shows the URL to paste, the one the API answers.
    token = "0123456789abcdef0123456789abcdef"
    browser.find_element(By.XPATH, "//main//summary[text()='Connect Twilio']").click()
    _field(browser, "Twilio Auth Token").send_keys(token)
    browser.find_element(By.XPATH, "//main//button[text()='Connect Twilio']").click()
    shown = until(
        "the webhook URL", lambda: browser.find_elements(By.CSS_SELECTOR, "[data-webhook-url]")
    )
    answer = _ok(served, "PUT", "/v1/integrations/twilio", write, {"auth_token": token})
    assert shown[0].text == answer["webhook_url"]
    assert answer["webhook_url"].startswith(served.base_url + "/v1/integrations/twilio/")


def test_the_goal_editor_dry_runs_then_creates_a_goal_that_counts_the_next_event(
    served: ServedStack, workload: dict[str, Any], browser: webdriver.Chrome
) -> None:
    read, write = workload["keys"]["read"], workload["keys"]["write"]
    browser.get(served.base_url + "/#goals")
    if not browser.execute_script("return sessionStorage.length"):
        _paste_keys(browser, read, write)
    _wait_drawn(browser, "goals")
    # The dry-run tries the range of the form: the workload's last days.
    today = datetime.now(ZoneInfo(ZONE)).date()
    days = {"from": str(today - timedelta(days=4)), "to": str(today)}
    browser.execute_script(
        "document.getElementById('from').value = arguments[0];"
        "document.getElementById('to').value = arguments[1]",
        days["from"],
        days["to"],
    )
    browser.find_element(By.CSS_SELECTOR, "#range button[type=submit]").click()
    _wait_drawn(browser, "goals")
    browser.find_element(By.XPATH, "//main//button[text()='New goal']").click()
    _wait_drawn(browser, "goals")
    _field(browser, "Name").send_keys("Webinar")

    def try_it() -> None:
        browser.execute_script(
            "document.querySelectorAll('[data-dry-run]').forEach(e => e.remove())"
        )
        browser.find_element(By.XPATH, "//main//button[text()='Dry-run']").click()
        until(
            "the dry-run",
            lambda: browser.find_elements(By.CSS_SELECTOR, "[data-dry-run], main [role=alert]"),
        )
        alerts = browser.find_elements(By.CSS_SELECTOR, "main [role=alert]")
        assert [a.text for a in alerts] == []

    # Every rule kind, with what it needs filled in, is a goal the API takes.
    for kind, fields in EVERY_KIND.items():
        Select(_field(browser, "Kind")).select_by_value(kind)
        for label, value in fields.items():
            _field(browser, label).send_keys(value)
        try_it()
    Select(_field(browser, "Kind")).select_by_value("custom_trigger")
    _field(browser, "Trigger name").clear()
    _field(browser, "Trigger name").send_keys("webinar")
    create = browser.find_element(By.XPATH, "//main//button[text()='Create goal']")
    assert not create.is_enabled()  # not before its dry-run of this goal
    try_it()
    spec = {"name": "Webinar", "rule": {"kind": "custom_trigger", "name": "webinar"}}
    answer = _ok(served, "POST", "/v1/goals/dry-run", read, {"goal": spec, **days})
    assert browser.find_element(By.CSS_SELECTOR, "[data-dry-run] h3").text == (
        f"Dry-run, {days['from']} to {days['to']}"
    )
    assert (answer["matched"], answer["would_count"]) == (1, 1)
    figures = {
        card.get_attribute("data-card"): card.find_element(By.CSS_SELECTOR, ".figure").text
        for card in browser.find_elements(By.CSS_SELECTOR, "[data-dry-run] [data-card]")
    }
    assert figures == {
        "Events examined": _count(answer["examined"]),
        "Matched": _count(answer["matched"]),
        "Would count": _count(answer["would_count"]),
        "Would be void": _count(answer["would_void"]),
    }
    _screenshots(browser, "goal-editor")
    create.click()
    until("the goal saved", lambda: "Saved “Webinar”" in browser.find_element(By.ID, "main").text)
    (goal,) = [g for g in _ok(served, "GET", "/v1/goals", read)["goals"] if g["name"] == "Webinar"]
    assert goal["rule"]["kind"] == "custom_trigger" and goal["rule"]["name"] == "webinar"
    assert goal["dedup"]["keys"] == ["visitor", "goal"]  # the kind's default: none chosen

    # Edited: the form holds the goal as saved; a change is tried again, then replaces it.
    browser.find_element(By.CSS_SELECTOR, "[aria-label='Edit Webinar']").click()
    _wait_drawn(browser, "goals")
    assert _field(browser, "Trigger name").get_attribute("value") == "webinar"
    assert _field(browser, "visitor").is_selected() and _field(browser, "goal").is_selected()
    _field(browser, "Window (days)").send_keys("7")
    save = browser.find_element(By.XPATH, "//main//button[text()='Save changes']")
    assert not save.is_enabled()
    try_it()
    save.click()
    until("the goal saved", lambda: "(version 2)" in browser.find_element(By.ID, "main").text)
    edited = _ok(served, "GET", f"/v1/goals/{goal['goal_id']}", read)
    assert (edited["version"], edited["dedup"]) == (
        2,
        {"keys": ["visitor", "goal"], "window_days": 7},
    )

    # The goal counts an event sent after it, and the overview shows it.
    event = {"type": "custom_trigger", "name": "webinar", "visitor_id": "v-eve"}
    _ok(served, "POST", "/v1/events", write, event)

    def webinar_counted() -> bool:
        report = _ok(served, "GET", "/v1/reports/goals", read)["goals"]
        return any(g["goal_id"] == goal["goal_id"] and g["counted"] == 1 for g in report)

    until("the webinar conversion", webinar_counted)
    _view(browser, "overview")
    (row,) = [r for r in _table(browser, "goals") if r["name"] == "Webinar"]
    assert (row["counted"], row["void"]) == ("1", "0")


def test_attribution_pages_are_summed_per_label_in_exact_decimals(
    served: ServedStack, browser: webdriver.Chrome
) -> None:
    """A label can appear on several pages of the attribution report: the page adds them
    up (net and gross values, refunded counts), amounts as decimals (0.1 + 0.2 is 0.3, not
    0.30000000000000004)."""
    browser.get(served.base_url + "/")

    def row(campaign: str, counted: int, value: dict[str, str], goals: list[str]) -> Any:
        return {"campaign": campaign, "counted": counted, "value": value, "goals": goals}

    pages = [
        row("winter", 2, {"GBP": "0.10"}, ["g2"]) | {"gross_value": {"GBP": "1"}, "retracted": 1},
        row("spring", 2, {}, ["g1"]) | {"gross_value": {}, "retracted": 0},
        row("winter", 1, {"GBP": "0.2", "USD": "5"}, ["g1"])
        | {"gross_value": {"GBP": "0.2", "USD": "5"}, "retracted": 0},
    ]
    merged = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import('./dashboard/view-attribution.js')"
        ".then(m => done(m.mergeRows(arguments[0], 'campaign')))",
        pages,
    )
    assert merged == [
        row("winter", 3, {"GBP": "0.30", "USD": "5"}, ["g1", "g2"])
        | {"gross_value": {"GBP": "1.2", "USD": "5"}, "retracted": 1},
        row("spring", 2, {}, ["g1"]) | {"gross_value": {}, "retracted": 0},
    ]


# --- the value ledger (issue 21): refunds and changed values, the Google Ads export -------


def _conversion(served: ServedStack, read: str, visitor: str, goal: str) -> dict[str, Any]:
    items = _ok(served, "GET", f"/v1/visitors/{visitor}/trace?limit=100", read)["items"]
    (found,) = [i for i in items if i.get("goal_name") == goal and i.get("status") == "counted"]
    return found


def _raw_get(served: ServedStack, path: str, key: str) -> bytes:
    request = urllib.request.Request(served.base_url + path, headers={"x-api-key": key})
    with urllib.request.urlopen(request) as answer:
        body: bytes = answer.read()
        return body


def test_refunds_and_changed_values_show_net_gross_and_go_to_the_google_ads_export(
    served: ServedStack,
    workload: dict[str, Any],
    browser: webdriver.Chrome,
    downloads: Path,
) -> None:
    read, write = workload["keys"]["read"], workload["keys"]["write"]
    browser.get(served.base_url + "/#trace")
    if not browser.execute_script("return sessionStorage.length"):
        _paste_keys(browser, read, write)
    _wait_drawn(browser, "trace")
    ann_sale = _conversion(served, read, "v-ann", "Sale")
    _field(browser, "Visitor id").clear()
    _field(browser, "Visitor id").send_keys("v-ann")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    until("the trace", lambda: _table(browser, "trace-v-ann"))
    at = _instant(ann_sale["at"])
    browser.find_element(
        By.CSS_SELECTOR, f"[aria-label='Refund or change the value of Sale at {at}']"
    ).click()

    # A value the API refuses: its message, as it says it.
    Select(_field(browser, "Change")).select_by_value("restate")
    _field(browser, "New value").send_keys("-5")
    browser.find_element(By.XPATH, "//main//button[text()='Save adjustment']").click()
    alert = until(
        "the refusal", lambda: browser.find_elements(By.CSS_SELECTOR, "main .adjust [role=alert]")
    )
    status, refused = served.request(
        "POST",
        f"/v1/conversions/{ann_sale['conversion_id']}/adjustments",
        write,
        {"adjustment_id": "probe", "type": "restate", "value": "-5", "currency": "GBP"},
    )
    assert status == 400
    assert refused["error"]["message"] in alert[0].text
    # The refund, made in the page; the trace shows it under its conversion.
    Select(_field(browser, "Change")).select_by_value("retract")
    _field(browser, "Reason").send_keys("order refunded")
    browser.find_element(By.XPATH, "//main//button[text()='Save adjustment']").click()
    until(
        "the refund", lambda: any(r["kind"] == "↳ Refund" for r in _table(browser, "trace-v-ann"))
    )
    _wait_drawn(browser, "trace")
    items = _ok(served, "GET", "/v1/visitors/v-ann/trace?limit=100", read)["items"]
    shown = _table(browser, "trace-v-ann")
    assert [r["at"] for r in shown] == [_instant(i["at"]) for i in items]
    place = next(
        n for n, i in enumerate(items) if i.get("conversion_id") == ann_sale["conversion_id"]
    )
    refund = items[place + 1]
    assert (refund["kind"], refund["type"], refund["reason"]) == (
        "adjustment",
        "retract",
        "order refunded",
    )
    assert items[place]["retracted"] is True
    assert shown[place]["detail"] == "Sale · £1,149.00 · net refunded"
    assert shown[place + 1]["detail"] == "£1,149.00 → refunded · order refunded"
    _screenshots(browser, "trace-adjusted")

    # A later value for the other sale, through the API.
    bob_sale = _conversion(served, read, "v-bob", "Sale")
    later = {"adjustment_id": "won-bob", "type": "restate", "value": "55", "reason": "upsold"}
    _ok(served, "POST", f"/v1/conversions/{bob_sale['conversion_id']}/adjustments", write, later)

    # The overview: net, gross and refunded as the API reports them.
    _view(browser, "overview")
    report = _ok(served, "GET", "/v1/reports/goals", read)
    currencies = _currencies(report["goals"])
    assert _table(browser, "goals") == [
        {**row, **_ledger_cells(g, currencies, report["goals"])}
        for row, g in zip(_table(browser, "goals"), report["goals"], strict=True)
    ]
    (sale,) = [r for r in _table(browser, "goals") if r["name"] == "Sale"]
    assert (sale["value_GBP"], sale["gross_value_GBP"], sale["retracted"]) == (
        _money("0", "GBP"),
        "£1,149.00",
        "1",
    )
    assert (sale["value_USD"], sale["gross_value_USD"]) == ("$55.00", "$40.00")
    groups = report["groups"]
    assert [r["retracted"] for r in _table(browser, "groups")] == [
        _count(groups["converting"]["retracted"]),
        _count(groups["non_converting"]["retracted"]),
    ]
    (sale_csv,) = [r for r in _csv(downloads, browser, "goals") if r["name"] == "Sale"]
    (sale_api,) = [g for g in report["goals"] if g["name"] == "Sale"]
    assert {k: v for k, v in sale_csv.items() if k in _ledger_csv(sale_api, currencies)} == (
        _ledger_csv(sale_api, currencies)
    )

    # The Google Ads files, as the API writes them, byte for byte (then attribution's
    # figures, net of the refund).
    span = f"from={report['from']}&to={report['to']}"
    for kind in ("conversions", "adjustments"):
        Select(_field(browser, "Which file")).select_by_value(kind)
        name = f"google-ads-{kind}-{report['from']}-{report['to']}.csv"
        target = downloads / name
        target.unlink(missing_ok=True)
        browser.find_element(By.XPATH, "//main//button[text()='Download Google Ads file']").click()
        until(f"{name} downloaded", target.exists)
        expected = _raw_get(served, f"/v1/exports/google-ads?{span}&kind={kind}", read)
        assert b"Cj0-ann" in expected
        assert target.read_bytes() == expected
    browser.execute_script("window.scrollTo(0, 0)")
    _screenshots(browser, "overview-adjusted")
    _view(browser, "attribution")
    rows = _ok(served, "GET", "/v1/reports/attribution?dimension=source&group=converting", read)
    by_source = _currencies(rows["rows"])
    (google,) = [r for r in rows["rows"] if r["source"] == "google"]
    assert (google["retracted"], google["gross_value"]["GBP"]) == (1, "1149.00")
    assert [
        {k: v for k, v in r.items() if k.startswith(("value_", "gross_value_", "retracted"))}
        for r in _table(browser, "attribution-source-converting")
    ] == [_ledger_cells(r, by_source, rows["rows"]) for r in rows["rows"]]
