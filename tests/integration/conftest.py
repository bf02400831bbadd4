"""The in-process stack (tests/support/stack.py): moto in process, the real handlers,
the real gateway and stream poller code."""

from collections.abc import Iterator

import pytest

from goalkeeper_cli.local_stack.functions import LocalFunction
from support.stack import InProcessStack, mocked_aws

# Loading a function imports its module afresh (a cold start); tests share warm instances.
_WARM_FUNCTIONS: dict[str, LocalFunction] = {}


@pytest.fixture
def ingest_in_order(aws_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store each request's events one at a time, in order. Tests that compare two
    runs event by event need it: which of two duplicates wins follows arrival, and
    by default a request's events are stored several at a time."""
    from goalkeeper.settings import get_settings

    monkeypatch.setenv("GOALKEEPER_INGEST_WRITE_CONCURRENCY", "1")
    get_settings.cache_clear()


@pytest.fixture
def small_pages(aws_environment: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Backfill pages of 4 events, so a small workload's range takes several pages and
    checkpoints."""
    from goalkeeper.settings import get_settings

    monkeypatch.setenv("GOALKEEPER_BACKFILL_PAGE_EVENTS", "4")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def stack(aws_environment: None) -> Iterator[InProcessStack]:
    with mocked_aws():
        yield InProcessStack(functions=_WARM_FUNCTIONS)
