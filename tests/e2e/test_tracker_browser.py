"""The site tracker in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium) loads a small shop served from another origin,
tagged with `<script async src=".../v1/tracker.js" data-key=...>`, against `goalkeeper
serve`. What the tracker sent is read back through the API, as a marketer would see it.

One browser session and one `goalkeeper serve` (moto) for the whole module: ~12 s.
"""

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from selenium import webdriver

from goalkeeper_cli.local_stack.server import free_port
from support.browser import chromium_options, needs_chromium, start_chromium, until
from support.served import ServedStack

pytestmark = [pytest.mark.server, needs_chromium]

ADMIN = "tracker-browser-admin"
CAMPAIGN = "?utm_source=google&utm_medium=cpc&utm_campaign=winter&utm_term=boots"
WINTER = {"source": "google", "medium": "cpc", "campaign": "winter", "keyword": "boots"}
SNIPPET = (
    "<script>window.goalkeeper=window.goalkeeper||function()"
    "{(goalkeeper.q=goalkeeper.q||[]).push(arguments)}</script>"
)
# The shop's pages note each request the page makes (the tracker sends with fetch), when it
# is made: a test can tell "nothing sent" at once, without waiting for what might come.
SPY = (
    "<script>window.requested=[];var pageFetch=window.fetch;"
    "window.fetch=function(url){requested.push(String(url));"
    "return pageFetch.apply(this,arguments)}</script>"
)
# The site's own number, on a page whose tag asks for dynamic number insertion.
SITE_NUMBER = "+442079460000"
POOL_NUMBER = "+442079460001"
CONTENT = {
    "/call-us": '<p id="text">Call 020 7946 0000 or +44 (0)20 7946-0000 (not 020 7946 0999)</p>'
    '<a id="own" href="tel:+442079460000">Call</a><a id="other" href="tel:+442079460999">Fax</a>'
}
# Calls a page makes before the tracker has loaded, queued by the snippet.
EARLY_CALLS = {"/private": "<script>goalkeeper('consent', false)</script>"}


class Shop:
    """The customer's site, on an origin of its own (localhost, another port): every
    path is a page carrying the tag. Pages under /down/ load the tracker from the shop
    itself, whose /down/v1/events answers 503 as an API in trouble would."""

    def __init__(self, api: str, key: str) -> None:
        self.key = key  # the tag's data-key, read as each page is built
        self.failed_sends = 0
        self.script = urllib.request.urlopen(api + "/v1/tracker.js", timeout=10).read()
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/down/v1/tracker.js"):
                    self._answer(200, "application/javascript", shop.script)
                    return
                path = self.path.split("?")[0]
                api_base = f"{shop.origin}/down" if path.startswith("/down/") else api
                options = ' data-respect-dnt="false"' if path == "/dnt-ignored" else ""
                if path == "/call-us":
                    options = f' data-number="{SITE_NUMBER}"'

                page = (
                    f"<!doctype html><html><head><title>Shop {path}</title>{SPY}{SNIPPET}"
                    f"{EARLY_CALLS.get(path, '')}"
                    f'<script async src="{api_base}/v1/tracker.js" data-key="{shop.key}"{options}>'
                    "</script>"
                    f"</head><body><h1>{path}</h1>{CONTENT.get(path, '')}</body></html>"
                )
                self._answer(200, "text/html", page.encode())

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                shop.failed_sends += 1
                self._answer(503, "application/json", b'{"message": "unavailable"}')

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def served() -> Iterator[ServedStack]:
    stack = ServedStack(ADMIN)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def account(served: ServedStack) -> dict[str, Any]:
    status, account = served.request("POST", "/v1/accounts", ADMIN, {})
    assert status == 201, account
    return dict(account)


@pytest.fixture(scope="module")
def shop(served: ServedStack, account: dict[str, Any]) -> Iterator[Shop]:
    # The tag carries the account's publishable site key, never a write key.
    site = Shop(served.base_url, account["keys"]["site"])
    yield site
    site.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = chromium_options()
    # The console, where the tracker says why the API refused an event.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = start_chromium(options)
    yield driver
    driver.quit()


def _open(browser: webdriver.Chrome, url: str) -> None:
    browser.get(url)
    until("the tracker", lambda: browser.execute_script("return !!goalkeeper.loaded"))


def _waiting(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    """The events the tracker keeps until the API has confirmed them."""
    return list(json.loads(browser.execute_script("return localStorage.gk_q || '[]'")))


def _delivered(browser: webdriver.Chrome) -> None:
    """Every event answered, and none refused."""
    until("the API to answer every event", lambda: _waiting(browser) == [])
    console = [entry["message"] for entry in browser.get_log("browser")]
    assert [line for line in console if "event refused" in line] == []


def _sends(browser: webdriver.Chrome) -> list[str]:
    """Requests this page has made to the events route."""
    return list(browser.execute_script("return requested.filter(u => u.includes('/v1/events'))"))


def _storage(browser: webdriver.Chrome, name: str) -> Any:
    return browser.execute_script(f"return localStorage.getItem('{name}')")


def _goal(served: ServedStack, write: str, name: str, rule: dict[str, Any]) -> str:
    status, goal = served.request("POST", "/v1/goals", write, {"name": name, "rule": rule})
    assert status == 201, goal
    return str(goal["goal_id"])


def _trace(served: ServedStack, read: str, visitor: str) -> list[dict[str, Any]]:
    status, trace = served.request("GET", f"/v1/visitors/{visitor}/trace?limit=500", read)
    assert status == 200, trace
    return list(trace["items"])


def _report(served: ServedStack, read: str, path: str) -> dict[str, Any]:
    status, report = served.request("GET", path, read)
    assert status == 200, report
    return dict(report)


def test_a_visitors_journey_is_tracked_attributed_and_counted(
    served: ServedStack, account: dict[str, Any], shop: Shop, browser: webdriver.Chrome
) -> None:
    write, read = account["keys"]["write"], account["keys"]["read"]
    url = {"kind": "url", "match": "prefix", "pattern": shop.origin + "/thank-you"}
    thank_you = _goal(served, write, "Thank you", url)
    demo = _goal(served, write, "Demo booked", {"kind": "custom_trigger", "name": "demo_booked"})
    sale = _goal(served, write, "Sale", {"kind": "transaction"})

    # Visit 1: a paid click lands, the single-page app moves on, the page books a demo and
    # sells, then the thank-you page.
    _open(browser, shop.origin + "/landing" + CAMPAIGN)
    visitor = _storage(browser, "gk_vid")
    browser.execute_script(
        "history.pushState({}, '', '/products');"
        # The page keeping state in its query: the same page, not a new view.
        "history.replaceState({}, '', '/products?sort=price')"
    )
    browser.execute_script(
        "goalkeeper('trigger', 'demo_booked', {plan: 'pro', seats: 3});"
        "goalkeeper('transaction', {value: '149.00', currency: 'GBP', reference: 'order-1'})"
    )
    _delivered(browser)
    _open(browser, shop.origin + "/thank-you")
    _delivered(browser)
    first_visit = json.loads(_storage(browser, "gk_visit"))["id"]

    # Visit 2, after 30 minutes without an event (the clock of the visit moved back): the
    # thank-you page again, typed in, and a second sale.
    browser.execute_script(
        "var v = JSON.parse(localStorage.gk_visit); v.at -= 31 * 60 * 1000;"
        "localStorage.gk_visit = JSON.stringify(v)"
    )
    _open(browser, shop.origin + "/thank-you")
    browser.execute_script(
        "goalkeeper('transaction', {value: 40, currency: 'GBP', reference: 'order-2'})"
    )
    _delivered(browser)
    second_visit = json.loads(_storage(browser, "gk_visit"))["id"]
    assert second_visit != first_visit

    # The API is down for one page: its page view waits in the browser, and the next page
    # delivers it.
    _open(browser, shop.origin + "/down/offer")
    until("the failed send", lambda: shop.failed_sends >= 1)
    assert [event["url"] for event in _waiting(browser)] == [shop.origin + "/down/offer"]
    _open(browser, shop.origin + "/contact")
    _delivered(browser)

    def decided() -> list[dict[str, Any]]:
        items = _trace(served, read, visitor)
        return items if sum(i["kind"] == "conversion" for i in items) >= 5 else []

    items = until("5 conversions", decided)
    pages = [
        (i["url"].removeprefix(shop.origin), i["visit_id"])
        for i in items
        if i["kind"] == "event" and i["type"] == "page_view"
    ]
    assert pages == [
        ("/landing" + CAMPAIGN, first_visit),
        ("/products", first_visit),
        ("/thank-you", first_visit),
        ("/thank-you", second_visit),
        ("/down/offer", second_visit),
        ("/contact", second_visit),
    ]
    conversions = [
        (i["goal_id"], i["status"], i["attribution"], i["attribution_source"])
        for i in items
        if i["kind"] == "conversion"
    ]
    assert sorted(conversions, key=str) == sorted(
        [
            (demo, "counted", WINTER, "event"),
            (sale, "counted", WINTER, "event"),
            (thank_you, "counted", WINTER, "event"),
            # The second visit carries no campaign: credited from the landing's touch.
            # Once per visitor: its thank-you page is void.
            (thank_you, "void", WINTER, "visitor"),
            (sale, "counted", WINTER, "visitor"),
        ],
        key=str,
    )

    goals = _report(served, read, "/v1/reports/goals")["goals"]
    counts = {g["goal_id"]: (g["counted"], g["void"]) for g in goals}
    assert (counts[thank_you], counts[demo], counts[sale]) == ((1, 1), (1, 0), (2, 0))
    for dimension, label in (("campaign", "winter"), ("keyword", "boots")):
        rows = _report(served, read, f"/v1/reports/attribution?dimension={dimension}")["rows"]
        assert [(row[dimension], row["counted"]) for row in rows] == [(label, 4)]


def test_consent_refused_sends_nothing_until_given(
    served: ServedStack, account: dict[str, Any], shop: Shop, browser: webdriver.Chrome
) -> None:
    browser.get(shop.origin + "/contact")
    browser.execute_script("localStorage.clear()")

    # The page refuses before the tracker has even loaded (a queued call).
    _open(browser, shop.origin + "/private")
    browser.execute_script("goalkeeper('trigger', 'demo_booked', {})")
    assert _sends(browser) == []
    assert (_storage(browser, "gk_vid"), _storage(browser, "gk_off")) == (None, "1")
    # The refusal holds on the next page, which says nothing about consent.
    _open(browser, shop.origin + "/contact")
    browser.execute_script("goalkeeper('identify', 'ct-9')")
    assert _sends(browser) == []
    assert (_storage(browser, "gk_vid"), _storage(browser, "gk_cid")) == (None, None)

    # Given, the page is counted, under a new visitor id.
    browser.execute_script("goalkeeper('consent', true)")
    _delivered(browser)
    assert len(_sends(browser)) == 1
    visitor = _storage(browser, "gk_vid")
    items = _trace(served, account["keys"]["read"], visitor)
    assert [(i["type"], i["url"]) for i in items] == [("page_view", shop.origin + "/contact")]


def test_global_privacy_control_is_honoured_unless_the_tag_says_otherwise(
    shop: Shop, browser: webdriver.Chrome
) -> None:
    browser.get(shop.origin + "/contact")
    browser.execute_script("localStorage.clear()")
    # Chromium sends no privacy signal of its own: this browser's pages say they do.
    signal = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": "Object.defineProperty(navigator, 'globalPrivacyControl', {value: true})"},
    )
    try:
        _open(browser, shop.origin + "/contact")
        assert browser.execute_script("return navigator.globalPrivacyControl") is True
        assert (_sends(browser), _storage(browser, "gk_vid")) == ([], None)
        # A site that has its own consent banner may choose to track anyway.
        _open(browser, shop.origin + "/dnt-ignored")
        _delivered(browser)
        assert len(_sends(browser)) == 1
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", signal)


def _refusals(browser: webdriver.Chrome) -> list[str]:
    """What the tracker logged of the API's refusals since the last look."""
    console = [entry["message"] for entry in browser.get_log("browser")]
    return [line for line in console if "event refused" in line]


def test_a_site_key_serves_its_own_origins_only_and_can_do_nothing_but_send(
    served: ServedStack, account: dict[str, Any], shop: Shop, browser: webdriver.Chrome
) -> None:
    write, read, site = (account["keys"][role] for role in ("write", "read", "site"))
    status, issued = served.request(
        "POST", "/v1/keys", write, {"role": "site", "allowed_origins": [shop.origin]}
    )
    assert status == 201, issued
    elsewhere = Shop(served.base_url, issued["key"])  # another origin, carrying this key
    shop.key = issued["key"]
    try:
        _open(browser, elsewhere.origin + "/contact")
        until("the API's answer", lambda: _waiting(browser) == [])  # refused: not kept
        assert ["(403)" in line for line in _refusals(browser)] == [True]
        status, trace = served.request(
            "GET", f"/v1/visitors/{_storage(browser, 'gk_vid')}/trace", read
        )
        assert status == 404, trace  # nothing stored

        _open(browser, shop.origin + "/contact")
        _delivered(browser)
        items = _trace(served, read, _storage(browser, "gk_vid"))
        assert items[-1]["url"] == shop.origin + "/contact"
    finally:
        shop.key = account["keys"]["site"]
        elsewhere.stop()

    # The key in page source can send events, and nothing else.
    goal_id = _goal(served, write, "Signup", {"kind": "lead"})
    key_id = issued["key_id"]
    for method, path, body in [
        ("GET", "/v1/goals", None),
        ("POST", "/v1/goals", {"name": "x", "rule": {"kind": "lead"}}),
        ("PUT", f"/v1/goals/{goal_id}", {"name": "x", "rule": {"kind": "lead"}}),
        ("DELETE", f"/v1/goals/{goal_id}", None),
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys", {"role": "site"}),
        ("DELETE", f"/v1/keys/{key_id}", None),
        ("PUT", "/v1/account", {"attribution": {"model": "first_touch"}}),
        ("GET", "/v1/reports/goals", None),
    ]:
        status, answer = served.request(method, path, site, body)
        assert status == 403, (method, path, answer)
    status, goal = served.request("GET", f"/v1/goals/{goal_id}", read)
    assert (status, goal["active"]) == (200, True)


def test_a_pool_number_replaces_the_sites_number_in_text_and_links(
    served: ServedStack, account: dict[str, Any], shop: Shop, browser: webdriver.Chrome
) -> None:
    write, read = account["keys"]["write"], account["keys"]["read"]
    body = {"number": POOL_NUMBER, "kind": "pool", "replaces": SITE_NUMBER}
    status, answer = served.request("POST", "/v1/numbers", write, body)
    assert status == 201, answer
    browser.get(shop.origin + "/contact")
    browser.execute_script("localStorage.clear()")
    _open(browser, shop.origin + "/call-us" + CAMPAIGN)

    def shown() -> tuple[str, str, str]:
        return tuple(  # type: ignore[return-value]
            browser.execute_script(
                "return [document.getElementById('text').textContent,"
                " document.getElementById('own').getAttribute('href'),"
                " document.getElementById('other').getAttribute('href')]"
            )
        )

    until("the pool number on the page", lambda: shown()[1] != "tel:" + SITE_NUMBER)
    # Each written as the page wrote it; another number of the page is left alone.
    assert shown() == (
        "Call 020 7946 0001 or +44 (0)20 7946-0001 (not 020 7946 0999)",
        "tel:" + POOL_NUMBER,
        "tel:+442079460999",
    )
    # The visit holds it: a call to it is this visitor's, with the landing's keyword.
    _delivered(browser)
    call = {"type": "call", "call_id": "CA-browser", "tracking_number": POOL_NUMBER}
    status, answer = served.request("POST", "/v1/events", write, call | {"connected": True})
    assert status == 202, answer
    items = _trace(served, read, _storage(browser, "gk_vid"))
    calls = [item for item in items if item.get("type") == "call"]
    assert [(c["matched_by"], c["attribution"]) for c in calls] == [("pool", WINTER)]
