"""Goal dry-runs (POST /v1/goals/dry-run): what a goal would have done over stored
events, judged as a backfill of it would be, with nothing written."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_goal_library import RULE_CASES
from test_input_limits import GOAL_REJECTIONS

from goalkeeper import keys
from goalkeeper.dal import Dal
from goalkeeper.services import dry_run
from support.stack import TABLE, InProcessStack

RANGE = {"from": "2026-10-01", "to": "2026-10-31"}

LEAD = {"name": "Lead", "rule": {"kind": "lead"}, "dedup": {"keys": ["visitor"], "window_days": 30}}
SIGNUP = {
    "name": "Signup",
    "rule": {"kind": "custom_trigger", "name": "signup"},
    # The layout the library's lead goal checks: leads counted before void sign-ups.
    "dedup": {"keys": ["visitor"], "window_days": 30},
}
TWO_PAGES = {
    "name": "Two pages",
    "rule": {"kind": "page_views", "min_pages": 2},
    "dedup": {"keys": ["visitor", "goal"]},
}
VIP_GOLD = {"name": "VIP gold", "rule": {"kind": "tags", "tags": ["vip", "gold"], "match": "all"}}


def _signup(event_id: str, at: str, visitor: str | None = "v-3", name: str = "signup") -> dict:
    event = {"event_id": event_id, "type": "custom_trigger", "name": name, "occurred_at": at}
    return event | ({"visitor_id": visitor} if visitor else {})


def _page(event_id: str, at: str, visit: str, visitor: str = "v-1") -> dict:
    return {
        "event_id": event_id,
        "type": "page_view",
        "url": f"https://x.example/{event_id}",
        "visitor_id": visitor,
        "visit_id": visit,
        "occurred_at": at,
    }


def _tag(event_id: str, at: str, contact: str, added=(), removed=(), visitor="v-1") -> dict:
    return {
        "event_id": event_id,
        "type": "tag",
        "contact_id": contact,
        "visitor_id": visitor,
        "added": list(added),
        "removed": list(removed),
        "occurred_at": at,
    }


# In time order. Each visitor's earlier conversions of the library's goal come before
# the candidate's matches, so a backfill's order and live order decide alike.
HISTORY = [
    {
        "event_id": "lead-1",
        "type": "lead",
        "lead_id": "l-1",
        "visitor_id": "v-1",
        "occurred_at": "2026-09-29T10:00Z",
    },
    _tag("tag-1", "2026-09-30T09:00Z", "ct-1", added=["vip"]),  # before the range
    _signup("s-1", "2026-10-01T08:00Z", visitor="v-1"),  # within 30 days after the lead: void
    _signup("s-2", "2026-10-01T09:00Z"),  # counts
    _page("p-1", "2026-10-01T09:30Z", "visit-1"),
    _page("p-2", "2026-10-01T09:31Z", "visit-1"),  # the visit's second page
    _page("p-3", "2026-10-01T09:32Z", "visit-1"),
    _signup("s-3", "2026-10-02T09:00Z"),  # a day after s-2: void
    _signup("anon-1", "2026-10-02T10:00Z", visitor=None),  # no visitor: never a duplicate
    _signup("anon-2", "2026-10-02T11:00Z", visitor=None),
    _signup("other-1", "2026-10-03T11:00Z", name="newsletter"),  # not the trigger
    _tag("tag-2", "2026-10-05T09:00Z", "ct-1", added=["gold"]),  # now holds both
    _tag("tag-3", "2026-10-06T09:00Z", "ct-1", removed=["vip"]),
    _page("p-4", "2026-10-07T09:00Z", "visit-2", visitor="v-2"),  # one page only
    _tag("tag-4", "2026-10-07T09:30Z", "ct-1", added=["vip"]),  # holds both again
    _tag("tag-5", "2026-10-08T09:00Z", "ct-2", added=["vip", "gold"], visitor="v-2"),
    _page("p-5", "2026-10-09T09:00Z", "visit-3"),
    _page("p-6", "2026-10-09T09:05Z", "visit-3"),  # v-1's second visit of two pages
    _signup("s-4", "2026-10-20T09:00Z"),  # 19 days after s-2: void (and claims nothing)
    _signup("s-5", "2026-10-31T09:01Z"),  # 30 days and a minute after s-2: counts
    _signup("late-1", "2026-11-01T00:00Z"),  # after the range
]


def _account(stack: InProcessStack, goals: list[dict], history: list[dict]) -> dict[str, Any]:
    account = stack.new_account()
    write = account["keys"]["write"]
    account["goal_ids"] = []
    for goal in goals:
        status, created = stack.api.request("POST", "/v1/goals", write, goal)
        assert status == 201, created
        account["goal_ids"].append(created["goal_id"])
    for event in history:  # one at a time, so each is decided in the order sent
        status, answer = stack.api.request("POST", "/v1/events", write, event)
        assert status == 202, answer
        stack.evaluate_pending()
    return account


def _dry_run(stack: InProcessStack, key: str, goal: dict, **range_: str) -> tuple[int, Any]:
    return stack.api.request("POST", "/v1/goals/dry-run", key, {"goal": goal} | (range_ or RANGE))


def _decided(stack: InProcessStack, goal_id: str) -> dict[str, str]:
    return {
        item["event_id"]: item["status"]
        for item in stack.items()
        if item.get("kind") == "conversion" and item["goal_id"] == goal_id
    }


def _judged(answer: dict[str, Any]) -> dict[str, str]:
    statuses = {"would_count": "counted", "would_void": "void"}
    return {row["event_id"]: statuses[row["status"]] for row in answer["sample"]}


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (
            SIGNUP,
            {
                "s-1": "void",
                "s-2": "counted",
                "s-3": "void",
                "anon-1": "counted",
                "anon-2": "counted",
                "s-4": "void",
                "s-5": "counted",
            },
        ),
        (TWO_PAGES, {"p-2": "counted", "p-6": "void"}),
        (VIP_GOLD, {"tag-2": "counted", "tag-4": "void", "tag-5": "counted"}),
    ],
    ids=["custom_trigger", "page_views", "tags"],
)
def test_a_dry_run_decides_as_the_goal_would_have_decided_live(
    stack: InProcessStack, candidate: dict, expected: dict[str, str]
) -> None:
    tried = _account(stack, [LEAD], HISTORY)
    live = _account(stack, [LEAD, candidate], HISTORY)

    status, answer = _dry_run(stack, tried["keys"]["read"], candidate)

    assert status == 200, answer
    in_range = [e for e in HISTORY if RANGE["from"] <= e["occurred_at"][:10] <= RANGE["to"]]
    assert (answer["examined"], answer["truncated"]) == (len(in_range), False)
    live_decisions = {
        event_id: status
        for event_id, status in _decided(stack, live["goal_ids"][1]).items()
        if event_id in {event["event_id"] for event in in_range}
    }
    assert live_decisions == expected  # the history means what the comments say
    assert _judged(answer) == live_decisions
    counted = sum(status == "counted" for status in live_decisions.values())
    assert (answer["matched"], answer["would_count"], answer["would_void"]) == (
        len(live_decisions),
        counted,
        len(live_decisions) - counted,
    )


@pytest.mark.parametrize("kind", sorted(RULE_CASES))
def test_every_rule_kind_matches_in_a_dry_run_what_it_matches_live(
    stack: InProcessStack, kind: str
) -> None:
    rule, before, matching, other = RULE_CASES[kind]
    at = datetime(2026, 10, 10, 12, tzinfo=UTC)
    history = [
        {
            "event_id": f"e-{n}",
            "visitor_id": "v-1",
            "occurred_at": (at + timedelta(minutes=n)).isoformat(),
        }
        | event
        for n, event in enumerate([*before, matching, other])
    ]
    goal = {"name": kind, "rule": rule}
    tried = _account(stack, [], history)
    live = _account(stack, [goal], history)

    status, answer = _dry_run(stack, tried["keys"]["write"], goal)

    assert status == 200, answer
    assert (
        _judged(answer) == _decided(stack, live["goal_ids"][0]) == {f"e-{len(before)}": "counted"}
    )


def test_a_void_match_names_the_conversion_it_would_duplicate(stack: InProcessStack) -> None:
    account = _account(stack, [LEAD], HISTORY)
    (lead_conversion,) = [
        item
        for item in stack.items()
        if item.get("kind") == "conversion" and item["event_id"] == "lead-1"
    ]

    status, answer = _dry_run(stack, account["keys"]["write"], SIGNUP)

    assert status == 200, answer
    rows = {row["event_id"]: row for row in answer["sample"]}
    assert rows["s-1"] | {"duplicate_of": None} == {
        "event_id": "s-1",
        "occurred_at": "2026-10-01T08:00:00.000000Z",
        "type": "custom_trigger",
        "visitor_id": "v-1",
        "status": "would_void",
        "reason": "duplicate under key visitor within 30 days",
        "duplicate_of": None,
    }
    assert rows["s-1"]["duplicate_of"] == {
        "conversion_id": lead_conversion["conversion_id"],
        "goal_id": account["goal_ids"][0],
        "event_id": "lead-1",
        "occurred_at": "2026-09-29T10:00:00.000000Z",
    }
    # A duplicate of the dry-run's own earlier match: no conversion exists for it.
    assert rows["s-3"]["duplicate_of"] == {
        "conversion_id": None,
        "goal_id": None,
        "event_id": "s-2",
        "occurred_at": "2026-10-01T09:00:00.000000Z",
    }
    assert rows["s-2"]["status"] == "would_count" and rows["s-2"]["duplicate_of"] is None


def test_a_dry_run_writes_nothing(stack: InProcessStack) -> None:
    account = _account(stack, [LEAD], HISTORY)
    before = sorted(map(repr, stack.items()))

    for key in ("write", "read"):
        for goal in (SIGNUP, TWO_PAGES, VIP_GOLD, LEAD):
            status, answer = _dry_run(
                stack, account["keys"][key], goal, **{"from": "2026-09-15", "to": "2026-10-15"}
            )
            assert status == 200 and answer["matched"], answer
    stack.evaluate_pending()

    assert sorted(map(repr, stack.items())) == before


def test_another_accounts_events_never_appear(stack: InProcessStack) -> None:
    mine = _account(stack, [], [_signup("s-1", "2026-10-05T09:00Z", visitor="mine")])
    _account(stack, [LEAD], HISTORY)

    status, answer = _dry_run(stack, mine["keys"]["read"], SIGNUP)

    assert status == 200, answer
    assert answer["examined"] == answer["matched"] == answer["would_count"] == 1
    assert [row["visitor_id"] for row in answer["sample"]] == ["mine"]


def test_days_are_the_account_time_zone_days(stack: InProcessStack) -> None:
    account = stack.new_account(timezone="America/New_York")
    events = [
        _signup("before", "2026-10-01T03:59Z", visitor="a"),  # Sept 30, 23:59 in New York
        _signup("first", "2026-10-01T04:00Z", visitor="b"),  # Oct 1, 00:00
        _signup("last", "2026-11-01T03:59Z", visitor="c"),  # Oct 31, 23:59
        _signup("after", "2026-11-01T04:00Z", visitor="d"),  # Nov 1, 00:00 (EDT until 2:00)
    ]
    status, answer = stack.api.request(
        "POST", "/v1/events", account["keys"]["write"], {"events": events}
    )
    assert status == 202, answer

    status, answer = _dry_run(stack, account["keys"]["read"], SIGNUP)

    assert status == 200, answer
    assert [row["event_id"] for row in answer["sample"]] == ["first", "last"]


def test_at_the_cap_the_answer_says_it_was_truncated(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dry_run, "MAX_EVENTS_EXAMINED", 4)
    account = _account(stack, [], [])
    events = [
        _signup(f"s-{n}", f"2026-10-{1 + n // 3:02d}T{10 + n % 3}:00Z", visitor=f"v-{n}")
        for n in range(6)
    ]
    stack.api.request("POST", "/v1/events", account["keys"]["write"], {"events": events})

    status, answer = _dry_run(stack, account["keys"]["read"], SIGNUP)
    assert status == 200, answer
    assert answer["examined"] == answer["would_count"] == 4
    assert (answer["truncated"], answer["examined_until"]) == (True, "2026-10-02T10:00:00.000000Z")

    status, answer = _dry_run(
        stack, account["keys"]["read"], SIGNUP, **RANGE | {"from": "2026-10-02"}
    )
    assert status == 200, answer
    assert (answer["examined"], answer["truncated"], answer["examined_until"]) == (3, False, None)

    monkeypatch.setattr(dry_run, "MAX_EVENTS_EXAMINED", 6)  # as many as the range holds
    status, answer = _dry_run(stack, account["keys"]["read"], SIGNUP)
    assert status == 200, answer
    assert (answer["examined"], answer["truncated"], answer["examined_until"]) == (6, False, None)


@pytest.mark.parametrize("limit", [1, 2, 3, 10])
def test_a_day_is_read_page_by_page_strictly_between_two_positions(
    stack: InProcessStack, limit: int
) -> None:
    account = _account(stack, [], [])
    events = [_signup(f"s-{n}", f"2026-10-05T1{n}:00Z") for n in range(6)]
    stack.api.request("POST", "/v1/events", account["keys"]["write"], {"events": events})
    events = Dal.open(TABLE).events
    positions = [keys.trace_sk(f"2026-10-05T1{n}:00:00.000000Z", "E", f"s-{n}") for n in range(6)]

    pages, after = [], positions[0]
    while after is not None and len(pages) < 20:  # a cursor that never moves on would loop
        page = events.day_events(account["account_id"], "2026-10-05", after, limit, positions[5])
        pages.append([item["event_id"] for item in page.items])
        after = page.cursor and page.cursor["gsi3sk"]

    assert after is None, pages
    assert [event for page in pages for event in page] == ["s-1", "s-2", "s-3", "s-4"]
    assert all(len(page) <= limit for page in pages), pages


@pytest.mark.parametrize("timezone", ["Pacific/Kiritimati", "Etc/GMT+12"])
@pytest.mark.parametrize(
    ("start", "end"), [("0001-01-01", "0001-01-31"), ("9999-12-01", "9999-12-31")]
)
def test_days_no_event_can_fall_on_are_an_empty_answer(
    stack: InProcessStack, timezone: str, start: str, end: str
) -> None:
    read = stack.new_account(timezone=timezone)["keys"]["read"]

    status, answer = _dry_run(stack, read, SIGNUP, **{"from": start, "to": end})

    assert status == 200, answer
    assert (answer["examined"], answer["matched"], answer["truncated"]) == (0, 0, False)


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "goal", "field", "reason"), GOAL_REJECTIONS, ids=[c[0] for c in GOAL_REJECTIONS]
)
def test_the_goal_is_refused_as_post_goals_refuses_it(
    stack: InProcessStack, case: str, goal: Any, field: str, reason: str
) -> None:
    write = stack.new_account()["keys"]["write"]
    before = sorted(map(repr, stack.items()))

    created = stack.api.request("POST", "/v1/goals", write, goal)
    tried = _dry_run(stack, write, goal)

    assert created[0] == tried[0] == 400, (created, tried)
    assert tried[1]["error"]["fields"] == [
        {"field": f"goal.{problem['field']}", "reason": problem["reason"]}
        for problem in created[1]["error"]["fields"]
    ]
    assert any(p["field"] == f"goal.{field}" for p in tried[1]["error"]["fields"])
    assert sorted(map(repr, stack.items())) == before


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"goal": SIGNUP, "from": "2026-10-01", "to": "2026-11-01"}, "to", "at most 30 days"),
        ({"goal": SIGNUP, "from": "2026-10-02", "to": "2026-10-01"}, "from", "after 'to'"),
        ({"goal": SIGNUP, "from": "2026-10-32"}, "from", "date"),
        ({"from": "2026-10-01"}, "goal", "required"),
        ({"goal": SIGNUP, "since": "2026-10-01"}, "since", "unknown field"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(
    stack: InProcessStack, body: dict, field: str, reason: str
) -> None:
    read = stack.new_account()["keys"]["read"]

    status, answer = stack.api.request("POST", "/v1/goals/dry-run", read, body)

    assert status == 400, answer
    problems = answer["error"]["fields"]
    assert [p["field"] for p in problems] == [field], problems
    assert reason in problems[0]["reason"], problems


def test_thirty_one_days_are_accepted(stack: InProcessStack) -> None:
    read = stack.new_account()["keys"]["read"]
    status, answer = _dry_run(stack, read, SIGNUP, **{"from": "2026-10-01", "to": "2026-10-31"})
    assert status == 200, answer
    assert (answer["from"], answer["to"], answer["matched"]) == ("2026-10-01", "2026-10-31", 0)
