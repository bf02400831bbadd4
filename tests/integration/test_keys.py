"""API keys: never stored in clear, rotated without downtime, refused the moment
they are revoked, and managed only within their own account and role."""

from datetime import datetime, timedelta
from typing import Any

from goalkeeper.auth import key_digest
from support.stack import ADMIN_KEY, TABLE, InProcessStack

CALL = {"type": "call", "call_id": "c-1", "connected": True, "bridged_seconds": 61}
KEY_FIELDS = {"key_id", "role", "prefix", "label", "created_at", "revoked_at", "allowed_origins"}


def _send_call(stack: InProcessStack, key: str) -> int:
    return stack.api.request("POST", "/v1/events", key, CALL)[0]


def _listed(stack: InProcessStack, key: str, role: str | None = None) -> list[dict[str, Any]]:
    """The keys `key` manages (of `role` only, when given)."""
    status, body = stack.api.request("GET", "/v1/keys", key)
    assert status == 200, body
    return [k for k in body["keys"] if role in (None, k["role"])]


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
        plain += [keys["write"], keys["read"], keys["site"]]
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
    assert [set(k) for k in listed] == [KEY_FIELDS] * 3  # two write keys, the site key
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


def test_a_key_manages_the_keys_of_its_role_and_a_write_key_site_keys(
    stack: InProcessStack,
) -> None:
    keys = stack.new_account()["keys"]
    write, read = keys["write"], keys["read"]
    read_id = _key_id(stack, read)

    # A write key (web pages carry it in clear) can never obtain or revoke a read key.
    status, body = stack.api.request("POST", "/v1/keys", write, {"role": "read"})
    assert status == 403
    assert body["error"]["code"] == "forbidden"
    assert stack.api.request("DELETE", f"/v1/keys/{read_id}", write)[0] == 404
    assert {k["role"] for k in _listed(stack, write)} == {"write", "site"}
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
    listed = _listed(stack, write, "write")
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


def _mint_and_revoke(stack: InProcessStack, key: str, cycles: int) -> list[str]:
    """What a careless rotation script does: issue a key, revoke it, again and again."""
    revoked = []
    for _ in range(cycles):
        issued = _issue(stack, key)
        status, body = stack.api.request("DELETE", f"/v1/keys/{issued['key_id']}", key)
        assert status == 200, body
        revoked.append(issued["key_id"])
    return revoked


def _pages(stack: InProcessStack, key: str, limit: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        query = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        status, body = stack.api.request("GET", "/v1/keys", key, query=query)
        assert status == 200, body
        pages.append(body["keys"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "the cursor does not advance"


def test_key_listing_comes_in_pages(stack: InProcessStack) -> None:
    keys = stack.new_account()["keys"]
    write, read = keys["write"], keys["read"]
    revoked = _mint_and_revoke(stack, write, 25)

    pages = _pages(stack, write, limit=10)
    assert [len(page) for page in pages] == [10, 10, 7]  # 26 write keys, the site key
    listed = [k["key_id"] for page in pages for k in page if k["role"] == "write"]
    assert sorted(listed) == sorted([*revoked, _key_id(stack, write)])
    # The 26 write records share the account's key partition: a read key's pages
    # still hold read keys only, and as many as asked for.
    assert [[k["role"] for k in page] for page in _pages(stack, read, limit=1)] == [["read"]]
    _issue(stack, read)
    assert [len(page) for page in _pages(stack, read, limit=1)] == [1, 1]

    status, body = stack.api.request("GET", "/v1/keys", write)
    assert status == 200, body
    assert len(body["keys"]) == 27  # one page by default
    assert body["next_cursor"] is None


def test_key_listing_refuses_a_bad_page_request(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    for query, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "key_0000000000000000#x"}, "cursor"),
    ):
        status, body = stack.api.request("GET", "/v1/keys", write, query=query)
        assert status == 400, (query, body)
        assert [f["field"] for f in body["error"]["fields"]] == [field], body


REVOKED_KEY_RETENTION_DAYS = 90  # README, Keys


def test_revoked_keys_are_forgotten_after_the_retention_and_stay_refused(
    stack: InProcessStack,
) -> None:
    account = stack.new_account()
    write = account["keys"]["write"]
    spare = _issue(stack, write)
    old = _issue(stack, write)
    status, revoked = stack.api.request("DELETE", f"/v1/keys/{old['key_id']}", write)
    assert status == 200, revoked

    # Both items of the revoked key (its lookup item and its record) carry DynamoDB's
    # TTL attribute; nothing of an active key does.
    revoked_at = datetime.fromisoformat(revoked["revoked_at"])
    due = int((revoked_at + timedelta(days=REVOKED_KEY_RETENTION_DAYS)).timestamp())
    expiring = {item["pk"]: item["expires_at"] for item in stack.items() if "expires_at" in item}
    assert expiring == {
        f"KEY#{key_digest(old['key'])}": due,
        f"A#{account['account_id']}#KEYS": due,
    }

    # Once that time has passed DynamoDB deletes them; every guarantee still holds.
    _expire_items_due_by(stack, due)
    assert [k["key_id"] for k in _listed(stack, write, "write")] == sorted(
        [_key_id(stack, write), spare["key_id"]]
    )
    assert _send_call(stack, old["key"]) == 401
    assert stack.api.request("DELETE", f"/v1/keys/{old['key_id']}", write)[0] == 404
    for _ in range(8):
        _issue(stack, write)
    assert stack.api.request("POST", "/v1/keys", write, {})[0] == 409  # still 10 active
    assert stack.api.request("DELETE", f"/v1/keys/{spare['key_id']}", write)[0] == 200
    assert _send_call(stack, spare["key"]) == 401
    assert _send_call(stack, write) == 202


def _expire_items_due_by(stack: InProcessStack, epoch_seconds: int) -> None:
    """What DynamoDB's TTL does once `epoch_seconds` has passed."""
    for item in stack.items():
        if item.get("expires_at", epoch_seconds + 1) <= epoch_seconds:
            stack.client.delete_item(
                TableName=TABLE, Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}}
            )
