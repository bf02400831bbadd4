"""Site keys: the key a web page publishes. It sends events (in the x-api-key header,
or as ?key= from a beacon that cannot set headers), from its allowed origins when it
names some, and does nothing else; no other key travels in a URL. The admin key
repairs any account's keys, and says so in the log."""

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from goalkeeper import keys
from support.stack import ADMIN_KEY, TABLE, InProcessStack

SHOP = "https://shop.example"
PAGE_VIEW = {"type": "page_view", "visitor_id": "v-1", "url": f"{SHOP}/"}


def _event_items(stack: InProcessStack) -> list[dict[str, Any]]:
    return [item for item in stack.items() if item.get("kind") == "event"]


def _beacon(
    stack: InProcessStack,
    key: str | None,
    event: dict[str, Any],
    origin: str | None = SHOP,
    in_header: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """What navigator.sendBeacon sends: a text/plain POST, the key in the URL, the
    page's Origin. The answer: status, body, headers."""
    response = stack.api.response(
        "POST",
        "/v1/events",
        in_header,
        raw=json.dumps(event),
        query=None if key is None else {"key": key},
        headers={"Content-Type": "text/plain;charset=UTF-8"}
        | ({"Origin": origin} if origin else {}),
    )
    text = response.get_data(as_text=True)
    return response.status_code, json.loads(text), dict(response.headers)


def _issue(stack: InProcessStack, key: str, body: dict[str, Any]) -> dict[str, Any]:
    status, issued = stack.api.request("POST", "/v1/keys", key, body)
    assert status == 201, issued
    return issued


def test_a_new_account_has_a_site_key_that_sends_events_from_a_page(
    stack: InProcessStack,
) -> None:
    keys = stack.new_account()["keys"]
    site = keys["site"]
    assert site.startswith("gk_site_")

    # A beacon: text/plain (no CORS preflight), the key as ?key=, an Origin.
    status, body, headers = _beacon(stack, site, PAGE_VIEW | {"event_id": "pv-1"})
    assert (status, body) == (202, {"accepted": ["pv-1"], "duplicates": []})
    assert headers["Access-Control-Allow-Origin"] == "*"  # fetch() can read the answer
    # And from code that can set headers.
    status, body = stack.api.request("POST", "/v1/events", site, PAGE_VIEW | {"event_id": "pv-2"})
    assert (status, body) == (202, {"accepted": ["pv-2"], "duplicates": []})

    stack.evaluate_pending()
    status, trace = stack.api.request("GET", "/v1/visitors/v-1/trace", keys["read"])
    assert status == 200, trace
    assert [item["event_id"] for item in trace["items"]] == ["pv-1", "pv-2"]
    # The key never reaches the stored event or anything of the table.
    assert site not in json.dumps(stack.items(), default=str)


def test_a_site_key_can_do_nothing_but_send_events(stack: InProcessStack) -> None:
    account = stack.new_account()
    site, write = account["keys"]["site"], account["keys"]["write"]
    goal_id = stack.add_goals(write, [{"name": "Lead", "rule": {"kind": "lead"}}])[0]
    before = stack.items()
    for method, path, body in (
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys", {"role": "site"}),
        ("POST", "/v1/goals", {"name": "x", "rule": {"kind": "lead"}}),
        ("DELETE", f"/v1/goals/{goal_id}", None),
        ("GET", "/v1/goals", None),
        ("PUT", "/v1/account", {"attribution": {"model": "first_touch"}}),
        ("GET", "/v1/reports/goals", None),
        ("GET", f"/v1/accounts/{account['account_id']}/keys", None),
    ):
        for sent in ({"key": site}, {"query": {"key": site}}):
            key, query = sent.get("key"), sent.get("query")
            status, answer = stack.api.request(method, path, key, body, query)
            assert status == 403, (method, path, sent, answer)
            assert "not a site key" in answer["error"]["message"], answer
    assert stack.items() == before


@pytest.mark.parametrize("role", ["write", "read", "admin"])
def test_no_other_key_may_travel_in_the_url(stack: InProcessStack, role: str) -> None:
    keys = stack.new_account()["keys"] | {"admin": ADMIN_KEY}
    for method, path in (("POST", "/v1/events"), ("GET", "/v1/goals"), ("GET", "/v1/keys")):
        response = stack.api.response(
            method, path, query={"key": keys[role]}, body=PAGE_VIEW if method == "POST" else None
        )
        answer = response.get_json()
        assert response.status_code == 401, (path, answer)
        assert answer["error"]["message"] == (
            "only a site key (gk_site_...) may be sent as ?key=; send other keys in the "
            "x-api-key header (and revoke one that was in a URL)"
        )
        assert keys[role] not in response.get_data(as_text=True)
    assert _event_items(stack) == []


def test_a_key_is_sent_once(stack: InProcessStack) -> None:
    keys = stack.new_account()["keys"]
    status, body, _ = _beacon(stack, keys["site"], PAGE_VIEW, in_header=keys["site"])
    assert status == 401
    assert body["error"]["message"] == "send the key once: in the x-api-key header or as ?key="
    response = stack.api.response(
        "POST", "/v1/events", body=PAGE_VIEW, query={"key": [keys["site"], keys["site"]]}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == [{"field": "key", "reason": "send one key"}]
    assert _event_items(stack) == []


def test_a_site_key_with_allowed_origins_serves_those_origins_only(
    stack: InProcessStack,
) -> None:
    write = stack.new_account()["keys"]["write"]
    issued = _issue(
        stack,
        write,
        {
            "role": "site",
            "label": "shop",
            "allowed_origins": [SHOP, "HTTPS://WWW.Shop.example:443/"],
        },
    )
    # Stored as browsers write Origin: lower case, no default port, no slash.
    assert issued["allowed_origins"] == [SHOP, "https://www.shop.example"]
    assert issued["key"].startswith("gk_site_") and issued["role"] == "site"
    site = issued["key"]

    for origin, reason in (
        (
            "https://evil.example",
            "this site key does not accept requests from origin 'https://evil.example'",
        ),
        (
            "http://shop.example",
            "this site key does not accept requests from origin 'http://shop.example'",
        ),
        ("null", "this site key does not accept requests from origin 'null'"),
        (
            None,
            "this site key accepts requests from its allowed origins only, "
            "and this request names no Origin",
        ),
    ):
        status, body, headers = _beacon(stack, site, PAGE_VIEW, origin=origin)
        assert (status, body["error"]["message"]) == (403, reason), origin
        assert headers["Access-Control-Allow-Origin"] == "*"  # the page can see why
    assert _event_items(stack) == []

    for number, origin in enumerate((SHOP, "https://www.shop.example")):
        event = PAGE_VIEW | {"event_id": f"pv-{number}"}
        assert _beacon(stack, site, event, origin=origin)[:2] == (
            202,
            {"accepted": [f"pv-{number}"], "duplicates": []},
        )
    # The account's first site key names no origins: any page may use it.
    listed = stack.api.request("GET", "/v1/keys", write)[1]["keys"]
    assert sorted((k["role"], k["allowed_origins"] or []) for k in listed) == [
        ("site", []),
        ("site", [SHOP, "https://www.shop.example"]),
        ("write", []),
    ]


def test_allowed_origins_are_validated(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    before = len(stack.items())
    for body, field, reason in (
        ({"allowed_origins": [SHOP]}, "allowed_origins", "only a site key"),
        ({"role": "site", "allowed_origins": []}, "allowed_origins", "at least 1 item"),
        ({"role": "site", "allowed_origins": ["shop.example"]}, "allowed_origins[0]", "origin"),
        ({"role": "site", "allowed_origins": [f"{SHOP}/cart"]}, "allowed_origins[0]", "no path"),
        ({"role": "site", "allowed_origins": ["ftp://shop.example"]}, "allowed_origins[0]", ""),
        ({"role": "site", "allowed_origins": [SHOP] * 21}, "allowed_origins", "at most 20"),
    ):
        status, answer = stack.api.request("POST", "/v1/keys", write, body)
        assert status == 400, (body, answer)
        fields = {f["field"]: f["reason"] for f in answer["error"]["fields"]}
        assert reason in fields.get(field, "<none>"), (body, answer)
    assert len(stack.items()) == before


def test_a_browser_may_leave_referrer_and_title_empty(stack: InProcessStack) -> None:
    account = stack.new_account()
    status, body, _ = _beacon(
        stack,
        account["keys"]["site"],
        PAGE_VIEW | {"event_id": "pv-direct", "referrer": "", "title": ""},
    )
    assert (status, body) == (202, {"accepted": ["pv-direct"], "duplicates": []})
    (stored,) = _event_items(stack)
    assert "referrer" not in stored["body"] and "title" not in stored["body"]
    # An empty referrer is a direct entry (a touch of the direct family), as an absent one is.
    assert stored["gsi4sk"] == keys.touch_sk(True, stored["occurred_at"], "pv-direct")


def test_an_account_created_before_site_keys_gets_one_from_its_write_key(
    stack: InProcessStack,
) -> None:
    account = stack.new_account()
    write, site = account["keys"]["write"], account["keys"]["site"]
    _forget_site_keys(stack, account["account_id"])
    assert _beacon(stack, site, PAGE_VIEW)[0] == 401
    assert [k["role"] for k in stack.api.request("GET", "/v1/keys", write)[1]["keys"]] == ["write"]

    new_site = _issue(stack, write, {"role": "site"})["key"]
    assert _beacon(stack, new_site, PAGE_VIEW | {"event_id": "pv-1"})[0] == 202
    assert (
        stack.api.request("POST", "/v1/events", write, PAGE_VIEW | {"event_id": "pv-2"})[0] == 202
    )


def _forget_site_keys(stack: InProcessStack, account_id: str) -> None:
    """The account as it was stored before site keys existed."""
    for item in stack.items():
        if item.get("role") == "site" and item.get("account_id") == account_id:
            stack.client.delete_item(
                TableName=TABLE, Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}}
            )
    stack.client.update_item(
        TableName=TABLE,
        Key={name: {"S": value} for name, value in keys.account(account_id).items()},
        UpdateExpression="REMOVE active_keys_site",
    )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def audit_log() -> Iterator[list[logging.LogRecord]]:
    """What the functions' Powertools logger (named after the service) writes."""
    handler = _Records()
    logger = logging.getLogger("goalkeeper")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def test_the_admin_repairs_an_accounts_keys_and_the_log_says_so(
    stack: InProcessStack, audit_log: list[logging.LogRecord]
) -> None:
    account = stack.new_account()
    account_id, lost = account["account_id"], account["keys"]["write"]
    path = f"/v1/accounts/{account_id}/keys"

    status, listed = stack.api.request("GET", path, ADMIN_KEY)
    assert status == 200, listed
    assert sorted(k["role"] for k in listed["keys"]) == ["read", "site", "write"]
    (lost_id,) = [k["key_id"] for k in listed["keys"] if k["role"] == "write"]

    status, body = stack.api.request("POST", path, ADMIN_KEY, {})
    assert (status, body["error"]["fields"]) == (
        400,
        [{"field": "role", "reason": "is required when the admin key issues a key"}],
    )
    status, fresh = stack.api.request("POST", path, ADMIN_KEY, {"role": "write", "label": "new"})
    assert status == 201, fresh
    status, revoked = stack.api.request("DELETE", f"{path}/{lost_id}", ADMIN_KEY)
    assert (status, revoked["key_id"], revoked["revoked_at"] is not None) == (200, lost_id, True)

    assert stack.api.request("POST", "/v1/events", lost, PAGE_VIEW)[0] == 401
    assert stack.api.request("POST", "/v1/events", fresh["key"], PAGE_VIEW)[0] == 202
    # The account's own keys see the repair.
    own = stack.api.request("GET", "/v1/keys", fresh["key"])[1]["keys"]
    assert {(k["key_id"], k["revoked_at"] is not None) for k in own if k["role"] == "write"} == {
        (lost_id, True),
        (fresh["key_id"], False),
    }

    audit = [
        (
            r.getMessage(),
            getattr(r, "by", None),
            getattr(r, "account_id", None),
            getattr(r, "key_id", None),
            getattr(r, "role", None),
        )
        for r in audit_log
        if getattr(r, "by", None) == "admin"
    ]
    assert audit == [
        ("api keys listed", "admin", account_id, None, None),
        ("api key issued", "admin", account_id, fresh["key_id"], "write"),
        ("api key revoked", "admin", account_id, lost_id, "write"),
    ]
    assert not any(fresh["key"] in json.dumps(r.__dict__, default=str) for r in audit_log)


def test_recovery_routes_name_an_existing_account_and_its_own_keys(stack: InProcessStack) -> None:
    a, b = stack.new_account(), stack.new_account()
    b_write_id = next(
        k["key_id"]
        for k in stack.api.request("GET", f"/v1/accounts/{b['account_id']}/keys", ADMIN_KEY)[1][
            "keys"
        ]
        if k["role"] == "write"
    )
    missing = "/v1/accounts/acc_0000000000000000/keys"
    assert stack.api.request("GET", missing, ADMIN_KEY)[0] == 404
    assert stack.api.request("POST", missing, ADMIN_KEY, {"role": "write"})[0] == 404
    # B's key is no key of A's, even for the admin.
    status, body = stack.api.request(
        "DELETE", f"/v1/accounts/{a['account_id']}/keys/{b_write_id}", ADMIN_KEY
    )
    assert status == 404, body
    assert stack.api.request("POST", "/v1/events", b["keys"]["write"], PAGE_VIEW)[0] == 202
