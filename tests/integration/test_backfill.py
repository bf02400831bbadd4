"""Retroactive goals: POST /v1/goals/{goal_id}/backfill decides a goal for the stored
events of a past range, with the transaction live evaluation uses, page by page, and
GET /v1/jobs/{job_id} shows how far it got."""

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from goalkeeper import keys
from goalkeeper.dal import Dal
from goalkeeper.dal.decisions import Decisions
from goalkeeper.dal.events import Events
from goalkeeper.dal.jobs import JobState
from goalkeeper.errors import JobRunning, StoreUnavailable
from goalkeeper.services import backfill
from goalkeeper.settings import get_settings
from goalkeeper_cli import commands
from goalkeeper_cli.local_stack.engines import MOTO, start_engine
from goalkeeper_cli.local_stack.template import load_template, table_create_kwargs
from support.served import ServedStack
from support.stack import InProcessStack

TODAY = datetime.now(UTC).date()
BASE = TODAY - timedelta(days=40)  # day 0 of every scenario
REPORT = {"from": (BASE - timedelta(days=1)).isoformat(), "to": TODAY.isoformat()}


def _day(day: int) -> str:
    return (BASE + timedelta(days=day)).isoformat()


def _at(day: int, hour: int = 12) -> str:
    return f"{_day(day)}T{hour:02d}:00:00Z"


SIGNUP = {
    "name": "Webinar sign-up",
    "rule": {"kind": "custom_trigger", "name": "signup"},
    "dedup": {"keys": ["visitor", "goal"], "window_days": 7},
    "value": {"type": "fixed", "amount": "25.00", "currency": "EUR"},
}
THREE_PAGES = {"name": "Three pages", "rule": {"kind": "page_views", "min_pages": 3}}
VIP = {"name": "VIP", "rule": {"kind": "tags", "tags": ["vip", "gold"], "match": "all"}}


def _signup(n: int, day: int, visitor: str, hour: int = 12) -> dict[str, Any]:
    return {
        "event_id": f"t-{n}",
        "type": "custom_trigger",
        "name": "signup",
        "occurred_at": _at(day, hour),
        "visitor_id": visitor,
        "attribution": {"source": "google", "campaign": "autumn", "keyword": f"kw {n % 2}"},
    }


def _history() -> list[dict[str, Any]]:
    """Sign-ups 2 days apart by 3 visitors (some within a 7-day window of their last),
    visits of 4, 2 and 5 page views (the last sent newest first), and tag changes that
    make contact c-1 hold vip+gold twice and c-2 once."""
    events = [_signup(n, n * 2, f"v-{n % 3}", 9 + n % 5) for n in range(12)]
    for visit, visitor, day, pages in (("s-1", "v-0", 1, 4), ("s-2", "v-1", 3, 2)):
        events += [
            {
                "event_id": f"{visit}-p{page}",
                "type": "page_view",
                "occurred_at": _at(day, 10 + page),
                "visitor_id": visitor,
                "visit_id": visit,
                "url": f"https://shop.example/{page}",
            }
            for page in range(pages)
        ]
    events += [
        {
            "event_id": f"s-3-p{page}",
            "type": "page_view",
            "occurred_at": _at(20, 10 + page),
            "visitor_id": "v-2",
            "visit_id": "s-3",
            "url": f"https://shop.example/{page}",
        }
        for page in reversed(range(5))
    ]
    for n, (contact, day, added, removed) in enumerate(
        [
            ("c-1", 2, ["vip"], []),
            ("c-1", 4, ["gold"], []),
            ("c-1", 6, [], ["gold"]),
            ("c-1", 8, ["gold"], []),
            ("c-2", 3, ["gold"], []),
            ("c-2", 25, ["vip"], []),
        ]
    ):
        events.append(
            {
                "event_id": f"tag-{n}",
                "type": "tag",
                "occurred_at": _at(day),
                "visitor_id": "v-0" if contact == "c-1" else "v-1",
                "contact_id": contact,
                "added": added,
                "removed": removed,
            }
        )
    return events


HISTORY = _history()
VISITORS = sorted({event["visitor_id"] for event in HISTORY})


class Account:
    def __init__(self, stack: InProcessStack, **body: Any) -> None:
        created = stack.new_account(**body)
        self.stack = stack
        self.account_id = created["account_id"]
        self.write, self.read = created["keys"]["write"], created["keys"]["read"]

    def send(self, events: list[dict[str, Any]], evaluate: bool = True) -> None:
        for start in range(0, len(events), 100):
            status, answer = self.stack.api.request(
                "POST", "/v1/events", self.write, {"events": events[start : start + 100]}
            )
            assert status == 202, answer
        if evaluate:
            self.stack.evaluate_pending()

    def goal(self, spec: dict[str, Any]) -> str:
        status, goal = self.stack.api.request("POST", "/v1/goals", self.write, spec)
        assert status == 201, goal
        return str(goal["goal_id"])

    def start(self, goal_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self.stack.api.request("POST", f"/v1/goals/{goal_id}/backfill", self.write, body)

    def job(self, job_id: str) -> dict[str, Any]:
        status, job = self.stack.api.request("GET", f"/v1/jobs/{job_id}", self.read)
        assert status == 200, job
        return job

    def backfill(self, goal_id: str, first: int = 0, last: int = 30) -> dict[str, Any]:
        status, job = self.start(goal_id, {"from": _day(first), "to": _day(last)})
        assert status == 202, job
        assert job["status"] == "queued" and job["total"] is None, job
        self.stack.run_backfills()
        return self.job(job["job_id"])

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        status, answer = self.stack.api.request("GET", path, self.read, query=query)
        assert status == 200, (path, answer)
        return answer

    def items(self) -> list[dict[str, Any]]:
        own = f"A#{self.account_id}#"
        return [item for item in self.stack.items() if item["pk"].startswith(own)]

    def names(self) -> dict[str, str]:
        """Each of the account's ids that differs between accounts (goals, their
        conversions), as a name that does not."""
        goals = self.get("/v1/goals")["goals"]
        named = {goal["goal_id"]: f"<{goal['name']}>" for goal in goals}
        for goal in goals:
            for event in HISTORY:
                conversion_id = keys.conversion_id(event["event_id"], goal["goal_id"])
                named[conversion_id] = f"<{event['event_id']} {goal['name']}>"
        return named

    def view(self, goal_ids: list[str]) -> dict[str, Any]:
        """What users see of these goals, ids made comparable across accounts."""
        found: dict[str, Any] = {"goals": self.get("/v1/reports/goals", REPORT)}
        for goal_id in goal_ids:
            path = f"/v1/reports/goals/{goal_id}/timeseries"
            found[f"timeseries {goal_id}"] = self.get(path, REPORT)
            health = self.get(f"/v1/goals/{goal_id}/health")
            found[f"health {goal_id}"] = {k: v for k, v in health.items() if k != "checked_at"}
        for dimension in ("source", "campaign", "keyword"):
            found[dimension] = self.get(
                "/v1/reports/attribution", REPORT | {"dimension": dimension}
            )
        found["top"] = self.get("/v1/reports/top-keywords", REPORT)
        for visitor in VISITORS:
            found[visitor] = self.get(f"/v1/visitors/{visitor}/trace", {"limit": "500"})
        conversions = [item for item in self.items() if item["kind"] == "conversion"]
        found["conversions"] = sorted(conversions, key=lambda item: item["conversion_id"])
        return self._named(found)

    def _named(self, answer: Any) -> Any:
        text = json.dumps(answer, sort_keys=True, default=str)
        for actual, name in self.names().items():
            text = text.replace(actual, name)
        text = text.replace(self.account_id, "<account>")
        named = json.loads(text)
        named["conversions"] = sorted(named["conversions"], key=json.dumps)
        for conversion in named["conversions"]:
            del conversion["gsi1sk"]  # ends with the conversion id: compared as "conversion_id"
        return named


def _counts(job: dict[str, Any]) -> tuple[Any, ...]:
    return job["status"], job["processed"], job["total"], job["counted"], job["void"]


# --- the result ------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [SIGNUP, THREE_PAGES, VIP], ids=["windowed", "pages", "tags"])
def test_a_backfilled_goal_reports_exactly_as_if_it_had_existed_all_along(
    stack: InProcessStack, ingest_in_order: None, spec: dict[str, Any]
) -> None:
    # Live, the first decided wins; a backfill decides oldest first. Sent in time order,
    # live events are decided in the order the backfill decides them.
    all_along = Account(stack)
    goal_all_along = all_along.goal(spec)
    all_along.send(sorted(HISTORY, key=lambda event: (event["occurred_at"], event["event_id"])))

    later = Account(stack)
    later.send(HISTORY)
    goal_later = later.goal(spec)
    before = later.view([goal_later])
    job = later.backfill(goal_later)

    assert job["status"] == "done", job
    assert (job["processed"], job["total"]) == (len(HISTORY), len(HISTORY))
    after = later.view([goal_later])
    assert after["conversions"] != before["conversions"], "the backfill decided nothing"
    assert after == all_along.view([goal_all_along])
    counted = [c for c in after["conversions"] if c["status"] == "counted"]
    voided = [c for c in after["conversions"] if c["status"] == "void"]
    assert (job["counted"], job["void"]) == (len(counted), len(voided))


def test_only_events_of_the_range_in_the_account_time_zone_are_decided(
    stack: InProcessStack,
) -> None:
    account = Account(stack, timezone="America/New_York")  # UTC-4 or UTC-5 in these days
    events = [
        _signup(0, 4, "v-0", hour=3),  # the evening before day 4 in New York
        _signup(1, 4, "v-1", hour=6),
        _signup(2, 7, "v-2"),
        _signup(3, 11, "v-3", hour=2),  # still day 10 in New York
        _signup(4, 11, "v-4", hour=6),
    ]
    account.send(events)
    goal_id = account.goal(SIGNUP)

    job = account.backfill(goal_id, first=4, last=10)

    assert _counts(job) == ("done", 3, 3, 3, 0)
    decided = {item["event_id"] for item in account.items() if item["kind"] == "conversion"}
    assert decided == {"t-1", "t-2", "t-3"}


def test_running_a_backfill_twice_changes_nothing(stack: InProcessStack, small_pages: None) -> None:
    account = Account(stack)
    account.send(HISTORY)
    goals = [account.goal(spec) for spec in (SIGNUP, THREE_PAGES, VIP)]
    first = [account.backfill(goal_id) for goal_id in goals]
    jobs = {"job", "job_lock"}
    decided = [item for item in account.items() if item["kind"] not in jobs]

    again = [account.backfill(goal_id) for goal_id in goals]

    assert [_counts(job) for job in again] == [_counts(job) for job in first]
    assert [item for item in account.items() if item["kind"] not in jobs] == decided
    assert all(job["counted"] > 0 for job in first), first


class Crash:
    """Makes one call of a data access method fail, the `at`-th one."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        method: tuple[type, str],
        at: int,
        error: Exception,
    ):
        self.calls, self.at, self.error = 0, at, error
        owner, name = method
        original = getattr(owner, name)

        def failing(door: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.at:
                raise self.error
            return original(door, *args, **kwargs)

        monkeypatch.setattr(owner, name, failing)


@pytest.mark.parametrize(
    "crash",
    [
        # A page fails half-way (some of its decisions written, its checkpoint not):
        # the failure is counted on the job, whose write runs the page again.
        ((Decisions, "decide_event"), 11, RuntimeError("injected defect"), False),
        # The store fails between two pages of one run (a run takes pages until its
        # time runs short): the stream retries the record from the last checkpoint.
        ((Events, "day_events"), 4, StoreUnavailable("injected outage"), True),
    ],
    ids=["page fails half-way", "outage between pages"],
)
def test_a_job_killed_between_pages_and_resumed_ends_as_a_clean_run(
    stack: InProcessStack,
    small_pages: None,
    monkeypatch: pytest.MonkeyPatch,
    crash: tuple[tuple[type, str], int, Exception, bool],
) -> None:
    method, at, error, long_runs = crash
    if long_runs:
        monkeypatch.setattr(backfill, "STOP_BEFORE_TIMEOUT_SECONDS", 0.0)
    clean, crashed = Account(stack), Account(stack)
    for account in (clean, crashed):
        account.send(HISTORY)
    clean_goals = [clean.goal(spec) for spec in (SIGNUP, VIP)]
    clean_jobs = [clean.backfill(goal_id) for goal_id in clean_goals]
    crashed_goals = [crashed.goal(spec) for spec in (SIGNUP, VIP)]

    injected = Crash(monkeypatch, method, at, error)
    crashed_jobs = [crashed.backfill(goal_id) for goal_id in crashed_goals]

    assert injected.calls > at, "the crash never happened"
    assert [_counts(job) for job in crashed_jobs] == [_counts(job) for job in clean_jobs]
    assert all(job["status"] == "done" for job in clean_jobs), clean_jobs
    assert crashed.view(crashed_goals) == clean.view(clean_goals)
    for poller in stack.pollers.values():
        assert poller.dead_letters.read() == []


@pytest.mark.parametrize("first", ["backfill", "evaluation"])
def test_a_live_event_racing_the_backfill_counts_once(stack: InProcessStack, first: str) -> None:
    account = Account(stack)
    account.send(HISTORY)
    goal_id = account.goal(SIGNUP)
    late = _signup(99, 30, "v-9")
    account.send([late], evaluate=False)  # stored, not yet evaluated: it races the job

    if first == "backfill":
        job = account.backfill(goal_id, last=30)
        account.stack.evaluate_pending()
    else:
        account.stack.evaluate_pending()
        job = account.backfill(goal_id, last=30)

    conversions = [
        item
        for item in account.items()
        if item["kind"] == "conversion" and item["event_id"] == "t-99"
    ]
    assert [c["status"] for c in conversions] == ["counted"]
    report = account.get("/v1/reports/goals", REPORT)
    (row,) = [g for g in report["goals"] if g["goal_id"] == goal_id]
    assert row["counted"] == job["counted"] == 7
    assert row["value"] == {"EUR": "175.00"}


def test_decisions_already_made_stand_and_visitor_only_goals_see_backfilled_conversions(
    stack: InProcessStack,
) -> None:
    account = Account(stack)
    anything = {
        "name": "First touch",
        "rule": {"kind": "custom_trigger", "name": "contact"},
        "dedup": {"keys": ["visitor"], "window_days": 30},
    }
    first_touch = account.goal(anything)
    contact = {"type": "custom_trigger", "name": "contact"}
    account.send(
        [
            _signup(1, 1, "v-new"),
            _signup(2, 1, "v-old"),
            contact | {"event_id": "old-contact", "occurred_at": _at(3), "visitor_id": "v-old"},
        ]
    )
    goal_id = account.goal(SIGNUP)

    job = account.backfill(goal_id)
    account.send(
        [contact | {"event_id": "new-contact", "occurred_at": _at(5), "visitor_id": "v-new"}]
    )

    decided = {
        (item["event_id"], item["goal_id"]): item
        for item in account.items()
        if item["kind"] == "conversion"
    }
    # The backfilled sign-ups count (their own rule is per visitor and goal) ...
    assert _counts(job) == ("done", 3, 3, 2, 0)
    assert decided["t-1", goal_id]["status"] == decided["t-2", goal_id]["status"] == "counted"
    # ... the visitor-only decision made before the backfill stands ...
    assert decided["old-contact", first_touch]["status"] == "counted"
    # ... and a later event of a visitor-only goal sees the backfilled conversion.
    voided = decided["new-contact", first_touch]
    assert voided["status"] == "void"
    assert voided["reason"] == "duplicate under key visitor within 30 days"
    assert voided["duplicate_of"] == keys.conversion_id("t-1", goal_id)


# --- the job -----------------------------------------------------------------------------


def test_progress_is_counted_then_decided_page_by_page(
    stack: InProcessStack, small_pages: None
) -> None:
    account = Account(stack)
    account.send(HISTORY)
    goal_id = account.goal(SIGNUP)
    status, job = account.start(goal_id, {"from": _day(0)})
    assert status == 202, job
    poller = stack.pollers["BackfillFunction"]

    seen = [account.job(job["job_id"])]
    while poller.poll_once():
        seen.append(account.job(job["job_id"]))

    assert seen[0] | {"updated_at": None} == {
        "job_id": job["job_id"],
        "kind": "backfill",
        "goal_id": goal_id,
        "goal_version": 1,
        "status": "queued",
        "from": _day(0),
        "to": TODAY.isoformat(),
        "processed": 0,
        "total": None,
        "counted": 0,
        "void": 0,
        "created_at": seen[0]["created_at"],
        "updated_at": None,
        "error": None,
    }
    progress = [(j["status"], j["processed"], j["total"]) for j in seen[1:]]
    assert progress[0] == ("running", 0, None)  # 31 days counted per page
    decided = [p for p in progress if p[2] is not None]
    assert [p[1] for p in decided] == sorted(p[1] for p in decided)
    assert len({p[1] for p in decided}) >= len(HISTORY) // 4
    assert decided[-1] == ("done", len(HISTORY), len(HISTORY))


def test_a_goal_changed_while_its_backfill_runs_ends_the_job(stack: InProcessStack) -> None:
    account = Account(stack)
    account.send(HISTORY)
    goal_id = account.goal(SIGNUP)
    status, job = account.start(goal_id, {"from": _day(0)})
    assert status == 202, job
    status, _ = stack.api.request("PUT", f"/v1/goals/{goal_id}", account.write, SIGNUP)
    assert status == 200

    stack.run_backfills()

    ended = account.job(job["job_id"])
    assert (ended["status"], ended["processed"]) == ("failed", 0)
    assert "replaced or deactivated" in ended["error"]
    assert account.backfill(goal_id)["status"] == "done"  # the goal is free again


# --- refused requests ------------------------------------------------------------------------


def _refused(account: Account, goal_id: str, body: Any) -> tuple[int, Any]:
    before = len(account.items())
    status, answer = account.start(goal_id, body)
    assert len(account.items()) == before, "a refused backfill stored something"
    return status, answer


def test_bad_requests_are_refused_naming_what_is_wrong(stack: InProcessStack) -> None:
    account = Account(stack)
    goal_id = account.goal(SIGNUP)
    retention = get_settings().event_retention_days
    oldest = TODAY - timedelta(days=retention)

    def fields(body: Any) -> tuple[int, list[str]]:
        status, answer = _refused(account, goal_id, body)
        return status, [problem["field"] for problem in answer["error"]["fields"]]

    assert fields({"from": (oldest - timedelta(days=1)).isoformat()}) == (400, ["from"])
    assert fields({"from": _day(5), "to": _day(4)}) == (400, ["to"])
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    assert fields({"from": _day(5), "to": tomorrow}) == (400, ["to"])
    assert fields({"from": tomorrow}) == (400, ["from"])
    assert fields({}) == (400, ["from"])
    assert fields({"from": "20.11.2026"}) == (400, ["from"])
    assert fields({"from": 1700000000}) == (400, ["from"])
    assert fields({"from": _day(0), "until": _day(3)}) == (400, ["until"])
    status, answer = account.start(goal_id, {"from": oldest.isoformat()})
    assert status == 202, answer  # the oldest day whose events are still kept

    status, answer = _refused(account, "goal_unknown", {"from": _day(0)})
    assert (status, answer["error"]["code"]) == (404, "not_found")
    other = Account(stack)
    status, answer = _refused(other, goal_id, {"from": _day(0)})
    assert (status, answer["error"]["code"]) == (404, "not_found")


def test_an_inactive_goal_is_refused(stack: InProcessStack) -> None:
    account = Account(stack)
    goal_id = account.goal(SIGNUP)
    status, _ = stack.api.request("DELETE", f"/v1/goals/{goal_id}", account.write)
    assert status == 200

    status, answer = _refused(account, goal_id, {"from": _day(0)})

    assert (status, answer["error"]["code"]) == (409, "conflict")
    assert "deactivated" in answer["error"]["message"]


def test_a_second_backfill_of_a_goal_is_refused_until_the_first_ends(
    stack: InProcessStack,
) -> None:
    account = Account(stack)
    account.send(HISTORY[:5])
    goal_id, other_goal = account.goal(SIGNUP), account.goal(VIP)
    status, running = account.start(goal_id, {"from": _day(0)})
    assert status == 202, running

    status, answer = _refused(account, goal_id, {"from": _day(3), "to": _day(4)})
    assert (status, answer["error"]["code"]) == (409, "conflict")
    assert running["job_id"] in answer["error"]["message"]
    status, _ = account.start(other_goal, {"from": _day(0)})  # another goal's is welcome
    assert status == 202

    stack.run_backfills()
    assert account.job(running["job_id"])["status"] == "done"
    status, again = account.start(goal_id, {"from": _day(3), "to": _day(4)})
    assert status == 202, again


def test_a_job_is_visible_to_its_account_only(stack: InProcessStack) -> None:
    account, other = Account(stack), Account(stack)
    goal_id = account.goal(SIGNUP)
    status, job = account.start(goal_id, {"from": _day(0)})
    assert status == 202

    for key in (account.read, account.write):
        assert stack.api.request("GET", f"/v1/jobs/{job['job_id']}", key)[0] == 200
    for key in (other.read, other.write):
        status, answer = stack.api.request("GET", f"/v1/jobs/{job['job_id']}", key)
        assert (status, answer["error"]["code"]) == (404, "not_found")
    status, answer = stack.api.request("GET", "/v1/jobs/job_unknown", account.read)
    assert status == 404


# --- over `goalkeeper serve` -------------------------------------------------------------

ADMIN = "backfill-admin-key"


@pytest.fixture(scope="module")
def served() -> Iterator[ServedStack]:
    stack = ServedStack(ADMIN)
    yield stack
    if stack.process.poll() is None:
        stack.stop()


@pytest.mark.server
def test_goalkeeper_backfill_runs_a_job_with_a_progress_bar(
    served: ServedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    status, account = served.request("POST", "/v1/accounts", ADMIN, {})
    assert status == 201, account
    write = account["keys"]["write"]
    status, answer = served.request("POST", "/v1/events", write, {"events": HISTORY})
    assert status == 202, answer
    every_signup = SIGNUP | {"dedup": {"keys": []}}  # counts whatever order decides them in
    status, goal = served.request("POST", "/v1/goals", write, every_signup)
    assert status == 201, goal
    api = ["--api", f"{served.base_url}/v1", "--key", write]

    code = commands.main(["backfill", goal["goal_id"], "--from", _day(0), "--to", _day(30), *api])

    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("backfill job_"), lines
    assert lines[0].endswith(f": goal {goal['goal_id']}, {_day(0)} to {_day(30)}")
    assert lines[-1] == f"[{'#' * 30}] 29/29 events  12 counted  0 void  (done)"
    status, report = served.request(
        "GET",
        f"/v1/reports/goals/{goal['goal_id']}/timeseries?from={_day(0)}&to={_day(30)}",
        account["keys"]["read"],
    )
    assert sum(day["counted"] for day in report["days"]) == 12

    # A funnel created later, filled: the sign-ups (all counted now) are its first step.
    status, pages = served.request("POST", "/v1/goals", write, THREE_PAGES)
    assert status == 201, pages
    funnel_spec = {"name": "Sign-up, then pages", "steps": [goal["goal_id"], pages["goal_id"]]}
    status, funnel = served.request("POST", "/v1/funnels", write, funnel_spec)
    assert status == 201, funnel
    fill = ["backfill", "--funnel", funnel["funnel_id"], "--from", _day(0), "--to", _day(30)]
    assert commands.main([*fill, *api]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f": funnel {funnel['funnel_id']}, {_day(0)} to {_day(30)}"), lines
    assert lines[-1] == f"[{'#' * 30}] 29/29 events  12 on a step  0 on none  (done)"

    assert commands.main(["backfill", "goal_unknown", "--from", _day(0), *api]) == 1
    assert "404 not_found" in capsys.readouterr().err
    assert commands.main(["backfill", goal["goal_id"], "--from", "yesterday", *api]) == 1
    assert "from: must be a date, YYYY-MM-DD" in capsys.readouterr().err


# The table of the embedded endpoint alone (see embedded_dynamodb).
RACE_TABLE = "goalkeeper"
# Later than `goalkeeper serve`'s backfill function takes to end a job of an unknown
# goal and free the goal's lock (measured: 0.4 s idle, 1 s on 2 busy cores).
LATE_RACER_SECONDS = 1.5


@pytest.fixture(scope="module")
def embedded_dynamodb() -> Iterator[str]:
    """The embedded DynamoDB alone, in a child process as `goalkeeper serve` starts it,
    holding the template's table. No function reads its stream: a started job stays
    queued and keeps its goal's lock for as long as a race lasts."""
    engine = start_engine(MOTO, "127.0.0.1")
    try:
        _dynamodb_client(engine.endpoint.url).create_table(
            **table_create_kwargs(load_template(), RACE_TABLE)
        )
        yield engine.endpoint.url
    finally:
        engine.stop()


def _dynamodb_client(url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@pytest.mark.server
def test_racing_starts_of_one_goal_leave_one_job(embedded_dynamodb: str) -> None:
    """Against the embedded DynamoDB, which serves one request at a time: a lock taken by
    reading and then writing would let several racers in; a conditional write cannot,
    however late a racer comes while the winner's job holds the lock. Not over
    `goalkeeper serve`: there the backfill function ends the winner's job (its goal does
    not exist) and frees the goal, and a racer that comes after that rightly wins."""
    jobs = Dal.open(RACE_TABLE, _dynamodb_client(embedded_dynamodb)).jobs

    def start(n: int) -> str | None:
        if n % 2:
            time.sleep(LATE_RACER_SECONDS)
        day, at = "2026-11-30", "2026-11-30T00:00:00.000000Z"
        job = JobState(
            **dict.fromkeys(("first", "last", "first_day", "last_day", "day"), day),
            **dict.fromkeys(("start_sk", "end_sk", "after", "created_at", "updated_at"), at),
            account_id="acc_race",
            job_id=f"job_{n}",
            job_type="race_test",
            goal_id="goal_race",
            goal_version=1,
            status="queued",
            phase="count",
        )
        try:
            jobs.start(job)
        except JobRunning as running:
            return running.job_id
        return None

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(start, range(8)))

    winners = [f"job_{n}" for n, result in enumerate(results) if result is None]
    assert len(winners) == 1, results
    assert sorted(results, key=str) == sorted([None] + winners * 7, key=str)
