"""What the benchmarks share: the paths that make `goalkeeper` (shared/), the local
stack (tools/goalkeeper_cli) and the tests' support package (tests/support/: the
in-process stack, `goalkeeper serve` in a child, read-unit metering, the workload)
importable from `python bench/x.py`, and the in-process stack set up for one
benchmark, without pytest.
"""

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "shared", REPO / "tools", REPO / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from support.stack import ENDPOINT_VARIABLES, InProcessStack, environment, mocked_aws  # noqa: E402

ADMIN_KEY = "admin-bench-key"
TABLE = "goalkeeper-bench"

# The goal library cache keeps its deployed default (30 s). Against in-process moto a
# request's writes cost CPU, not waiting: they are made one at a time, as threads
# would only add switching.
ENVIRONMENT = environment(
    ADMIN_KEY,
    TABLE,
    GOALKEEPER_INGEST_WRITE_CONCURRENCY="1",
    POWERTOOLS_LOG_LEVEL="ERROR",
)


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


class BenchStack(InProcessStack):
    """The tests' stack, its functions cold at first; evaluation must dead-letter nothing."""

    def __init__(self) -> None:
        super().__init__(TABLE, ADMIN_KEY, dead_letters=Path(tempfile.mkdtemp(prefix="gk-bench-")))

    def request(self, method: str, path: str, key: str, body: Any = None, query: Any = None) -> Any:
        return self.api.request(method, path, key, body, query)

    def evaluate_pending(self) -> int:
        batches = super().evaluate_pending()
        if self.dead_lettered().strip():
            raise RuntimeError(f"evaluation dead-lettered records: {self.dead_letters}")
        return batches


def metered(client: Any, call: Any) -> tuple[Any, dict[str, Any]]:
    """`call()`'s result and what it read through `client`: requests per operation,
    keys read and read units (support.metering.Meter)."""
    from support.metering import Meter

    meter = Meter().attach(client)
    try:
        result = call()
    finally:
        meter.detach(client)
    return result, {
        "requests": dict(meter.requests),
        "keys": meter.keys_read,
        "read_units": meter.read_units,
    }


@contextmanager
def in_process_stack() -> Iterator[BenchStack]:
    """Environment, moto mock and the local stack's DynamoDB fixes, for one benchmark."""
    saved = dict(os.environ)
    for name in ENDPOINT_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(ENVIRONMENT)

    from goalkeeper import runtime
    from goalkeeper.settings import get_settings

    get_settings.cache_clear()
    runtime.dal.cache_clear()
    warnings.filterwarnings("ignore", "No application metrics to publish")
    try:
        # Powertools prints a metrics blob every 100 values even when metrics are
        # disabled; keep the functions' output out of the benchmark's table.
        with mocked_aws(), open(os.devnull, "w") as quiet, redirect_stdout(quiet):
            yield BenchStack()
    finally:
        get_settings.cache_clear()
        runtime.dal.cache_clear()
        os.environ.clear()
        os.environ.update(saved)
