"""Prerequisite goals and funnels (issue 19) on the in-process stack: a goal that
requires another counts only after it, within its window, decided in the deciding
write; a funnel's report, from counters kept by those writes, equals hand-computed
numbers and a recount of the conversion items."""

from goalkeeper.steps import bucket_value, seconds_bucket
from support.funnel_recount import assert_funnels_equal_a_recount
from support.funnel_workload import (
    CHECKOUT,
    DAY,
    FORM,
    LANDING,
    RANGE,
    THANKS,
    page,
    send,
    stored_conversions,
    trigger,
)
from support.stack import InProcessStack


def test_a_three_step_funnel_counts_what_a_hand_count_says(stack: InProcessStack) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    landing, form, thanks = stack.add_goals(write, [LANDING, FORM, THANKS])
    status, funnel = stack.api.request(
        "POST",
        "/v1/funnels",
        write,
        {"name": "Checkout", "steps": [landing, form, thanks], "window_days": 7},
    )
    assert status == 201, funnel
    send(stack, write, *CHECKOUT)
    status, report = stack.api.request(
        "GET", f"/v1/reports/funnels/{funnel['funnel_id']}", read, query=RANGE
    )
    assert status == 200, report
    steps = [
        {k: s[k] for k in ("goal_id", "entered", "converted", "drop_off")} for s in report["steps"]
    ]
    assert steps == [
        {"goal_id": landing, "entered": 5, "converted": 5, "drop_off": 0},
        {"goal_id": form, "entered": 5, "converted": 3, "drop_off": 2},
        {"goal_id": thanks, "entered": 3, "converted": 2, "drop_off": 1},
    ]
    # Medians: of 300, 1200, 7200 s -> 1200; of 60, 1800 s -> 60 (the lower median).
    assert report["steps"][0]["median_seconds_to_convert"] is None
    for step, seconds in ((1, 1200), (2, 60)):
        row = report["steps"][step]
        assert row["median_seconds_to_convert"] == bucket_value(seconds_bucket(seconds))
        low, high = row["median_seconds_range"]
        assert (
            low <= seconds <= high
            and abs(row["median_seconds_to_convert"] - seconds) <= 0.1 * seconds
        )
    # Per day summable: only 10 November holds funnel steps (v3's form is no step).
    by_day = {
        day["date"]: day["steps"]
        for day in report["days"]
        if any(s["converted"] for s in day["steps"])
    }
    assert list(by_day) == ["2026-11-10"]
    assert [s["converted"] for s in by_day["2026-11-10"]] == [5, 3, 2]
    assert len(report["days"]) == 30
    conversions = stored_conversions(stack)
    assert conversions[("v1-t", "Thanks")]["funnels"][funnel["funnel_id"]] == {
        "step": 3,
        "previous_conversion": conversions[("v1-f", "Form")]["conversion_id"],
        "seconds_to_convert": 60,
    }
    assert "funnels" not in conversions[("v2-t", "Thanks")]  # counted as a goal, not a step
    assert conversions[("v2-t", "Thanks")]["status"] == "counted"
    assert assert_funnels_equal_a_recount(stack.items()) == 10

    # Listing, reading and deleting; a deleted funnel stops counting, its report stays.
    assert stack.api.request("GET", "/v1/funnels", read)[1]["funnels"] == [funnel]
    assert stack.api.request("GET", f"/v1/funnels/{funnel['funnel_id']}", write) == (200, funnel)
    status, deleted = stack.api.request("DELETE", f"/v1/funnels/{funnel['funnel_id']}", write)
    assert (status, deleted["active"]) == (200, False)
    assert stack.api.request("GET", "/v1/funnels", read)[1]["funnels"] == []
    send(stack, write, page("v9-l", "v9", "landing", 0))
    status, after = stack.api.request(
        "GET", f"/v1/reports/funnels/{funnel['funnel_id']}", read, query=RANGE
    )
    assert (status, after["steps"][0]["converted"]) == (200, 5)


def test_a_prerequisite_is_decided_in_the_write_and_first_decided_wins(
    stack: InProcessStack,
) -> None:
    write = stack.new_account()["keys"]["write"]
    (form,) = stack.add_goals(write, [FORM])
    purchase_spec = {
        "name": "Purchase",
        "rule": {"kind": "custom_trigger", "name": "buy"},
        "requires": {"goal_id": form, "within_days": 2},
    }
    (purchase,) = stack.add_goals(write, [purchase_spec])
    send(
        stack,
        write,
        trigger("a-f", "form", 0, visitor_id="a"),
        trigger("a-b", "buy", DAY, visitor_id="a"),
        trigger("b-b", "buy", 0, visitor_id="b"),  # never filled the form
        trigger("c-f", "form", 0, visitor_id="c"),
        trigger("c-b", "buy", 3 * DAY, visitor_id="c"),
        # d's purchase is decided before the earlier form arrives: void, and it stays so.
        trigger("d-b", "buy", 3600, visitor_id="d"),
        trigger("d-f", "form", 0, visitor_id="d"),
        # A contact without a visitor (a CRM) is its own subject.
        trigger("e-f", "form", 0, contact_id="crm-1"),
        trigger("e-b", "buy", 60, contact_id="crm-1"),
    )
    conversions = stored_conversions(stack)
    status = {
        event: conversions[(event, "Purchase")]["status"]
        for event in ("a-b", "b-b", "c-b", "d-b", "e-b")
    }
    assert status == {
        "a-b": "counted",
        "b-b": "void",
        "c-b": "void",
        "d-b": "void",
        "e-b": "counted",
    }
    assert conversions[("d-f", "Form")]["status"] == "counted"
    assert conversions[("b-b", "Purchase")]["reason"] == (
        f"prerequisite not met: no counted conversion of goal {form} within 2 days before"
    )
    assert (
        conversions[("a-b", "Purchase")]["prerequisite_conversion"]
        == conversions[("a-f", "Form")]["conversion_id"]
    )
    assert_funnels_equal_a_recount(stack.items())
    # A dry-run judges the requirement against the forms stored now: d's form, which
    # arrived after d's purchase was decided, would now let it count.
    dry = {"goal": purchase_spec, **RANGE}
    status, tried = stack.api.request("POST", "/v1/goals/dry-run", write, dry)
    assert status == 200, tried
    assert (tried["matched"], tried["would_count"]) == (5, 3), tried
    # A goal reached by the very event of its required goal: that event is not earlier
    # (and the two goals' writes are decided apart: one item, one operation).
    stack.add_goals(
        write, [dict(FORM, name="Form again", requires={"goal_id": form, "within_days": 2})]
    )
    send(stack, write, trigger("g-f", "form", 0, visitor_id="g"))
    conversions = stored_conversions(stack)
    assert conversions[("g-f", "Form")]["status"] == "counted"
    assert conversions[("g-f", "Form again")]["status"] == "void"
    send(stack, write, trigger("g-f2", "form", 60, visitor_id="g"))
    assert stored_conversions(stack)[("g-f2", "Form again")]["status"] == "counted"
    assert_funnels_equal_a_recount(stack.items())
    # Validation: an unknown goal, a cycle, a goal requiring itself.
    for goal_id, spec_goal in (("goal_unknown", None), (purchase, form), (form, form)):
        spec = dict(FORM, requires={"goal_id": goal_id, "within_days": 1})
        if spec_goal is None:
            status_code, answer = stack.api.request("POST", "/v1/goals", write, spec)
        else:
            status_code, answer = stack.api.request("PUT", f"/v1/goals/{spec_goal}", write, spec)
        assert status_code == 400, answer
        assert answer["error"]["fields"][0]["field"] == "requires.goal_id", answer


def test_funnel_definitions_are_checked(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    landing, form = stack.add_goals(write, [LANDING, FORM])
    for body, field in (
        ({"name": "x", "steps": [landing]}, "steps"),
        ({"name": "x", "steps": [landing, landing]}, "steps"),
        ({"name": "x", "steps": [landing, "goal_nope"]}, "steps.1"),
        ({"name": "x", "steps": [landing, form], "window_days": 0}, "window_days"),
    ):
        status, answer = stack.api.request("POST", "/v1/funnels", write, body)
        assert status == 400, answer
        assert answer["error"]["fields"][0]["field"] == field, answer
    for _ in range(3):
        assert (
            stack.api.request(
                "POST", "/v1/funnels", write, {"name": "x", "steps": [landing, form]}
            )[0]
            == 201
        )
    status, answer = stack.api.request(
        "POST", "/v1/funnels", write, {"name": "x", "steps": [form, landing]}
    )
    assert status == 409, answer
