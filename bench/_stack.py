"""The in-process stack the benchmarks share: moto in process (with the embedded
endpoint's atomic transactions and plain JSON responses), the real handlers
behind the local gateway's WSGI app, and the real stream poller.

Like tests/conftest.py, without pytest: the benchmarks must run on their own.
"""

import hashlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The layer's package (shared/) and the local stack (tools/), as installed from here.
sys.path[:0] = [str(REPO / "shared"), str(REPO / "tools")]

ADMIN_KEY = "admin-bench-key"
TABLE = "goalkeeper-bench"
REGION = "us-east-1"

# What a deployed function finds in its environment, minus tracing/metrics output;
# the goal library cache keeps its deployed default (30 s). Against in-process moto
# a request's writes cost CPU, not waiting: they are made one at a time, as threads
# would only add switching.
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "GOALKEEPER_TABLE_NAME": TABLE,
    "GOALKEEPER_ADMIN_KEY_SHA256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),
    "GOALKEEPER_INGEST_WRITE_CONCURRENCY": "1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "goalkeeper",
    "POWERTOOLS_METRICS_NAMESPACE": "Goalkeeper",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


class InProcessStack:
    def __init__(self) -> None:
        import boto3
        from werkzeug.test import Client

        from goalkeeper_cli.local_stack.functions import FunctionPool
        from goalkeeper_cli.local_stack.gateway import local_api
        from goalkeeper_cli.local_stack.poller import StreamPoller
        from goalkeeper_cli.local_stack.template import (
            load_template,
            stream_subscriptions,
            table_create_kwargs,
        )

        template = load_template()
        self.client = boto3.client("dynamodb", region_name=REGION)
        self.client.create_table(**table_create_kwargs(template, TABLE))
        functions = FunctionPool()
        self._http = Client(local_api(template, functions))
        subscription = replace(stream_subscriptions(template)[0], parallelization_factor=1)
        self.batch_size = subscription.batch_size
        stream_arn = self.client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        self._dead_letters = Path(tempfile.mkdtemp(prefix="gk-bench-")) / "dead-letters.jsonl"
        self.poller = StreamPoller(
            boto3.client("dynamodbstreams", region_name=REGION),
            stream_arn,
            subscription,
            functions.get(subscription.function, subscription.code_uri, subscription.handler),
            self._dead_letters,
        )

    def request(
        self, method: str, path: str, key: str | None = None, body: Any = None, query: Any = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "x-api-key": key or ""}
        data = None if body is None else json.dumps(body)
        response = self._http.open(
            path, method=method, headers=headers, data=data, query_string=query
        )
        text = response.get_data(as_text=True)
        return response.status_code, json.loads(text) if text else None

    def evaluate_pending(self) -> int:
        batches = 0
        while self.poller.poll_once():
            batches += 1
        if self._dead_letters.exists() and self._dead_letters.read_text().strip():
            raise RuntimeError(f"evaluation dead-lettered records: {self._dead_letters}")
        return batches

    def new_account(self) -> dict[str, Any]:
        status, account = self.request("POST", "/v1/accounts", ADMIN_KEY, {})
        assert status == 201, account
        return account

    def add_goals(self, write: str, specs: Any) -> None:
        for spec in specs:
            status, body = self.request("POST", "/v1/goals", write, spec)
            assert status == 201, body

    def send(self, write: str, events: list[dict[str, Any]], per_request: int = 100) -> None:
        for start in range(0, len(events), per_request):
            chunk = events[start : start + per_request]
            status, body = self.request("POST", "/v1/events", write, {"events": chunk})
            assert status == 202, body


@contextmanager
def in_process_stack() -> Iterator[InProcessStack]:
    """Environment, moto mock and the local stack's DynamoDB fixes, for one benchmark."""
    saved = dict(os.environ)
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    ):
        os.environ.pop(name, None)
    os.environ.update(ENVIRONMENT)
    from moto import mock_aws

    from goalkeeper import runtime
    from goalkeeper.settings import get_settings
    from goalkeeper_cli.local_stack import atomic_transactions, moto_speedups

    get_settings.cache_clear()
    runtime.dal.cache_clear()
    atomic_transactions.install()
    moto_speedups.install()
    warnings.filterwarnings("ignore", "No application metrics to publish")
    try:
        # Powertools prints a metrics blob every 100 values even when metrics are
        # disabled; keep the functions' output out of the benchmark's table.
        with mock_aws(), open(os.devnull, "w") as quiet, redirect_stdout(quiet):
            yield InProcessStack()
    finally:
        get_settings.cache_clear()
        runtime.dal.cache_clear()
        os.environ.clear()
        os.environ.update(saved)
