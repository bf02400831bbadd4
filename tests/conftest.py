"""Fixtures of every tier. The tiers: tests/unit (pure: no moto, no server),
tests/integration (the in-process stack on moto, tests/support/stack.py) and tests/e2e
(`goalkeeper serve` over HTTP, on both engines); what they share besides fixtures is
the `support` package (tests/support/)."""

from collections.abc import Iterator

import pytest

from support.stack import ENDPOINT_VARIABLES, environment


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked `long` first, in their own order: make test's workers take whole files
    in collection order, and a long file taken last keeps one worker busy while the other
    has nothing left to do."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


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
