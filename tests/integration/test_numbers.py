"""Call tracking (issue 17 part A) on the in-process stack: tracking numbers and their
validation, dynamic number insertion (the same number for the same visit, least
recently used first, the site's own number once the pool is exhausted), calls
resolved by the number they dialled, and the pool report by hand-computed numbers."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.stack import InProcessStack

OWN = "+442079460000"  # the site's own number, shown on its pages
POOL = ["+442079460001", "+442079460002"]
STATIC = "+442079460009"
BILLBOARD = {"source": "billboard", "campaign": "M25"}
SEARCH = {"source": "google", "medium": "cpc", "keyword": "emergency plumber", "click_id": "g-1"}


@pytest.fixture
def account(stack: InProcessStack) -> dict[str, str]:
    keys: dict[str, str] = stack.new_account(name="Plumbers")["keys"]
    return keys


@pytest.fixture
def short_holds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Holds of one second, so a test sees them run out."""
    from goalkeeper.settings import get_settings

    monkeypatch.setenv("GOALKEEPER_NUMBER_HOLD_SECONDS", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def register(stack: InProcessStack, write: str, body: dict[str, Any]) -> tuple[int, Any]:
    return stack.api.request("POST", "/v1/numbers", write, body)


def pool(stack: InProcessStack, write: str, numbers: list[str] = POOL) -> None:
    for number in numbers:
        body = {"number": number, "kind": "pool", "pool": "Website", "replaces": OWN}
        status, answer = register(stack, write, body)
        assert status == 201, answer


def assign(stack: InProcessStack, site: str, visit: str, **more: Any) -> dict[str, Any]:
    body = {"visitor_id": f"visitor-{visit}", "visit_id": visit, "replaces": OWN} | more
    status, answer = stack.api.request("POST", "/v1/numbers/assign", site, body)
    assert status == 200, answer
    return dict(answer)


def call(number: str, at: datetime, call_id: str, seconds: int = 90) -> dict[str, Any]:
    return {
        "event_id": f"call-{call_id}",
        "type": "call",
        "call_id": call_id,
        "caller_number": "+447700900123",
        "tracking_number": number,
        "connected": True,
        "bridged_seconds": seconds,
        "occurred_at": at.isoformat(),
    }


def stored_call(stack: InProcessStack, event_id: str) -> dict[str, Any]:
    (item,) = [i for i in stack.items() if i.get("kind") == "event" and i["event_id"] == event_id]
    body: dict[str, Any] = item["body"]
    return body


# --- numbers ------------------------------------------------------------------------------


def test_static_and_pool_numbers_are_registered_listed_and_deleted(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write, read = account["write"], account["read"]
    status, static = register(
        stack,
        write,
        {"number": "+44 (0)20 7946 0009", "kind": "static", "attribution": BILLBOARD},
    )
    assert (status, static["number"], static["attribution"]) == (201, STATIC, BILLBOARD)
    pool(stack, write)
    status, listed = stack.api.request("GET", "/v1/numbers", read)
    assert status == 200
    assert [
        (n["number"], n["kind"], n.get("replaces"), n.get("pool")) for n in listed["numbers"]
    ] == [
        (POOL[0], "pool", OWN, "Website"),
        (POOL[1], "pool", OWN, "Website"),
        (STATIC, "static", None, None),
    ]
    status, answer = stack.api.request("DELETE", f"/v1/numbers/{STATIC}", write)
    assert (status, answer) == (200, {"number": STATIC, "status": "deleted"})
    assert [
        n["number"] for n in stack.api.request("GET", "/v1/numbers", read)[1]["numbers"]
    ] == POOL
    assert stack.api.request("DELETE", f"/v1/numbers/{STATIC}", write)[0] == 404
    assert stack.api.request("DELETE", "/v1/numbers/+449999", write)[0] == 404


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({"number": "0207 946 0001", "kind": "static", "attribution": BILLBOARD}, {"number"}),
        ({"number": POOL[0], "kind": "static"}, {"attribution"}),
        ({"number": POOL[0], "kind": "static", "attribution": {}}, {"attribution"}),
        (
            {"number": POOL[0], "kind": "static", "attribution": BILLBOARD, "replaces": OWN},
            {"replaces"},
        ),
        ({"number": POOL[0], "kind": "pool"}, {"replaces"}),
        ({"number": POOL[0], "kind": "pool", "replaces": POOL[0]}, {"replaces"}),
        (
            {"number": POOL[0], "kind": "pool", "replaces": OWN, "attribution": BILLBOARD},
            {"attribution"},
        ),
        ({"number": POOL[0], "kind": "dynamic", "replaces": OWN}, {"kind"}),
    ],
)
def test_a_bad_number_is_400_naming_the_field_and_stores_nothing(
    stack: InProcessStack, account: dict[str, str], body: dict[str, Any], problems: set[str]
) -> None:
    before = stack.items()
    status, answer = register(stack, account["write"], body)
    assert status == 400, answer
    assert {p["field"] for p in answer["error"]["fields"]} == problems
    assert stack.items() == before


def test_a_number_belongs_to_one_account_and_one_kind(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write = account["write"]
    pool(stack, write, POOL[:1])
    other = stack.new_account(name="Rivals")["keys"]["write"]
    static = {"number": POOL[0], "kind": "static", "attribution": BILLBOARD}
    status, answer = register(stack, other, static)
    assert (status, answer["error"]["fields"]) == (
        409,
        [
            {"field": "number", "reason": "is registered by another account"},
        ],
    )
    # The same account: a pool number cannot also be static (nor registered twice).
    status, answer = register(stack, write, static)
    assert (status, answer["error"]["fields"][0]["field"]) == (409, "number")
    # A pool keeps one name.
    renamed = {"number": POOL[1], "kind": "pool", "pool": "Other", "replaces": OWN}
    status, answer = register(stack, write, renamed)
    assert (status, answer["error"]["fields"][0]["field"]) == (409, "pool")
    # Deleted, the number is free for another account.
    assert stack.api.request("DELETE", f"/v1/numbers/{POOL[0]}", write)[0] == 200
    assert register(stack, other, static)[0] == 201


# --- dynamic number insertion --------------------------------------------------------------


def test_a_visit_keeps_its_number_while_it_holds_it(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    pool(stack, account["write"])
    first = assign(stack, account["site"], "s-1")
    again = assign(stack, account["site"], "s-1")
    other = assign(stack, account["site"], "s-2")
    assert first["pooled"] and again["pooled"] and other["pooled"]
    assert again["number"] == first["number"] != other["number"]
    assert again["held_until"] >= first["held_until"]  # renewed
    held = datetime.fromisoformat(first["held_until"]) - datetime.now(UTC)
    assert timedelta(minutes=14) < held <= timedelta(minutes=15)  # the default hold
    # Its history (one hold, renewed) is kept as long as events are (400 days by default).
    (hold,) = [i for i in stack.items() if i.get("kind") == "hold" and i["visit_id"] == "s-1"]
    kept = datetime.fromtimestamp(int(hold["expires_at"]), UTC) - datetime.now(UTC)
    assert (hold["until"][:19], timedelta(days=400) < kept <= timedelta(days=401)) == (
        again["held_until"][:19],
        True,
    )


def test_an_exhausted_pool_answers_the_sites_own_number(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    pool(stack, account["write"])
    given = {assign(stack, account["site"], f"s-{n}")["number"] for n in range(2)}
    assert given == set(POOL)
    assert assign(stack, account["site"], "s-3") == {
        "number": OWN,
        "held_until": None,
        "pooled": False,
    }


def test_expired_holds_free_their_numbers_least_recently_used_first(
    stack: InProcessStack, account: dict[str, str], short_holds: None
) -> None:
    pool(stack, account["write"])
    first = assign(stack, account["site"], "s-1")["number"]  # released first
    second = assign(stack, account["site"], "s-2")["number"]
    assert [first, second] == POOL  # never used: the one registered first
    time.sleep(1.2)
    assert assign(stack, account["site"], "s-3")["number"] == first
    assert assign(stack, account["site"], "s-4")["number"] == second


def test_a_pool_is_asked_for_by_the_number_it_replaces(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    pool(stack, account["write"])
    body = {"visitor_id": "v", "visit_id": "s", "replaces": "+442079469999"}
    status, answer = stack.api.request("POST", "/v1/numbers/assign", account["site"], body)
    assert (status, answer["error"]["fields"][0]["field"]) == (404, "replaces")
    status, answer = stack.api.request(
        "POST", "/v1/numbers/assign", account["site"], {"visit_id": "s", "replaces": OWN}
    )
    assert (status, answer["error"]["fields"][0]["field"]) == (400, "visitor_id")


def test_a_deleted_pool_number_is_no_longer_given_out_nor_renewed(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    pool(stack, account["write"])
    assert assign(stack, account["site"], "s-1")["number"] == POOL[0]
    assert stack.api.request("DELETE", f"/v1/numbers/{POOL[0]}", account["write"])[0] == 200
    assert assign(stack, account["site"], "s-1")["number"] == POOL[1]  # moved on
    assert assign(stack, account["site"], "s-2") == {
        "number": OWN,
        "held_until": None,
        "pooled": False,
    }


# --- calls resolved by the number they dialled ----------------------------------------------


def _converted_by_keyword(stack: InProcessStack, read: str) -> list[tuple[str, int, list[str]]]:
    """(keyword, conversions, names of the goals converted) per keyword, today."""
    names = {
        g["goal_id"]: g["name"] for g in stack.api.request("GET", "/v1/goals", read)[1]["goals"]
    }
    today = datetime.now(UTC).date()
    query = {
        "from": str(today - timedelta(days=1)),
        "to": str(today + timedelta(days=1)),
        "dimension": "keyword",
        "group": "converting",
    }
    status, report = stack.api.request("GET", "/v1/reports/attribution", read, query=query)
    assert status == 200, report
    return [
        (row["keyword"], row["counted"], [names[goal_id] for goal_id in row["goals"]])
        for row in report["rows"]
    ]


def test_a_call_to_a_pool_number_is_the_visit_that_held_it_with_its_keyword(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write, read = account["write"], account["read"]
    pool(stack, write)
    held = assign(stack, account["site"], "s-1", attribution=SEARCH)
    started = datetime.now(UTC) + timedelta(seconds=60)
    # The caller dials a minute later: the call's own start time is what is matched.
    stack.send(write, [call(held["number"], started, "CA-1")])
    stack.evaluate_pending()
    body = stored_call(stack, "call-CA-1")
    assert (body["visitor_id"], body["visit_id"], body["matched_by"]) == (
        "visitor-s-1",
        "s-1",
        "pool",
    )
    assert body["attribution"] == SEARCH
    assert _converted_by_keyword(stack, read) == [("emergency plumber", 1, ["Call Qualified"])]
    status, trace = stack.api.request("GET", "/v1/visitors/visitor-s-1/trace", read)
    assert status == 200
    assert [i.get("matched_by") for i in trace["items"] if i["kind"] == "event"] == ["pool"]


def test_a_call_keeps_what_it_carried_and_resolves_the_same_when_sent_again(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write = account["write"]
    pool(stack, write)
    held = assign(stack, account["site"], "s-1", attribution=SEARCH)
    sent = call(held["number"], datetime.now(UTC), "CA-2") | {"visitor_id": "crm-7"}
    first = stack.api.request("POST", "/v1/events", write, sent)[1]
    again = stack.api.request("POST", "/v1/events", write, sent)[1]
    assert (first["accepted"], again["duplicates"]) == (["call-CA-2"], ["call-CA-2"])
    body = stored_call(stack, "call-CA-2")
    assert (body["visitor_id"], body["visit_id"], body["matched_by"]) == ("crm-7", "s-1", "pool")


def test_a_number_given_to_the_next_visit_keeps_the_earlier_hold_for_earlier_calls(
    stack: InProcessStack, account: dict[str, str], short_holds: None
) -> None:
    """Holds are history: a call reported after its number went to another visit still
    finds the visit that held it when the call started."""
    write, site = account["write"], account["site"]
    pool(stack, write, POOL[:1])
    first = assign(stack, site, "s-1", attribution=SEARCH)
    time.sleep(1.2)
    second = assign(stack, site, "s-2")
    assert first["number"] == second["number"] == POOL[0]
    during_first = datetime.fromisoformat(first["held_until"]) - timedelta(milliseconds=500)
    during_second = datetime.fromisoformat(second["held_until"]) - timedelta(milliseconds=500)
    stack.send(
        write, [call(POOL[0], during_second, "later"), call(POOL[0], during_first, "earlier")]
    )
    earlier, later = stored_call(stack, "call-earlier"), stored_call(stack, "call-later")
    assert (earlier["visit_id"], earlier["attribution"]) == ("s-1", SEARCH)
    assert (later["visit_id"], later.get("attribution")) == ("s-2", None)


def test_calls_made_before_a_number_was_deleted_still_resolve_by_it(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write = account["write"]
    static = {"number": STATIC, "kind": "static", "attribution": BILLBOARD}
    assert register(stack, write, static)[0] == 201
    pool(stack, write, POOL[:1])
    held = assign(stack, account["site"], "s-1")
    before = datetime.now(UTC)
    for number in (STATIC, POOL[0]):
        assert stack.api.request("DELETE", f"/v1/numbers/{number}", write)[0] == 200
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert after < datetime.fromisoformat(held["held_until"])  # the hold itself runs on
    stack.send(
        write,
        [
            call(STATIC, before, "static-before"),
            call(STATIC, after, "static-after"),
            call(POOL[0], before, "pool-before"),
            call(POOL[0], after, "pool-after"),
        ],
    )
    assert [
        stored_call(stack, f"call-{name}")["matched_by"]
        for name in ("static-before", "static-after", "pool-before", "pool-after")
    ] == ["static", "none", "pool", "none"]


def test_how_a_call_matched_is_goalkeepers_to_say(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    sent = call(STATIC, datetime.now(UTC), "CA-9") | {"matched_by": "pool"}
    status, answer = stack.api.request("POST", "/v1/events", account["write"], sent)
    assert status == 400, answer
    assert answer["error"]["fields"] == [
        {"field": "events[0].matched_by", "reason": "unknown field"}
    ]


def test_a_call_to_a_static_number_carries_its_campaign(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write = account["write"]
    assert (
        register(stack, write, {"number": STATIC, "kind": "static", "attribution": BILLBOARD})[0]
        == 201
    )
    stack.send(write, [call(STATIC, datetime.now(UTC), "CA-3")])
    stack.evaluate_pending()
    body = stored_call(stack, "call-CA-3")
    assert (body["attribution"], body["matched_by"]) == (BILLBOARD, "static")
    assert "visitor_id" not in body
    conversion = next(i for i in stack.items() if i.get("kind") == "conversion")
    assert (conversion["attribution"], conversion["attribution_source"]) == (BILLBOARD, "event")


def test_calls_outside_every_hold_or_to_unknown_numbers_match_nothing(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write = account["write"]
    pool(stack, write)
    held = assign(stack, account["site"], "s-1")
    before_hold = datetime.now(UTC) - timedelta(hours=1)
    after_hold = datetime.fromisoformat(held["held_until"]) + timedelta(seconds=1)
    stack.send(
        write,
        [
            call(held["number"], before_hold, "early"),
            call(held["number"], after_hold, "late"),
            call(POOL[1] if held["number"] == POOL[0] else POOL[0], datetime.now(UTC), "idle"),
            call("+442079461234", datetime.now(UTC), "unknown"),
        ],
    )
    for event_id in ("early", "late", "idle", "unknown"):
        body = stored_call(stack, f"call-{event_id}")
        assert (body["matched_by"], body.get("visitor_id")) == ("none", None), event_id


# --- the pool report ---------------------------------------------------------------------


def test_the_pool_report_counts_holds_exhaustion_and_calls_and_advises_a_size(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write, read, site = account["write"], account["read"], account["site"]
    pool(stack, write)
    held = [assign(stack, site, f"s-{n}") for n in range(2)]
    assign(stack, site, "s-0")  # a renewal: no new assignment
    for n in range(2, 5):
        assert not assign(stack, site, f"s-{n}")["pooled"]  # three found it exhausted
    now = datetime.now(UTC)
    calls = [
        call(held[0]["number"], now, "m-1"),
        call(held[1]["number"], now, "m-2"),
        call(held[1]["number"], now - timedelta(hours=2), "u-1"),
        call(STATIC, now, "not-a-pool"),
    ]
    stack.send(write, calls)
    stack.send(write, calls[:1])  # sent again: counted once
    status, report = stack.api.request("GET", "/v1/reports/numbers", read)
    assert status == 200, report
    today = now.date()
    assert (report["from"], report["to"]) == (str(today - timedelta(days=6)), str(today))
    assert report["pools"] == [
        {
            "pool": "Website",
            "replaces": OWN,
            "numbers": POOL,
            "peak_holds": 2,
            "assignments": 2,
            "exhausted_assignments": 3,
            "calls_matched": 2,
            "calls_unmatched": 1,
            # 2 numbers served 2 visits, 3 more found none: 2 * 3 / 2 = 3 more numbers.
            "advice": {
                "add_numbers": 3,
                "text": "add 3 numbers: 60% of visits saw your own number in this period",
            },
        }
    ]
