"""Funnels created later (issue 19): POST /v1/funnels/{funnel_id}/backfill fills a
funnel's counters for a past range from the stored conversions, as if the funnel had
existed all along; run twice, or raced by evaluation, it counts nothing twice."""

from typing import Any

import pytest

from goalkeeper.dal.decisions import Decisions, StepFill
from goalkeeper.services.funnel_backfill import DELETED_FUNNEL
from support.funnel_recount import assert_funnels_equal_a_recount
from support.funnel_workload import (
    CHECKOUT,
    FORM,
    LANDING,
    RANGE,
    THANKS,
    page,
    send,
    trigger,
)
from support.stack import InProcessStack

# What the checkout's hand count says (support.funnel_workload.CHECKOUT).
CHECKOUT_STEPS = [(5, 5, 0), (5, 3, 2), (3, 2, 1)]
# Conversions of the funnel's goals the backfill reads: 10 on a step; off every step
# v3's and v5's forms, v2's and v3's thank-you pages. (v4's repeats are void.)
ON_A_STEP, ON_NONE = 10, 4


class Shop:
    """An account with the checkout's goals and a funnel of them from the start."""

    def __init__(self, stack: InProcessStack) -> None:
        account = stack.new_account()
        self.stack = stack
        self.write, self.read = account["keys"]["write"], account["keys"]["read"]
        self.steps = stack.add_goals(self.write, [LANDING, FORM, THANKS])
        self.along = self.funnel("All along")

    def funnel(self, name: str) -> str:
        spec = {"name": name, "steps": self.steps, "window_days": 7}
        status, funnel = self.stack.api.request("POST", "/v1/funnels", self.write, spec)
        assert status == 201, funnel
        return str(funnel["funnel_id"])

    def backfill(self, funnel_id: str) -> dict[str, Any]:
        """Start a backfill of the range's first day to today (not yet run)."""
        path = f"/v1/funnels/{funnel_id}/backfill"
        status, job = self.stack.api.request("POST", path, self.write, {"from": RANGE["from"]})
        assert status == 202, job
        return dict(job)

    def job(self, job_id: str) -> dict[str, Any]:
        status, job = self.stack.api.request("GET", f"/v1/jobs/{job_id}", self.read)
        assert status == 200, job
        return dict(job)

    def report(self, funnel_id: str) -> dict[str, Any]:
        path = f"/v1/reports/funnels/{funnel_id}"
        status, report = self.stack.api.request("GET", path, self.read, query=RANGE)
        assert status == 200, report
        return dict(report)

    def numbers(self, funnel_id: str) -> dict[str, Any]:
        """The funnel's report, without what tells one funnel from another."""
        named = ("funnel_id", "name", "created_at")
        return {k: v for k, v in self.report(funnel_id).items() if k not in named}

    def records(self, funnel_id: str) -> dict[str, Any]:
        """Each conversion's record of the funnel (None: on none of its steps)."""
        return {
            item["conversion_id"]: (item.get("funnels") or {}).get(funnel_id)
            for item in self.stack.items()
            if item.get("kind") == "conversion"
        }

    def kept(self) -> list[dict[str, Any]]:
        """Every item but the jobs and their locks."""
        return [i for i in self.stack.items() if i.get("kind") not in ("job", "job_lock")]


def _steps(report: dict[str, Any]) -> list[tuple[int, int, int]]:
    return [(s["entered"], s["converted"], s["drop_off"]) for s in report["steps"]]


def _counts(job: dict[str, Any]) -> tuple[Any, ...]:
    return job["status"], job["processed"], job["total"], job["counted"], job["void"]


def test_a_funnel_created_later_and_backfilled_reports_as_if_it_had_existed_all_along(
    stack: InProcessStack,
) -> None:
    shop = Shop(stack)
    send(stack, shop.write, *CHECKOUT)
    later = shop.funnel("Created later")
    # Without a backfill a funnel counts from its creation on (the report says when):
    # nothing of the past.
    before = shop.report(later)
    assert _steps(before) == [(0, 0, 0)] * 3
    assert before["created_at"] > CHECKOUT[-1]["occurred_at"]

    started = shop.backfill(later)
    assert (started["kind"], started["funnel_id"], started["status"]) == (
        "funnel_backfill",
        later,
        "queued",
    )
    assert "goal_id" not in started
    stack.run_backfills()
    job = shop.job(started["job_id"])

    events = len(CHECKOUT)
    assert _counts(job) == ("done", events, events, ON_A_STEP, ON_NONE)
    assert _steps(shop.report(later)) == CHECKOUT_STEPS
    assert shop.numbers(later) == shop.numbers(shop.along)  # medians and days too
    assert shop.records(later) == shop.records(shop.along)  # same previous steps, seconds
    assert assert_funnels_equal_a_recount(stack.items()) == 2 * ON_A_STEP

    # Run again: the same counts, and not one item changed.
    kept = shop.kept()
    again = shop.backfill(later)
    stack.run_backfills()
    assert _counts(shop.job(again["job_id"])) == _counts(job)
    assert shop.kept() == kept


# Events that arrive while the backfill runs: v2, who landed in the past, fills the
# form (it rests on the past landing); v7 lands and fills the form; v1's thank-you
# page is delivered again. Then: landing 6; form 6 entered, 5 converted; thanks 5, 2.
LIVE = [
    trigger("v2-f", "form", 7200, visitor_id="v2"),
    page("v7-l", "v7", "landing", 100),
    trigger("v7-f", "form", 200, visitor_id="v7"),
    CHECKOUT[2],
]
RACED_STEPS = [(6, 6, 0), (6, 5, 1), (5, 2, 3)]


@pytest.mark.parametrize(
    "race", ["evaluation first", "backfill first", "evaluation between read and write"]
)
def test_evaluation_racing_a_funnel_backfill_counts_each_step_once(
    stack: InProcessStack, ingest_in_order: None, monkeypatch: pytest.MonkeyPatch, race: str
) -> None:
    """(The live events are stored and decided in the order sent, so the funnel that
    existed all along decides them in time order too.)"""
    shop = Shop(stack)
    send(stack, shop.write, *CHECKOUT)
    later = shop.funnel("Created later")
    status, answer = stack.api.request("POST", "/v1/events", shop.write, {"events": LIVE})
    assert status == 202, answer  # stored, not yet evaluated: they race the job
    job = shop.backfill(later)

    if race == "evaluation first":
        stack.evaluate_pending()
        stack.run_backfills()
    elif race == "backfill first":
        stack.run_backfills()
        stack.evaluate_pending()
    else:
        # Evaluation decides the live events after the job read the page's conversions
        # and before it puts v2's landing on the funnel: v2's form, decided without it,
        # is judged again when the job reads the page once more.
        read = Decisions.counted_conversions

        def read_then_evaluate(door: Decisions, *args: Any) -> Any:
            found = read(door, *args)
            monkeypatch.setattr(Decisions, "counted_conversions", read)
            stack.evaluate_pending()
            return found

        monkeypatch.setattr(Decisions, "counted_conversions", read_then_evaluate)
        stack.run_backfills()
        assert Decisions.counted_conversions is read, "the race never happened"

    assert shop.job(job["job_id"])["status"] == "done"
    assert _steps(shop.report(later)) == RACED_STEPS
    assert shop.numbers(later) == shop.numbers(shop.along)
    assert shop.records(later) == shop.records(shop.along)
    assert_funnels_equal_a_recount(stack.items())


def test_a_funnel_backfill_is_refused_while_one_runs_and_ends_with_its_funnel(
    stack: InProcessStack,
) -> None:
    shop = Shop(stack)
    first = shop.backfill(shop.along)
    path = f"/v1/funnels/{shop.along}/backfill"
    status, refused = stack.api.request("POST", path, shop.write, {"from": RANGE["from"]})
    assert status == 409, refused
    assert refused["error"]["fields"] == [
        {"field": "funnel_id", "reason": f"has a backfill running: {first['job_id']}"}
    ]
    status, refused = stack.api.request("POST", path, shop.write, {"from": "2026-13-01"})
    assert status == 400 and refused["error"]["fields"][0]["field"] == "from", refused
    stack.run_backfills()
    assert shop.job(first["job_id"])["status"] == "done"

    # A funnel deleted while its backfill waits to run: the job ends, failed, saying so.
    second = shop.backfill(shop.along)
    assert stack.api.request("DELETE", f"/v1/funnels/{shop.along}", shop.write)[0] == 200
    stack.run_backfills()
    ended = shop.job(second["job_id"])
    assert (ended["status"], ended["error"]) == ("failed", DELETED_FUNNEL)
    status, refused = stack.api.request("POST", path, shop.write, {"from": RANGE["from"]})
    assert status == 404, refused


def test_a_page_that_fails_half_way_is_run_again_and_counts_nothing_twice(
    stack: InProcessStack, small_pages: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = Shop(stack)
    send(stack, shop.write, *CHECKOUT)
    later = shop.funnel("Created later")
    put = Decisions.put_on_funnel_step
    calls: list[int] = []

    def failing_once(door: Decisions, fill: StepFill) -> bool:
        calls.append(1)
        if len(calls) == 5:  # after some steps of the page were written, not all
            raise RuntimeError("injected defect")
        return put(door, fill)

    monkeypatch.setattr(Decisions, "put_on_funnel_step", failing_once)
    job = shop.backfill(later)
    stack.run_backfills()

    assert len(calls) > 5, "the failure never happened"
    assert _counts(shop.job(job["job_id"])) == ("done", 16, 16, ON_A_STEP, ON_NONE)
    assert shop.numbers(later) == shop.numbers(shop.along)
    assert shop.records(later) == shop.records(shop.along)
    assert_funnels_equal_a_recount(stack.items())
