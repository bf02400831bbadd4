"""The goal library over the API: every rule kind end to end, versions, validation."""

import base64
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from goalkeeper import keys
from goalkeeper.attributes import to_attributes
from goalkeeper.dal import Dal
from goalkeeper.errors import Conflict
from goalkeeper.models.goals import GoalSpec
from goalkeeper.services import goals
from goalkeeper.settings import get_settings
from support.faults import FaultInjector
from support.stack import TABLE, InProcessStack

AT = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def _at(minutes: int = 0) -> str:
    return (AT + timedelta(minutes=minutes)).isoformat()


# (rule, prerequisite events, matching event, non-matching event)
RULE_CASES = {
    "call": (
        {"kind": "call", "connected": True, "min_bridged_seconds": 30, "max_bridged_seconds": 120},
        [],
        {"type": "call", "call_id": "c1", "connected": True, "bridged_seconds": 45},
        {"type": "call", "call_id": "c2", "connected": True, "bridged_seconds": 120},
    ),
    "url": (
        {"kind": "url", "match": "regex", "pattern": r"/thank-?you$"},
        [],
        {"type": "page_view", "url": "https://x.example/THANKYOU"},
        {"type": "page_view", "url": "https://x.example/thank-you/later"},
    ),
    "custom_trigger": (
        {
            "kind": "custom_trigger",
            "name": "webinar",
            "conditions": [
                {"field": "seats", "op": "gte", "value": 2},
                {"field": "plan", "op": "in", "value": ["pro", "team"]},
            ],
        },
        [],
        {"type": "custom_trigger", "name": "webinar", "fields": {"seats": 3, "plan": "team"}},
        {"type": "custom_trigger", "name": "webinar", "fields": {"seats": 1, "plan": "team"}},
    ),
    "call_rating": (
        {"kind": "call_rating", "rating": "Sale"},
        [],
        {
            "type": "call_rating",
            "call_id": "c1",
            "rating": "sale",
            "value": "90",
            "currency": "GBP",
        },
        {"type": "call_rating", "call_id": "c1", "rating": "no sale"},
    ),
    "transaction": (
        {"kind": "transaction", "min_value": "10000", "inclusive": False},
        [],
        {"type": "transaction", "transaction": {"value": "10000.01", "currency": "JPY"}},
        {"type": "transaction", "transaction": {"value": "10000", "currency": "USD"}},
    ),
    "lead": (
        {"kind": "lead"},
        [],
        {"type": "lead", "lead_id": "l-1"},
        {"type": "custom_trigger", "name": "lead"},
    ),
    "service_activity": (
        {"kind": "service_activity", "topics": {"boiler": ["booked", "fixed"], "roof": ["quoted"]}},
        [],
        {"type": "service_status", "service_id": "s1", "topic": "roof", "status": "quoted"},
        {"type": "service_status", "service_id": "s1", "topic": "boiler", "status": "quoted"},
    ),
    "page_views": (
        {"kind": "page_views", "min_pages": 3},
        [
            {"type": "page_view", "url": "https://x.example/a", "visit_id": "v1"},
            {"type": "page_view", "url": "https://x.example/b", "visit_id": "v1"},
        ],
        {"type": "page_view", "url": "https://x.example/c", "visit_id": "v1"},
        {"type": "page_view", "url": "https://x.example/c", "visit_id": "v2"},
    ),
    "tags": (
        {"kind": "tags", "tags": ["webinar", "customer"], "match": "all"},
        [{"type": "tag", "contact_id": "ct1", "added": ["webinar"]}],
        {"type": "tag", "contact_id": "ct1", "added": ["customer"]},
        {"type": "tag", "contact_id": "ct2", "added": ["customer"]},
    ),
}


_minutes = itertools.count()


def _send(stack: InProcessStack, write: str, events: list[dict]) -> list[str]:
    """Send events in order, each a minute after the previous one."""
    if not events:
        return []
    stamped = [
        {"visitor_id": "visitor-1", "occurred_at": _at(next(_minutes))} | event for event in events
    ]
    status, body = stack.api.request("POST", "/v1/events", write, {"events": stamped})
    assert status == 202, body
    stack.evaluate_pending()
    return body["accepted"]


def _conversions(stack: InProcessStack, goal_id: str) -> dict[str, str]:
    return {
        item["event_id"]: item["status"]
        for item in stack.items()
        if item.get("kind") == "conversion" and item["goal_id"] == goal_id
    }


@pytest.mark.parametrize("kind", sorted(RULE_CASES))
def test_every_rule_kind_counts_a_matching_event_and_ignores_a_non_matching_one(
    stack: InProcessStack, kind: str
) -> None:
    rule, before, matching, other = RULE_CASES[kind]
    write = stack.new_account()["keys"]["write"]
    spec = {"name": f"{kind} goal", "rule": rule, "dedup": {"keys": []}}
    status, goal = stack.api.request("POST", "/v1/goals", write, spec)
    assert status == 201, goal
    earlier = _send(stack, write, before)
    [matching_id] = _send(stack, write, [matching])
    [other_id] = _send(stack, write, [other])
    conversions = _conversions(stack, goal["goal_id"])
    assert conversions.get(matching_id) == "counted"
    assert other_id not in conversions
    assert not set(earlier) & set(conversions)


def test_a_change_is_a_new_version_and_conversions_record_theirs(stack: InProcessStack) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    spec = {"name": "Lead", "rule": {"kind": "lead"}, "dedup": {"keys": []}}
    goal = stack.api.request("POST", "/v1/goals", write, spec)[1]
    assert goal["version"] == 1
    _send(stack, write, [{"type": "lead", "lead_id": "l-1", "event_id": "lead-1"}])
    status, changed = stack.api.request(
        "PUT", f"/v1/goals/{goal['goal_id']}", write, spec | {"name": "Qualified lead"}
    )
    assert (status, changed["version"], changed["name"]) == (200, 2, "Qualified lead")
    _send(stack, write, [{"type": "lead", "lead_id": "l-2", "event_id": "lead-2"}])
    trace = stack.api.request("GET", "/v1/visitors/visitor-1/trace", read)[1]
    versions = {
        i["event_id"]: i["goal_version"] for i in trace["items"] if i["kind"] == "conversion"
    }
    assert versions == {"lead-1": 1, "lead-2": 2}


def test_delete_deactivates_but_reports_keep_the_goal(stack: InProcessStack) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    spec = {"name": "Lead", "rule": {"kind": "lead"}, "dedup": {"keys": []}}
    goal_id = stack.api.request("POST", "/v1/goals", write, spec)[1]["goal_id"]
    _send(stack, write, [{"type": "lead", "lead_id": "l-1"}])
    status, deleted = stack.api.request("DELETE", f"/v1/goals/{goal_id}", write)
    assert (status, deleted["active"]) == (200, False)
    _send(stack, write, [{"type": "lead", "lead_id": "l-2"}])
    assert list(_conversions(stack, goal_id).values()) == ["counted"]
    report = stack.api.request(
        "GET", "/v1/reports/goals", read, query={"from": "2026-11-01", "to": "2026-11-30"}
    )[1]
    row = next(r for r in report["goals"] if r["goal_id"] == goal_id)
    assert (row["active"], row["counted"]) == (False, 1)
    assert stack.api.request("GET", "/v1/goals/goal_nope", read)[0] == 404


@pytest.mark.parametrize(
    ("rule", "field", "reason_part"),
    [
        ({"kind": "telepathy"}, "rule.kind", "is not one of"),
        ({"kind": "url", "match": "regex", "pattern": "(a)\\1"}, "rule.pattern", "RE2"),
        ({"kind": "url", "match": "regex", "pattern": "(unclosed"}, "rule.pattern", "RE2"),
        # Fits RE2's memory as written, not once case-folded (case_sensitive defaults to false).
        ({"kind": "url", "match": "regex", "pattern": r"\pL{445}k{500}"}, "rule.pattern", "large"),
        ({"kind": "call", "min_bridged_seconds": -1}, "rule.min_bridged_seconds", "greater"),
        (
            {"kind": "call", "min_bridged_seconds": 90, "max_bridged_seconds": 60},
            "rule",
            "less than",
        ),
        ({"kind": "transaction", "min_value": "5", "currency": "ZZZ"}, "rule.currency", "ISO 4217"),
        ({"kind": "tags", "tags": []}, "rule.tags", "at least 1"),
        ({"kind": "service_activity", "topics": {}}, "rule.topics", "at least 1"),
    ],
)
def test_invalid_goals_are_refused_naming_the_field(
    stack: InProcessStack, rule: dict, field: str, reason_part: str
) -> None:
    write = stack.new_account()["keys"]["write"]
    status, body = stack.api.request("POST", "/v1/goals", write, {"name": "bad", "rule": rule})
    assert status == 400, body
    problems = body["error"]["fields"]
    assert any(p["field"] == field and reason_part in p["reason"] for p in problems), problems
    assert not [i for i in stack.items() if i.get("kind") == "goal" and i["goal"]["name"] == "bad"]


def test_a_pathological_regex_leaves_evaluation_responsive(stack: InProcessStack) -> None:
    """^(a+)+$ backtracks exponentially in Python's re; RE2 answers in linear time,
    so this test finishing at all is the assertion that matters."""
    write = stack.new_account()["keys"]["write"]
    spec = {
        "name": "evil",
        "rule": {"kind": "url", "match": "regex", "pattern": "^(a+)+$"},
        "dedup": {"keys": []},
    }
    goal_id = stack.api.request("POST", "/v1/goals", write, spec)[1]["goal_id"]
    [evil] = _send(stack, write, [{"type": "page_view", "url": "a" * 40 + "!"}])
    [fine] = _send(stack, write, [{"type": "page_view", "url": "a" * 40}])
    assert _conversions(stack, goal_id) == {fine: "counted"}
    assert evil != fine


def test_regexes_too_large_for_one_re2_set_still_match_only_their_own_urls(
    stack: InProcessStack,
) -> None:
    write = stack.new_account()["keys"]["write"]
    for number in range(4):
        rule = {"kind": "url", "match": "regex", "pattern": rf"q{number}\pL{{400}}"}
        spec = {"name": f"huge {number}", "rule": rule, "dedup": {"keys": []}}
        assert stack.api.request("POST", "/v1/goals", write, spec)[0] == 201
    spec = {
        "name": "Thank you",
        "rule": {"kind": "url", "match": "regex", "pattern": "/thank-you$"},
        "dedup": {"keys": []},
    }
    thanks = stack.api.request("POST", "/v1/goals", write, spec)[1]["goal_id"]
    urls = [f"https://x.example{path}" for path in ["/", "/pricing", "/about", "/thank-you"]]
    sent = _send(stack, write, [{"type": "page_view", "url": url} for url in urls])
    assert _conversions(stack, thanks) == {sent[-1]: "counted"}


# -- how many goals an account holds, and listing them page by page ---------------------

LEAD_GOAL = {"name": "Lead", "rule": {"kind": "lead"}}


@pytest.fixture
def at_most_five_goals(stack: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOALKEEPER_MAX_GOALS_PER_ACCOUNT", "5")
    get_settings.cache_clear()


def _goal_items(stack: InProcessStack, account_id: str) -> list[dict]:
    return [i for i in stack.items() if i["pk"] == keys.goal_library_pk(account_id)]


def _create(stack: InProcessStack, write: str, name: str = "Lead") -> tuple[int, dict]:
    return stack.api.request("POST", "/v1/goals", write, LEAD_GOAL | {"name": name})


def test_an_account_holds_at_most_the_configured_number_of_goals(
    stack: InProcessStack, at_most_five_goals: None
) -> None:
    account = stack.new_account()  # with its three call goals
    write = account["keys"]["write"]
    assert [_create(stack, write, f"Lead {n}")[0] for n in range(2)] == [201, 201]
    status, body = _create(stack, write, "One too many")
    assert status == 409, body
    assert body["error"]["code"] == "conflict"
    assert "5 goals" in body["error"]["message"]
    assert len(_goal_items(stack, account["account_id"])) == 5

    # Replacing or deactivating a goal at the limit is never refused, and a deactivated
    # goal stays in the library (reports keep it), so it still counts.
    goal_id = _goal_items(stack, account["account_id"])[0]["goal_id"]
    replaced = stack.api.request("PUT", f"/v1/goals/{goal_id}", write, LEAD_GOAL)
    assert replaced[0] == 200, replaced
    assert stack.api.request("DELETE", f"/v1/goals/{goal_id}", write)[0] == 200
    assert _create(stack, write, "Still too many")[0] == 409
    assert len(_goal_items(stack, account["account_id"])) == 5


def test_an_account_without_a_goal_count_is_held_to_the_goals_it_has(
    stack: InProcessStack, at_most_five_goals: None
) -> None:
    """Accounts created before goals were counted carry no counter."""
    account = stack.new_account()
    write = account["keys"]["write"]
    assert _create(stack, write)[0] == 201
    stack.client.update_item(
        TableName=TABLE,
        Key=to_attributes(keys.account(account["account_id"])),
        UpdateExpression="REMOVE goal_count",
    )
    assert _create(stack, write)[0] == 201
    assert _create(stack, write)[0] == 409
    assert len(_goal_items(stack, account["account_id"])) == 5


def test_a_goal_created_while_an_uncounted_library_is_counted_is_not_lost_from_the_count(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting the goals of an account without a counter is a read; a goal created
    meanwhile must still make the count, so the limit holds."""
    account_id = stack.new_account()["account_id"]
    library = Dal.open(TABLE, stack.client).goals
    spec = GoalSpec.model_validate(LEAD_GOAL)
    count_goals = library.count

    def count_while_another_request_creates_one(account: str) -> int:
        counted = count_goals(account)
        monkeypatch.setattr(library, "count", count_goals)
        goals.create_goal(library, account, spec, datetime.now(UTC), max_goals=5)
        return counted

    monkeypatch.setattr(library, "count", count_while_another_request_creates_one)
    goals.create_goal(library, account_id, spec, datetime.now(UTC), max_goals=5)
    assert len(_goal_items(stack, account_id)) == 5
    with pytest.raises(Conflict):
        goals.create_goal(library, account_id, spec, datetime.now(UTC), max_goals=5)
    assert len(_goal_items(stack, account_id)) == 5


def test_a_goal_whose_creation_answer_was_lost_is_created_once(stack: InProcessStack) -> None:
    """botocore retries a transaction whose answer timed out after it was applied;
    moto, like a redelivered request in AWS, does not recognise the retry by its token."""
    from goalkeeper import runtime

    account = stack.new_account()
    # A new account's first goal takes two writes (its goals are counted first): the
    # second is applied, and its answer lost.
    faults = FaultInjector(rate=0, seed=1).script("TransactWriteItems", None, "timeout_after_write")
    faults.attach(runtime.dal().client)
    try:
        status, body = _create(stack, account["keys"]["write"])
    finally:
        faults.detach()
    assert status == 201, body
    assert faults.total("timeout_after_write") == 1
    assert len(_goal_items(stack, account["account_id"])) == 4
    [item] = [i for i in stack.items() if i["pk"] == keys.account(account["account_id"])["pk"]]
    assert item["goal_count"] == 4


def _pages(stack: InProcessStack, key: str, **query: str) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        status, body = stack.api.request(
            "GET", "/v1/goals", key, query=query | ({"cursor": cursor} if cursor else {})
        )
        assert status == 200, body
        pages.append(body["goals"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_the_goal_library_is_listed_page_by_page_in_creation_order(
    stack: InProcessStack,
) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    names = ["Call Qualified", "Call Connected", "Call Not Connected"]
    names += [f"Lead {number}" for number in range(7)]
    for name in names[3:]:
        assert _create(stack, write, name)[0] == 201
    pages = _pages(stack, read, limit="3")
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    listed = [goal for page in pages for goal in page]
    assert [goal["name"] for goal in listed] == names
    assert [goal["goal_id"] for goal in listed] == sorted({goal["goal_id"] for goal in listed})
    [everything] = _pages(stack, read)
    assert everything == listed


def test_a_page_holds_100_goals_unless_asked_otherwise(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    for number in range(98):
        assert _create(stack, write, f"Lead {number}")[0] == 201
    assert [len(page) for page in _pages(stack, write)] == [100, 1]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not base64!"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"GOAL#x").decode()}, "cursor"),
        ({"cursor": ""}, "cursor"),
    ],
)
def test_a_bad_page_request_is_refused_naming_the_field(
    stack: InProcessStack, query: dict[str, str], field: str
) -> None:
    read = stack.new_account()["keys"]["read"]
    status, body = stack.api.request("GET", "/v1/goals", read, query=query)
    assert status == 400, body
    assert [problem["field"] for problem in body["error"]["fields"]] == [field]
