"""The site tracker as GET /v1/tracker.js serves it: what the handler answers, how
the served script is made from the source, its size budget, and that it reads a
landing's URL as the server does."""

import gzip
import re
from collections.abc import Callable
from typing import Any

import pytest

from goalkeeper import traffic_sources
from goalkeeper.tracker import CACHE_CONTROL, compact, served_script, source
from goalkeeper_cli.local_stack.functions import load_instance
from goalkeeper_cli.local_stack.template import REPO_ROOT

# Plausible's tracker is under 1 KB gzipped, GA4's gtag.js over 100 KB: ours does more than
# the first and stays a small fraction of the second.
GZIPPED_BUDGET = 4096


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture(scope="module")
def handler() -> Handler:
    loaded: Handler = load_instance(REPO_ROOT / "functions" / "tracker", "app.handler")
    return loaded


def _get(handler: Handler, headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = {"httpMethod": "GET", "path": "/v1/tracker.js", "headers": headers or {}}
    return handler(event, None)


def test_the_script_is_served_as_javascript_cached_a_day_with_its_digest(handler: Handler) -> None:
    answer = _get(handler)
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "application/javascript; charset=utf-8"
    assert answer["headers"]["Cache-Control"] == CACHE_CONTROL == "public, max-age=86400"
    assert answer["headers"]["ETag"] == served_script().etag
    assert answer["body"] == served_script().body
    assert answer["body"].startswith("/*! Goalkeeper tracker ")


def test_a_browser_holding_this_version_gets_304_without_a_body(handler: Handler) -> None:
    etag = served_script().etag
    answer = _get(handler, {"If-None-Match": etag})
    assert (answer["statusCode"], answer["body"], answer["headers"]["ETag"]) == (304, "", etag)
    assert _get(handler, {"if-none-match": '"an-older-version"'})["statusCode"] == 200


def test_the_source_keeps_to_what_compacting_it_relies_on() -> None:
    """compact() drops whole lines starting with //: safe only without multi-line strings
    (template literals, backslash continuations) and without block comments."""
    banner, *code = compact(source()).splitlines()
    assert re.fullmatch(r"/\*! Goalkeeper tracker \d+\.\d+\.\d+ \*/", banner)
    assert not any("`" in line or "/*" in line or line.endswith("\\") for line in code)


def test_compacting_drops_comment_lines_blank_lines_and_indentation_only() -> None:
    text = '/*! banner */\n// why\n(function () {\n  // more\n\n  var a = "//x"; // kept\n})();\n'
    assert compact(text) == '/*! banner */\n(function () {\nvar a = "//x"; // kept\n})();\n'
    served = served_script().body
    assert [line.strip() for line in served.splitlines()] == served.splitlines()


def test_the_script_fits_its_size_budget_and_the_readme_says_its_size() -> None:
    raw = len(source().encode())
    served = served_script().body.encode()
    zipped = len(gzip.compress(served, 9))
    assert zipped < GZIPPED_BUDGET
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    stated = re.search(
        r"tracker\.js` is ([\d.]+) KB as written, ([\d.]+) KB served, ([\d.]+) KB gzipped", readme
    )
    assert stated, "README: state the tracker's sizes"
    assert [float(size) for size in stated.groups()] == [
        round(size / 1024, 1) for size in (raw, len(served), zipped)
    ], "README: update the tracker's sizes"


def test_the_tracker_reads_a_landing_url_as_the_server_does() -> None:
    text = source()
    campaign = dict(re.findall(r'(\w+): "(\w+)"', re.search(r"var CAMPAIGN = \{(.*)\}", text)[1]))
    assert campaign == traffic_sources.CAMPAIGN_PARAMETERS
    listed = re.findall(r'\["(\w+)"(?:, "(\w+)")?\]', re.search(r"var CLICK_IDS = (.*);", text)[1])
    implied = {name: (source, "cpc") if source else None for name, source in listed}
    assert list(implied) == list(traffic_sources.CLICK_IDS)
    assert implied == traffic_sources.CLICK_IDS
