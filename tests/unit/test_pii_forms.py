"""The stored forms of a caller number: a keyed hash (per account) and a masked form;
each account's secret read once per warm instance."""

import pytest

from goalkeeper.pii import AccountSecrets, caller_hash, mask_number

NUMBER = "+442071234567"


def test_caller_hash_is_hmac_sha256_of_the_e164_number_under_the_account_secret() -> None:
    secret = "11" * 32
    assert caller_hash(secret, NUMBER) == caller_hash(secret, NUMBER)
    assert caller_hash(secret, NUMBER) != caller_hash("22" * 32, NUMBER)
    assert len(caller_hash(secret, NUMBER)) == 64


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+442071234567", "+44*******567"),
        ("+15551234567", "+15******567"),
        ("+4930123456", "+49*****456"),
        ("+3531234", "+3****34"),
        ("+123456789012345", "+12**********345"),
    ],
)
def test_masked_numbers_keep_only_the_ends(number: str, masked: str) -> None:
    assert mask_number(number) == masked
    assert len(masked) == len(number)


def test_each_account_secret_is_read_once_per_warm_instance() -> None:
    loads: list[str] = []
    cache = AccountSecrets(lambda account_id: loads.append(account_id) or f"s-{account_id}")
    assert [cache.get("a"), cache.get("a"), cache.get("b"), cache.get("a")] == [
        "s-a",
        "s-a",
        "s-b",
        "s-a",
    ]
    assert loads == ["a", "b"]
