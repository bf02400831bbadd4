"""What every client meets first: keys, roles, body handling and the error shape."""

import json
from datetime import UTC, datetime

import pytest

from goalkeeper_cli.local_stack.template import load_template
from support.stack import ADMIN_KEY, InProcessStack

GOOD_CALL = {"type": "call", "call_id": "c-1", "connected": True, "bridged_seconds": 61}


def _event_items(stack: InProcessStack) -> list[dict]:
    return [item for item in stack.items() if item.get("kind") == "event"]


def test_missing_and_unknown_keys_are_401(stack: InProcessStack) -> None:
    assert stack.api.request("POST", "/v1/events", None, GOOD_CALL)[0] == 401
    status, body = stack.api.request("POST", "/v1/events", "gk_write_nope", GOOD_CALL)
    assert status == 401
    assert body["error"]["code"] == "unauthenticated"
    assert _event_items(stack) == []


def test_keys_of_the_wrong_role_are_403(stack: InProcessStack) -> None:
    keys = stack.new_account()["keys"]
    assert stack.api.request("POST", "/v1/events", keys["read"], GOOD_CALL)[0] == 403
    assert stack.api.request("GET", "/v1/reports/goals", keys["write"])[0] == 403
    assert stack.api.request("POST", "/v1/accounts", keys["write"], {})[0] == 403
    assert _event_items(stack) == []


def test_a_wrong_role_is_named_in_plain_english(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    status, body = stack.api.request("POST", "/v1/accounts", write, {})
    assert (status, body["error"]["message"]) == (
        403,
        "this route needs an admin key, not a write key",
    )
    status, body = stack.api.request("GET", "/v1/goals", ADMIN_KEY)
    assert (status, body["error"]["message"]) == (
        403,
        "this route needs a read or write key, not an admin key",
    )


def test_errors_answered_before_any_route_are_written_like_every_other_error(
    stack: InProcessStack,
) -> None:
    """A 401 (and a 413) is answered before Powertools routes the request; its body is
    the same compact JSON of the one error shape as a route's 403 or 400."""
    read = stack.new_account()["keys"]["read"]
    huge = json.dumps(GOOD_CALL | {"padding": "x" * (256 * 1024)})
    answers = {
        401: stack.api.response("POST", "/v1/events", "gk_write_nope", GOOD_CALL),
        413: stack.api.response("POST", "/v1/events", read, raw=huge),
        403: stack.api.response("POST", "/v1/events", read, GOOD_CALL),
        400: stack.api.response("GET", "/v1/goals?fromm=1", read),
    }
    for status, response in answers.items():
        text = response.get_data(as_text=True)
        body = json.loads(text)
        assert response.status_code == status
        assert response.content_type == "application/json"
        assert list(body) == ["error"] and list(body["error"]) == ["code", "message", "fields"]
        assert text == json.dumps(body, separators=(",", ":")), status


def test_a_batch_with_one_bad_event_is_rejected_whole_naming_the_field(
    stack: InProcessStack,
) -> None:
    write = stack.new_account()["keys"]["write"]
    bad = GOOD_CALL | {"call_id": "c-2", "bridged_seconds": -1, "colour": "red"}
    status, body = stack.api.request("POST", "/v1/events", write, {"events": [GOOD_CALL, bad]})
    assert status == 400
    problems = {(f["field"], f["reason"]) for f in body["error"]["fields"]}
    assert ("events[1].colour", "unknown field") in problems
    assert any(field == "events[1].bridged_seconds" for field, _ in problems)
    assert _event_items(stack) == []


def test_bodies_are_json_whatever_the_content_type_says(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    response = stack.api.response(
        "POST",
        "/v1/events",
        write,
        raw=json.dumps(GOOD_CALL),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 202
    assert len(_event_items(stack)) == 1


def test_oversized_bodies_are_413_and_store_nothing(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    huge = json.dumps(GOOD_CALL | {"padding": "x" * (256 * 1024)})
    status, body = stack.api.request("POST", "/v1/events", write, raw=huge)
    assert status == 413
    assert body["error"]["fields"] == [{"field": "body", "reason": "larger than 262144 bytes"}]
    assert _event_items(stack) == []


def test_cors_preflight_is_answered_without_a_key(stack: InProcessStack) -> None:
    response = stack.api.response(
        "OPTIONS",
        "/v1/events",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.get_data() == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "x-api-key" in response.headers["Access-Control-Allow-Headers"].lower()
    # What template.yaml's Cors tells API Gateway to answer (its values are quoted).
    cors = load_template()["Resources"]["Api"]["Properties"]["Cors"]
    expected = {
        "Access-Control-Allow-Origin": cors["AllowOrigin"].strip("'"),
        "Access-Control-Allow-Headers": cors["AllowHeaders"].strip("'"),
        "Access-Control-Allow-Methods": cors["AllowMethods"].strip("'"),
        "Access-Control-Max-Age": cors["MaxAge"].strip("'"),
    }
    assert {name: response.headers.get(name) for name in expected} == expected
    assert stack.items() == []


def test_a_full_batch_is_stored_several_at_a_time_and_answered_in_the_order_sent(
    stack: InProcessStack,
) -> None:
    """Events of a request are written concurrently (GOALKEEPER_INGEST_WRITE_CONCURRENCY);
    the answer still lists ids in the order sent, each new id once as accepted, and
    an id stored earlier, or repeated within the batch, as a duplicate."""
    write = stack.new_account()["keys"]["write"]
    earlier = [GOOD_CALL | {"event_id": f"e-{n:03d}", "call_id": f"c-{n}"} for n in (7, 50)]
    assert stack.api.request("POST", "/v1/events", write, {"events": earlier})[0] == 202
    batch = [GOOD_CALL | {"event_id": f"e-{n:03d}", "call_id": f"c-{n}"} for n in range(99)]
    batch.append(batch[20])
    status, body = stack.api.request("POST", "/v1/events", write, {"events": batch})
    assert status == 202
    assert body["accepted"] == [f"e-{n:03d}" for n in range(99) if n not in (7, 50)]
    assert body["duplicates"] == ["e-007", "e-050", "e-020"]
    assert len(_event_items(stack)) == 99


# -- every route, hostile input (issue 12, finding 9) --------------------------------

GOAL_SPEC = {"name": "Signup", "rule": {"kind": "custom_trigger", "name": "signup"}}
BODIES = {
    ("POST", "/v1/accounts"): {},
    ("POST", "/v1/events"): GOOD_CALL,
    ("POST", "/v1/goals"): GOAL_SPEC,
    ("POST", "/v1/goals/dry-run"): {"goal": GOAL_SPEC},
    ("PUT", "/v1/goals/{goal_id}"): GOAL_SPEC,
    ("POST", "/v1/keys"): {},
    ("POST", "/v1/accounts/{account_id}/keys"): {"role": "write"},
    ("PUT", "/v1/account"): {"attribution": {"model": "last_touch"}},
    ("POST", "/v1/goals/{goal_id}/backfill"): {"from": str(datetime.now(UTC).date())},
    ("POST", "/segment/v1/batch"): {"batch": []},
    ("POST", "/segment/v1/track"): {"anonymousId": "a", "event": "E"},
    ("POST", "/segment/v1/page"): {"anonymousId": "a", "properties": {"url": "https://s/"}},
    ("POST", "/segment/v1/identify"): {"anonymousId": "a", "userId": "c"},
    ("POST", "/v1/webhooks"): {"url": "http://localhost:9/hooks"},
    ("POST", "/v1/funnels"): {"name": "Checkout", "steps": ["goal_a", "goal_b"]},
    ("PUT", "/v1/integrations/twilio"): {"auth_token": "0123456789abcdef0123456789abcdef"},
    ("POST", "/v1/numbers"): {
        "number": "+442079460001",
        "kind": "pool",
        "replaces": "+442079460000",
    },
    ("POST", "/v1/numbers/assign"): {
        "visitor_id": "v",
        "visit_id": "s",
        "replaces": "+442079460000",
    },
    ("POST", "/v1/funnels/{funnel_id}/backfill"): {"from": str(datetime.now(UTC).date())},
    ("POST", "/v1/conversions/{conversion_id}/adjustments"): {
        "adjustment_id": "refund-1",
        "type": "retract",
        "reason": "refunded",
    },
}
ADMIN_ROUTES = {
    ("POST", "/v1/accounts"),
    ("GET", "/v1/accounts/{account_id}/keys"),
    ("POST", "/v1/accounts/{account_id}/keys"),
    ("DELETE", "/v1/accounts/{account_id}/keys/{key_id}"),
}
# The public static files, each at a path it serves.
PUBLIC_ROUTES = {
    ("GET", "/v1/tracker.js"): "/v1/tracker.js",
    ("GET", "/"): "/",
    ("GET", "/dashboard/{file}"): "/dashboard/app.js",
}


def _routes() -> list[tuple[str, str]]:
    from goalkeeper_cli.local_stack.template import api_routes, load_template

    return [(route.method, route.path) for route in api_routes(load_template())]


def _request_parts(stack: InProcessStack, method: str, template: str) -> tuple[str, str]:
    """A key of the right role and a concrete path for the route template."""
    from support.stack import ADMIN_KEY

    account = stack.new_account()
    keys = account["keys"]
    goal_id = stack.api.request("GET", "/v1/goals", keys["read"])[1]["goals"][0]["goal_id"]
    key_id = stack.api.request("GET", "/v1/keys", keys["write"])[1]["keys"][0]["key_id"]
    path = (
        template.replace("{account_id}", account["account_id"])
        .replace("{goal_id}", goal_id)
        .replace("{key_id}", key_id)
        .replace("{visitor_id}", "ann")
        .replace("{number}", "+442079460001")
        .replace("{conversion_id}", "c1")
    )
    if (method, template) in ADMIN_ROUTES:
        return ADMIN_KEY, path
    # Webhooks are the write key's, reads included (their URLs may carry tokens).
    reading = (method == "GET" and not template.startswith("/v1/webhooks")) or template.startswith(
        ("/v1/reports", "/v1/visitors")
    )
    return keys["read" if reading else "write"], path


@pytest.mark.parametrize(("method", "template"), _routes())
def test_every_route_refuses_unknown_query_parameters_naming_them(
    stack: InProcessStack, method: str, template: str
) -> None:
    if (method, template) in PUBLIC_ROUTES:
        # A script has no parameter to mistype: its query is ignored, so a page's
        # cache buster (?v=2) cannot break the page's tracking.
        path = PUBLIC_ROUTES[(method, template)]
        plain = stack.api.request(method, path)
        assert plain[0] == 200
        assert stack.api.request(method, path, query={"v": "2", "x": "1"}) == plain
        return
    key, path = _request_parts(stack, method, template)
    before = stack.items()
    status, body = stack.api.request(
        method,
        path,
        key,
        BODIES.get((method, template)),
        query={"fromm": "2026-01-01", "x": "1"},
    )
    assert status == 400, body
    problems = {(p["field"], p["reason"]) for p in body["error"]["fields"]}
    assert problems == {("fromm", "unknown query parameter"), ("x", "unknown query parameter")}
    assert stack.items() == before


def test_unknown_query_parameters_are_listed_with_the_other_problems(
    stack: InProcessStack,
) -> None:
    read = stack.new_account()["keys"]["read"]
    status, body = stack.api.request(
        "GET", "/v1/reports/attribution", read, query={"limit": "0", "dimensions": "source"}
    )
    assert status == 400, body
    fields = {p["field"] for p in body["error"]["fields"]}
    assert fields == {"limit", "dimensions"}


def test_an_unknown_route_with_a_query_is_still_404(stack: InProcessStack) -> None:
    read = stack.new_account()["keys"]["read"]
    status, body = stack.api.request("GET", "/v1/nowhere", read, query={"x": "1"})
    assert status == 404, body


HOSTILE_BODIES = {
    "lists nested 1,000 deep": '{"events": ' + "[" * 1000 + "]" * 1000 + "}",
    "lists nested 100,000 deep": '{"events": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "objects nested 30,000 deep": '{"a":' * 30_000 + "1" + "}" * 30_000,
    "integer of 5,000 digits": '{"type": "call", "call_id": "c", "connected": true, '
    '"bridged_seconds": 1' + "0" * 4999 + "}",
    "exponent beyond decimal": '{"type": "custom_trigger", "name": "t", '
    '"fields": {"n": 1e999999999999999999999}}',
}


@pytest.mark.parametrize("shape", HOSTILE_BODIES)
@pytest.mark.parametrize(("method", "template"), BODIES)
def test_bodies_too_deep_or_with_unreadable_numbers_are_400_naming_the_body(
    stack: InProcessStack, method: str, template: str, shape: str
) -> None:
    key, path = _request_parts(stack, method, template)
    before = stack.items()
    status, body = stack.api.request(method, path, key, raw=HOSTILE_BODIES[shape])
    assert status == 400, body
    (problem,) = body["error"]["fields"]
    assert problem["field"] == "body"
    assert stack.items() == before


def test_a_key_of_the_wrong_role_is_403_whatever_its_query(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    status, body = stack.api.request("GET", "/v1/reports/goals", write, query={"fromm": "x"})
    assert status == 403, body
