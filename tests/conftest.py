"""Fixtures of every tier. The tiers: tests/unit (pure: no moto, no server),
tests/integration (the in-process stack on moto, tests/support/stack.py) and tests/e2e
(`goalkeeper serve` over HTTP, on both engines); what they share besides fixtures is
the `support` package (tests/support/)."""

from collections.abc import Iterator

import pytest

from support.stack import ENDPOINT_VARIABLES, environment


def reset_process_singletons() -> None:
    from goalkeeper.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment of a deployed function, with test credentials and no endpoint
    of the developer's own (DynamoDB calls go to moto)."""
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    reset_process_singletons()
    yield
    reset_process_singletons()
