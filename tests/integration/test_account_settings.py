"""An account's settings over the API (GET|PUT /v1/account): the attribution model and
its lookback start as the defaults, change with the write key only, are refused whole
when any field is wrong, and are stored in the one shape evaluation reads."""

from typing import Any

import pytest

from goalkeeper.dal.accounts import ATTRIBUTION
from support.stack import InProcessStack

DEFAULTS = {"model": "last_non_direct", "lookback_days": 30}
FIRST_TOUCH = {"attribution": {"model": "first_touch", "lookback_days": 7}}


def _account_item(stack: InProcessStack, account_id: str) -> dict[str, Any]:
    (item,) = [i for i in stack.items() if i["pk"] == f"A#{account_id}" and i["sk"] == "ACCOUNT"]
    return item


def _read(stack: InProcessStack, key: str) -> dict[str, Any]:
    status, account = stack.api.request("GET", "/v1/account", key)
    assert status == 200, account
    return account


def test_a_new_account_has_the_default_settings_and_stores_none(stack: InProcessStack) -> None:
    created = stack.new_account(name="Acme", timezone="Europe/London")
    for key in (created["keys"]["write"], created["keys"]["read"]):  # a site key may not
        account = _read(stack, key)
        assert account.pop("created_at")
        assert account == {
            "account_id": created["account_id"],
            "name": "Acme",
            "timezone": "Europe/London",
            "attribution": DEFAULTS,
        }
    assert ATTRIBUTION not in _account_item(stack, created["account_id"])


def test_settings_put_are_answered_read_back_and_stored_as_evaluation_reads_them(
    stack: InProcessStack,
) -> None:
    created = stack.new_account()
    write, read = created["keys"]["write"], created["keys"]["read"]
    before = _read(stack, read)
    status, answer = stack.api.request("PUT", "/v1/account", write, FIRST_TOUCH)
    assert status == 200, answer
    assert answer == before | FIRST_TOUCH
    assert _read(stack, read) == _read(stack, write) == answer
    item = _account_item(stack, created["account_id"])
    assert item[ATTRIBUTION] == {"model": "first_touch", "lookback_days": 7}
    assert "pii_key" in item  # the rest of the item is left as it was

    # PUT replaces the settings: what it leaves out goes back to the default.
    status, answer = stack.api.request(
        "PUT", "/v1/account", write, {"attribution": {"model": "last_touch"}}
    )
    assert status == 200, answer
    assert answer["attribution"] == {"model": "last_touch", "lookback_days": 30}
    assert _read(stack, read)["attribution"] == answer["attribution"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            {"attribution": {"model": "linear"}},
            "attribution.model",
            "Input should be 'last_non_direct', 'last_touch' or 'first_touch'",
        ),
        (
            {"attribution": {"lookback_days": 0}},
            "attribution.lookback_days",
            "Input should be greater than or equal to 1",
        ),
        (
            {"attribution": {"lookback_days": 91}},
            "attribution.lookback_days",
            "Input should be less than or equal to 90",
        ),
        ({}, "attribution", "is required"),
        ({"attribution": None}, "attribution", "must be a JSON object"),
        ({"attribution": {"model": "last_touch", "days": 3}}, "attribution.days", "unknown field"),
        (FIRST_TOUCH | {"timezone": "UTC"}, "timezone", "unknown field"),
    ],
)
def test_invalid_settings_are_400_naming_the_field_and_nothing_is_stored(
    stack: InProcessStack, body: dict[str, Any], field: str, reason: str
) -> None:
    created = stack.new_account()
    write = created["keys"]["write"]
    status, _ = stack.api.request("PUT", "/v1/account", write, FIRST_TOUCH)
    assert status == 200
    stored = _account_item(stack, created["account_id"])

    status, answer = stack.api.request("PUT", "/v1/account", write, body)
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_request"
    assert answer["error"]["fields"] == [{"field": field, "reason": reason}]
    assert _account_item(stack, created["account_id"]) == stored
    assert _read(stack, write)["attribution"] == FIRST_TOUCH["attribution"]


def test_a_read_key_cannot_change_the_settings(stack: InProcessStack) -> None:
    created = stack.new_account()
    status, answer = stack.api.request("PUT", "/v1/account", created["keys"]["read"], FIRST_TOUCH)
    assert status == 403, answer
    assert answer["error"] == {
        "code": "forbidden",
        "message": "this route needs a write key, not a read key",
        "fields": [],
    }
    assert ATTRIBUTION not in _account_item(stack, created["account_id"])


def test_each_account_reads_and_changes_its_own_settings_only(stack: InProcessStack) -> None:
    a, b = stack.new_account(), stack.new_account()
    status, _ = stack.api.request("PUT", "/v1/account", a["keys"]["write"], FIRST_TOUCH)
    assert status == 200
    assert _read(stack, b["keys"]["read"])["account_id"] == b["account_id"]
    assert _read(stack, b["keys"]["read"])["attribution"] == DEFAULTS
    status, _ = stack.api.request(
        "PUT", "/v1/account", b["keys"]["write"], {"attribution": {"model": "last_touch"}}
    )
    assert status == 200
    assert _read(stack, a["keys"]["read"])["attribution"] == FIRST_TOUCH["attribution"]
