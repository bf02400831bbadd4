"""Shared fixtures: an in-process stack (moto in process, the real handlers, the
real gateway and stream poller code) and helpers to talk to it like a client."""

import functools
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from werkzeug.test import Client, TestResponse

from goalkeeper_cli.local_stack import atomic_transactions, dynamodb_local, moto_speedups
from goalkeeper_cli.local_stack.engines import DYNAMODB_LOCAL, ENGINES
from goalkeeper_cli.local_stack.functions import FunctionPool, LocalFunction
from goalkeeper_cli.local_stack.gateway import LocalApi, local_api
from goalkeeper_cli.local_stack.poller import StreamPoller, dead_letter_file
from goalkeeper_cli.local_stack.template import (
    EVALUATION_FUNCTION,
    load_template,
    stream_subscriptions,
    table_create_kwargs,
)

REPO = Path(__file__).resolve().parents[1]
ADMIN_KEY = "admin-local-key"  # the key the shipped events/create_account.json carries
TABLE = "goalkeeper-test"
REGION = "us-east-1"

TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # botocore 1.44 sends stream calls to an account-based host that moto does not route.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "GOALKEEPER_TABLE_NAME": TABLE,
    "GOALKEEPER_ADMIN_KEY_SHA256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "goalkeeper",
    "POWERTOOLS_METRICS_NAMESPACE": "Goalkeeper",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in TEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    _reset_process_singletons()
    yield
    _reset_process_singletons()


@pytest.fixture
def ingest_in_order(aws_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store each request's events one at a time, in order. Tests that compare two
    runs event by event need it: which of two duplicates wins follows arrival, and
    by default a request's events are stored several at a time."""
    monkeypatch.setenv("GOALKEEPER_INGEST_WRITE_CONCURRENCY", "1")
    _reset_process_singletons()


def _reset_process_singletons() -> None:
    from goalkeeper.settings import get_settings

    get_settings.cache_clear()


class ApiClient:
    """Talks to the API through the local gateway's WSGI app, as an HTTP client would."""

    def __init__(self, api: LocalApi) -> None:
        self._client = Client(api)

    def response(
        self,
        method: str,
        path: str,
        key: str | None = None,
        body: Any = None,
        query: dict[str, str] | None = None,
        raw: str | bytes | None = None,
    ) -> TestResponse:
        """The HTTP response itself: status, headers and the body as written."""
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["x-api-key"] = key
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        return self._client.open(
            path, method=method, headers=headers, data=data, query_string=query
        )

    def request(
        self,
        method: str,
        path: str,
        key: str | None = None,
        body: Any = None,
        query: dict[str, str] | None = None,
        raw: str | bytes | None = None,
    ) -> tuple[int, Any]:
        response = self.response(method, path, key, body, query, raw)
        text = response.get_data(as_text=True)
        return response.status_code, json.loads(text) if text else None


# Loading a function imports its module afresh (a cold start); tests share warm instances.
_WARM_FUNCTIONS: dict[str, LocalFunction] = {}


@functools.cache
def _template() -> dict[str, Any]:
    return load_template()


@functools.cache
def _client(service: str) -> Any:
    # Creating a botocore client costs ~60 ms; moto intercepts requests of any client.
    return boto3.client(service, region_name=REGION)


class InProcessStack:
    def __init__(self) -> None:
        template = _template()
        self.client = _client("dynamodb")
        self.client.create_table(**table_create_kwargs(template, TABLE))
        self.functions = FunctionPool(_WARM_FUNCTIONS)
        self.api = ApiClient(local_api(template, self.functions))
        stream_arn = self.client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        # A poller per stream subscription of the template (evaluation, backfill jobs).
        self.pollers: dict[str, StreamPoller] = {}
        for subscription in stream_subscriptions(template):
            # moto in process has no lock: concurrent evaluators race there, not in
            # DynamoDB. Races are tested against the serialized endpoint of `goalkeeper serve`.
            subscription = replace(subscription, parallelization_factor=1)
            name = subscription.function
            dead_letters = REPO / ".pytest_cache" / f"{os.getpid()}-{dead_letter_file(name)}"
            dead_letters.unlink(missing_ok=True)
            self.pollers[name] = StreamPoller(
                _client("dynamodbstreams"),
                stream_arn,
                subscription,
                self.functions.get(name, subscription.code_uri, subscription.handler),
                dead_letters,
            )
        self.poller = self.pollers[EVALUATION_FUNCTION]
        self.evaluate = self.poller.function
        self.dead_letters = self.poller.dead_letters.path

    def evaluate_pending(self) -> None:
        """Deliver every stream record written so far to the evaluation function."""
        while self.poller.poll_once():
            pass

    def run_backfills(self) -> None:
        """Deliver every job record written so far to the backfill function. Each page's
        checkpoint is a record of its own, so this runs every job to its end."""
        while self.pollers["BackfillFunction"].poll_once():
            pass

    def new_account(self, **body: Any) -> dict[str, Any]:
        status, account = self.api.request("POST", "/v1/accounts", ADMIN_KEY, body or {})
        assert status == 201, account
        return account

    def items(self) -> list[dict[str, Any]]:
        """Every item of the table (tests only: the product never scans)."""
        from goalkeeper.attributes import from_attributes

        pages = self.client.get_paginator("scan").paginate(TableName=TABLE)
        return [from_attributes(item) for page in pages for item in page["Items"]]


@pytest.fixture
def stack(aws_environment: None) -> Iterator[InProcessStack]:
    # moto's own TransactWriteItems rolls back by swapping in a copy of the table,
    # which orphans open stream iterators; the embedded endpoint's all-or-nothing
    # version (same semantics as DynamoDB) is used in process too, and so are its
    # plain JSON responses (moto's own rendering is the slowest part of a test).
    atomic_transactions.install()
    moto_speedups.install()
    with mock_aws():
        yield InProcessStack()


def require_dynamodb_local() -> None:
    """Skip, saying why, where Java cannot run DynamoDB Local (never elsewhere: a jar
    that cannot be fetched is an error); fetch its jar on first use."""
    problem = dynamodb_local.java_problem()
    if problem:
        pytest.skip(f"DynamoDB Local leg: {problem}")
    dynamodb_local.install()


@pytest.fixture(scope="module", params=ENGINES)
def serve_engine(request: pytest.FixtureRequest) -> str:
    """The end-to-end modules run once per engine of `goalkeeper serve`."""
    if request.param == DYNAMODB_LOCAL:
        require_dynamodb_local()
    return request.param


def load_event_file(name: str) -> dict[str, Any]:
    return json.loads((REPO / "events" / name).read_text())
