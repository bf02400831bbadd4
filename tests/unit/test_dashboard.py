"""The dashboard's files as GET / and GET /dashboard/{file} serve them: the page's policy
(its own origin only, no inline script), only the dashboard's own files, what its code
may not do with API text and keys, and its size as the README states it."""

import gzip
import re
from collections.abc import Callable
from typing import Any

import pytest

from goalkeeper import dashboard
from goalkeeper_cli.local_stack.functions import load_instance
from goalkeeper_cli.local_stack.template import REPO_ROOT

# Every view, its chart and styles: a first load that stays quick on a phone (API Gateway
# gzips answers of 1 KB or more).
GZIPPED_BUDGET = 32 * 1024

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture(scope="module")
def handler() -> Handler:
    loaded: Handler = load_instance(REPO_ROOT / "functions" / "tracker", "app.handler")
    return loaded


def _get(handler: Handler, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    if path == "/":
        event = {"resource": "/", "path": "/", "headers": headers or {}}
    else:
        name = path.removeprefix("/dashboard/")
        event = {
            "resource": "/dashboard/{file}",
            "path": path,
            "pathParameters": {"file": name},
            "headers": headers or {},
        }
    return handler(event, None)


def test_the_page_is_served_at_the_root_under_a_policy_of_its_own_origin(handler: Handler) -> None:
    answer = _get(handler, "/")
    assert answer["statusCode"] == 200
    headers = answer["headers"]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    policy = dict(
        part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == policy["connect-src"] == policy["style-src"] == "'self'"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert answer["body"] == dashboard.source("index.html")


def test_the_stage_root_without_its_slash_is_sent_to_the_page(handler: Handler) -> None:
    """Deployed, `…/prod` reaches `/` too; relative links need `…/prod/`."""
    bare = {"resource": "/", "path": "/", "requestContext": {"path": "/prod"}}
    assert handler(bare, None)["statusCode"] == 301
    assert handler(bare, None)["headers"]["Location"] == "/prod/"
    page = {"resource": "/", "path": "/", "requestContext": {"path": "/prod/"}}
    assert handler(page, None)["statusCode"] == 200


def test_each_file_is_served_with_its_type_and_a_304_when_unchanged(handler: Handler) -> None:
    types = {"js": "text/javascript", "css": "text/css", "html": "text/html"}
    for name in dashboard.file_names():
        answer = _get(handler, f"/dashboard/{name}")
        assert answer["statusCode"] == 200, name
        assert answer["headers"]["Content-Type"].startswith(types[name.rsplit(".", 1)[1]])
        again = _get(handler, f"/dashboard/{name}", {"If-None-Match": answer["headers"]["ETag"]})
        assert (again["statusCode"], again["body"]) == (304, "")


@pytest.mark.parametrize("name", ["../tracker.js", "..%2ftracker.js", "tracker.js", "nope.js", ""])
def test_nothing_but_the_dashboards_files_is_served(handler: Handler, name: str) -> None:
    answer = _get(handler, f"/dashboard/{name}")
    assert answer["statusCode"] == 404
    assert '"not_found"' in answer["body"]


def _scripts() -> dict[str, str]:
    return {n: dashboard.source(n) for n in dashboard.file_names() if n.endswith(".js")}


def test_the_page_has_no_inline_script_or_style_and_its_references_exist() -> None:
    page = dashboard.source("index.html")
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert not re.search(r"\s(on\w+|style)=", page)
    referenced = re.findall(r'(?:src|href)="dashboard/([^"]+)"', page)
    assert set(referenced) == {"app.js", "style.css"}
    served = set(dashboard.file_names())
    for name, code in _scripts().items():
        imported = set(re.findall(r'from "\./([^"]+)"', code))
        assert imported <= served, (name, imported - served)


def test_the_code_never_parses_api_text_as_html_nor_keeps_keys_beyond_the_tab() -> None:
    for name, code in _scripts().items():
        for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert risky not in code, (name, risky)
        assert "localStorage" not in code, name
        assert "console." not in code, name  # nothing, and so no key, goes to the console
    # Keys travel in the header only: the one place that sends them.
    assert [n for n, code in _scripts().items() if "x-api-key" in code] == ["api.js"]


def test_the_dashboard_fits_its_budget_and_the_readme_says_its_size() -> None:
    bodies = [dashboard.source(name).encode() for name in dashboard.file_names()]
    raw = sum(len(body) for body in bodies)
    zipped = sum(len(gzip.compress(body, 9)) for body in bodies)
    assert zipped < GZIPPED_BUDGET
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    stated = re.search(
        r"The dashboard is (\d+) files, ([\d.]+) KB as written, ([\d.]+) KB gzipped", readme
    )
    assert stated, "README: state the dashboard's size"
    assert [float(size) for size in stated.groups()] == [
        len(bodies),
        round(raw / 1024, 1),
        round(zipped / 1024, 1),
    ], "README: update the dashboard's size"


def test_the_readme_shows_the_overview_in_a_small_screenshot() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    (shown,) = re.findall(r"!\[[^\]]*\]\((docs/dashboard-[\w-]+\.png)\)", readme)
    image = (REPO_ROOT / shown).read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(image) < 200 * 1024
