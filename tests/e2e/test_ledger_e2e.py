"""The value ledger over `goalkeeper serve` (issue 20), once per engine: a refund and a
later value of counted conversions show in the reports as net value beside the gross,
and `goalkeeper export google-ads` writes both Google Ads import files."""

import csv
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from goalkeeper.ads_export import ADJUSTMENT_HEADERS, CONVERSION_HEADERS
from goalkeeper_cli import commands
from support.served import ServedStack

SALE = {
    "name": "Online sale",
    "rule": {"kind": "transaction"},
    "value": {"type": "percent_of_transaction", "percent": "100"},
}
RANGE = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.fixture(scope="module")
def served(serve_engine: str) -> Iterator[ServedStack]:
    stack = ServedStack("ledger-admin-key", ["--engine", serve_engine])
    yield stack
    stack.stop()


def _sale(number: int, value: str) -> dict[str, Any]:
    return {
        "event_id": f"sale-{number}",
        "type": "transaction",
        "visitor_id": "ann",
        "occurred_at": f"2026-11-1{number}T09:30:00Z",
        "attribution": {"source": "google", "medium": "cpc", "click_id": f"gclid-{number}"},
        "transaction": {"value": value, "currency": "USD", "reference": f"order-{number}"},
    }


def _counted(served: ServedStack, read: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while True:
        status, trace = served.request("GET", "/v1/visitors/ann/trace", read)
        found = (
            [i for i in trace.get("items", []) if i["kind"] == "conversion"]
            if status == 200
            else []
        )
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, trace
            return found
        time.sleep(0.2)


@pytest.mark.server
def test_a_refund_and_a_later_value_reach_the_reports_and_the_google_ads_files(
    served: ServedStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account = served.request("POST", "/v1/accounts", served.admin_key, {})[1]
    write, read = account["keys"]["write"], account["keys"]["read"]
    assert served.request("POST", "/v1/goals", write, SALE)[0] == 201
    events = {"events": [_sale(1, "120.00"), _sale(2, "80.00")]}
    assert served.request("POST", "/v1/events", write, events)[0] == 202
    first, second = sorted(_counted(served, read, 2), key=lambda c: c["event_id"])

    refund = {"adjustment_id": "refund-1", "type": "retract", "reason": "returned"}
    path = f"/v1/conversions/{first['conversion_id']}/adjustments"
    assert served.request("POST", path, write, refund)[0] == 201
    assert served.request("POST", path, write, refund)[0] == 200  # redelivered: the same
    later = {"adjustment_id": "won-2", "type": "restate", "value": "4000", "reason": "upsold"}
    path = f"/v1/conversions/{second['conversion_id']}/adjustments"
    assert served.request("POST", path, write, later)[0] == 201

    query = "&".join(f"{name}={value}" for name, value in RANGE.items())
    status, report = served.request("GET", f"/v1/reports/goals?{query}", read)
    assert status == 200, report
    row = next(r for r in report["goals"] if r["name"] == "Online sale")
    assert (row["counted"], row["retracted"]) == (2, 1)
    assert (row["value"], row["gross_value"]) == ({"USD": "4000.00"}, {"USD": "200.00"})

    api = ["--api", f"{served.base_url}/v1", "--key", read, "--out-dir", str(tmp_path)]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    dates = ["--from", RANGE["from"], "--to", RANGE["to"]]
    assert commands.main(["export", "google-ads", "--kind", "conversions", *dates, *api]) == 0
    conversions = list(csv.reader((tmp_path / "google-ads-conversions.csv").open()))
    assert conversions[0] == ["Parameters:TimeZone=UTC"]
    assert conversions[1] == list(CONVERSION_HEADERS)
    assert conversions[2:] == [
        ["gclid-1", "Online sale", "2026-11-11 09:30:00+0000", "120.00", "USD"],
        ["gclid-2", "Online sale", "2026-11-12 09:30:00+0000", "80.00", "USD"],
    ]
    # Adjustments are listed by the day they were made: today.
    assert (
        commands.main(["export", "google-ads", "--kind", "adjustments", "--from", today, *api]) == 0
    )
    adjustments = list(csv.reader((tmp_path / "google-ads-adjustments.csv").open()))
    assert adjustments[1] == list(ADJUSTMENT_HEADERS)
    assert sorted((r[0], r[4], r[5], r[6]) for r in adjustments[2:]) == [
        ("gclid-1", "RETRACT", "", ""),
        ("gclid-2", "RESTATE", "4000.00", "USD"),
    ]
    assert "2 conversions" in capsys.readouterr().out
