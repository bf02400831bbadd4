"""API keys: never stored in clear, rotated without downtime, refused the moment
they are revoked, and managed only within their own account and role."""

from typing import Any

from conftest import ADMIN_KEY, InProcessStack
from goalkeeper.auth import key_digest

CALL = {"type": "call", "call_id": "c-1", "connected": True, "bridged_seconds": 61}
KEY_FIELDS = {"key_id", "role", "prefix", "label", "created_at", "revoked_at"}


def _send_call(stack: InProcessStack, key: str) -> int:
    return stack.api.request("POST", "/v1/events", key, CALL)[0]


def _listed(stack: InProcessStack, key: str) -> list[dict[str, Any]]:
    status, body = stack.api.request("GET", "/v1/keys", key)
    assert status == 200, body
    return body["keys"]


def _key_id(stack: InProcessStack, key: str) -> str:
    """The id of a key, found by its recognisable prefix in its own role's list."""
    (match,) = [k for k in _listed(stack, key) if key.startswith(k["prefix"])]
    return match["key_id"]


def _issue(stack: InProcessStack, key: str, **body: Any) -> dict[str, Any]:
    status, issued = stack.api.request("POST", "/v1/keys", key, body)
    assert status == 201, issued
    return issued


def test_no_plaintext_key_is_stored_anywhere(stack: InProcessStack) -> None:
    plain = []
    for _ in range(2):
        keys = stack.new_account(name="Acme")["keys"]
        plain += [keys["write"], keys["read"]]
        plain += [_issue(stack, keys["write"])["key"], _issue(stack, keys["read"])["key"]]

    items = stack.items()
    text = "\n".join(map(str, items))
    for key in plain:
        secret_part = key.split("_", 2)[2]
        assert key not in text
        assert secret_part not in text
        assert secret_part[4:] not in text  # only the 4-character recognition prefix is kept
    lookups = {item["pk"] for item in items if item.get("kind") == "api_key"}
    assert lookups == {f"KEY#{key_digest(key)}" for key in plain}


def test_listing_shows_ids_and_prefixes_never_keys_or_digests(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    issued = _issue(stack, write, label="shop web site")

    assert issued["key"].startswith("gk_write_")
    assert issued["key"].startswith(issued["prefix"])
    assert len(issued["prefix"]) == len("gk_write_") + 4
    assert issued["label"] == "shop web site"
    assert issued["revoked_at"] is None
    listed = _listed(stack, write)
    assert [set(k) for k in listed] == [KEY_FIELDS, KEY_FIELDS]
    text = str(listed)
    for key in (write, issued["key"]):
        assert key not in text
        assert key_digest(key) not in text
    assert issued["key_id"] in text
    assert key_digest(issued["key"]) not in issued["key_id"]


def test_a_new_key_works_beside_the_old_until_the_old_is_revoked(stack: InProcessStack) -> None:
    old = stack.new_account()["keys"]["write"]
    new = _issue(stack, old)["key"]
    assert _send_call(stack, old) == 202
    assert _send_call(stack, new) == 202

    old_id = _key_id(stack, old)
    status, revoked = stack.api.request("DELETE", f"/v1/keys/{old_id}", new)
    assert status == 200, revoked
    assert revoked["key_id"] == old_id
    assert revoked["revoked_at"]

    # At once: the very next request with the old key is refused (no cached principals).
    status, body = stack.api.request("POST", "/v1/events", old, CALL)
    assert status == 401
    assert body["error"]["code"] == "unauthenticated"
    assert stack.api.request("GET", "/v1/goals", old)[0] == 401
    assert _send_call(stack, new) == 202

    # Revoking again changes nothing and says when it happened.
    assert stack.api.request("DELETE", f"/v1/keys/{old_id}", new) == (200, revoked)
    listed = {k["key_id"]: k for k in _listed(stack, new)}
    assert listed[old_id]["revoked_at"] == revoked["revoked_at"]


def test_a_revoked_read_key_is_refused_by_the_reports_function_too(
    stack: InProcessStack,
) -> None:
    read = stack.new_account()["keys"]["read"]
    new = _issue(stack, read)["key"]
    assert stack.api.request("GET", "/v1/reports/goals", read)[0] == 200
    assert stack.api.request("DELETE", f"/v1/keys/{_key_id(stack, read)}", new)[0] == 200
    assert stack.api.request("GET", "/v1/reports/goals", read)[0] == 401
    assert stack.api.request("GET", "/v1/reports/goals", new)[0] == 200


def test_a_key_manages_keys_of_its_own_role_only(stack: InProcessStack) -> None:
    keys = stack.new_account()["keys"]
    write, read = keys["write"], keys["read"]
    read_id = _key_id(stack, read)

    # A write key (web pages carry it in clear) can never obtain or revoke a read key.
    status, body = stack.api.request("POST", "/v1/keys", write, {"role": "read"})
    assert status == 403
    assert body["error"]["code"] == "forbidden"
    assert stack.api.request("DELETE", f"/v1/keys/{read_id}", write)[0] == 404
    assert {k["role"] for k in _listed(stack, write)} == {"write"}
    # ...nor a read key a write key.
    assert stack.api.request("POST", "/v1/keys", read, {"role": "write"})[0] == 403
    assert stack.api.request("DELETE", f"/v1/keys/{_key_id(stack, write)}", read)[0] == 404

    new_read = _issue(stack, read, role="read")["key"]
    assert new_read.startswith("gk_read_")
    assert _send_call(stack, new_read) == 403
    assert {k["role"] for k in _listed(stack, read)} == {"read"}
    assert stack.api.request("DELETE", f"/v1/keys/{read_id}", write)[0] == 404
    assert stack.api.request("GET", "/v1/reports/goals", read)[0] == 200


def test_the_last_active_key_of_a_role_cannot_be_revoked(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    write_id = _key_id(stack, write)

    status, body = stack.api.request("DELETE", f"/v1/keys/{write_id}", write)
    assert status == 409
    assert "last active write key" in body["error"]["message"]
    assert _send_call(stack, write) == 202

    new = _issue(stack, write)["key"]
    # A key may revoke itself once another one exists.
    assert stack.api.request("DELETE", f"/v1/keys/{write_id}", write)[0] == 200
    assert _send_call(stack, write) == 401
    assert stack.api.request("DELETE", f"/v1/keys/{_key_id(stack, new)}", new)[0] == 409
    assert _send_call(stack, new) == 202


def test_active_keys_per_role_are_bounded(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    issued = [_issue(stack, write) for _ in range(9)]
    status, body = stack.api.request("POST", "/v1/keys", write, {})
    assert status == 409
    assert "10 active write keys" in body["error"]["message"]

    assert stack.api.request("DELETE", f"/v1/keys/{issued[0]['key_id']}", write)[0] == 200
    _issue(stack, write)
    listed = _listed(stack, write)
    assert len(listed) == 11
    assert sum(1 for k in listed if k["revoked_at"] is None) == 10


def test_key_routes_need_an_account_key(stack: InProcessStack) -> None:
    stack.new_account()
    assert stack.api.request("GET", "/v1/keys", ADMIN_KEY)[0] == 403
    assert stack.api.request("POST", "/v1/keys", ADMIN_KEY, {})[0] == 403
    assert stack.api.request("DELETE", "/v1/keys/key_0000000000000000", ADMIN_KEY)[0] == 403
    assert stack.api.request("GET", "/v1/keys", None)[0] == 401
    assert stack.api.request("GET", "/v1/keys", "gk_write_unknown")[0] == 401


def test_key_requests_are_validated(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    before = len(stack.items())
    for body, field in (
        ({"role": "admin"}, "role"),
        ({"role": "write", "account_id": "acc_x"}, "account_id"),
        ({"label": "x" * 257}, "label"),
        ([], "body"),
    ):
        status, answer = stack.api.request("POST", "/v1/keys", write, body)
        assert status == 400, (body, answer)
        assert field in {f["field"] for f in answer["error"]["fields"]}, answer
    assert stack.api.request("DELETE", "/v1/keys/key_0000000000000000", write)[0] == 404
    assert len(stack.items()) == before
