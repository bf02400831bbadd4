"""The in-process stack the integration tests and the benchmarks share: moto in process
(with the embedded endpoint's atomic transactions and plain JSON responses), the real
handlers behind the local gateway's WSGI app, and the real stream pollers, one per
stream subscription of template.yaml.

Nothing here needs pytest: the benchmarks run on their own (bench/_stack.py)."""

import functools
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from werkzeug.test import Client, TestResponse

from goalkeeper_cli.local_stack import atomic_transactions, moto_speedups
from goalkeeper_cli.local_stack.functions import FunctionPool, LocalFunction
from goalkeeper_cli.local_stack.gateway import LocalApi, local_api
from goalkeeper_cli.local_stack.poller import StreamPoller, dead_letter_file
from goalkeeper_cli.local_stack.queues import create_messaging, queue_pollers
from goalkeeper_cli.local_stack.template import (
    EVALUATION_FUNCTION,
    load_template,
    stream_subscriptions,
    table_create_kwargs,
)

REPO = Path(__file__).resolve().parents[2]
ADMIN_KEY = "admin-local-key"  # the key the shipped events/create_account.json carries
TABLE = "goalkeeper-test"
REGION = "us-east-1"
# Set to override in the process that runs a stack: the stack's clients talk to moto.
ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_EVENTBRIDGE",
)
# The queue and bus the in-process stack creates from template.yaml (moto's names for them).
DELIVERY_QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/123456789012/goalkeeper-DeliveryQueue"
EVENT_BUS = "goalkeeper-EventBus"
LOCAL_BASE_URL = "http://localhost"


def environment(admin_key: str = ADMIN_KEY, table: str = TABLE, **more: str) -> dict[str, str]:
    """What a deployed function finds in its environment, minus tracing and metrics
    output; `more` adds or replaces variables (GOALKEEPER_INGEST_WRITE_CONCURRENCY=...)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # botocore 1.44 sends stream calls to an account-based host that moto does not route.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "GOALKEEPER_TABLE_NAME": table,
        "GOALKEEPER_ADMIN_KEY_SHA256": hashlib.sha256(admin_key.encode()).hexdigest(),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "goalkeeper",
        "POWERTOOLS_METRICS_NAMESPACE": "Goalkeeper",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "GOALKEEPER_DELIVERY_QUEUE_URL": DELIVERY_QUEUE_URL,
        "GOALKEEPER_EVENT_BUS_NAME": EVENT_BUS,
        # Receivers in the tests listen on localhost over http, and retry in a second.
        "GOALKEEPER_WEBHOOKS_ALLOW_LOCAL_HTTP": "true",
        "GOALKEEPER_WEBHOOK_RETRY_BASE_SECONDS": "1",
        "GOALKEEPER_WEBHOOK_RETRY_MAX_DELAY_SECONDS": "1",
        "GOALKEEPER_WEBHOOK_TIMEOUT_SECONDS": "2",
        # The test client's requests go to http://localhost (Twilio signs this base URL).
        "GOALKEEPER_PUBLIC_API_URL": LOCAL_BASE_URL,
    } | more


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
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        """The HTTP response itself: status, headers and the body as written. `headers`
        are sent besides (or instead of) the JSON Content-Type and the key."""
        sent = {"Content-Type": "application/json"}
        if key is not None:
            sent["x-api-key"] = key
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        return self._client.open(
            path, method=method, headers=sent | (headers or {}), data=data, query_string=query
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
        """(status, the JSON answer; the text of any other: the tracker script)."""
        response = self.response(method, path, key, body, query, raw)
        text = response.get_data(as_text=True)
        if text and not response.is_json:
            return response.status_code, text
        return response.status_code, json.loads(text) if text else None


@functools.cache
def _template() -> dict[str, Any]:
    return load_template()


@functools.cache
def _client(service: str) -> Any:
    # Creating a botocore client costs ~60 ms; moto intercepts requests of any client.
    return boto3.client(service, region_name=REGION)


class InProcessStack:
    """`functions`: warm instances to reuse (loading a function imports its module
    afresh, a cold start); `dead_letters`: the folder of the pollers' dead-letter files."""

    def __init__(
        self,
        table: str = TABLE,
        admin_key: str = ADMIN_KEY,
        functions: dict[str, LocalFunction] | None = None,
        dead_letters: Path = REPO / ".pytest_cache",
    ) -> None:
        template = _template()
        self.table = table
        self.admin_key = admin_key
        self.client = _client("dynamodb")
        self.client.create_table(**table_create_kwargs(template, table))
        self.functions = FunctionPool(functions)
        self.api = ApiClient(local_api(template, self.functions))
        self.streams_client = _client("dynamodbstreams")
        self.stream_arn = self.client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        # A poller per stream subscription of the template (evaluation, backfill jobs).
        self.pollers: dict[str, StreamPoller] = {}
        for subscription in stream_subscriptions(template):
            # moto in process has no lock: concurrent evaluators race there, not in
            # DynamoDB. Races are tested against the serialized endpoint of `goalkeeper serve`.
            subscription = replace(subscription, parallelization_factor=1)
            name = subscription.function
            dead_letter_path = dead_letters / f"{os.getpid()}-{dead_letter_file(name)}"
            dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
            dead_letter_path.unlink(missing_ok=True)
            self.pollers[name] = StreamPoller(
                self.streams_client,
                self.stream_arn,
                subscription,
                self.functions.get(name, subscription.code_uri, subscription.handler),
                dead_letter_path,
            )
        # The delivery queue and the event bus, and the queue's event source (notify).
        self.sqs = _client("sqs")
        self.events = _client("events")
        self.messaging = create_messaging(template, self.sqs, self.events)
        assert (
            self.messaging.environment(template)["GOALKEEPER_DELIVERY_QUEUE_URL"]
            == (os.environ["GOALKEEPER_DELIVERY_QUEUE_URL"])
        )
        (self.delivery_poller,) = queue_pollers(template, self.messaging, self.sqs, self.functions)
        self.poller = self.pollers[EVALUATION_FUNCTION]
        self.evaluate = self.poller.function
        self.dead_letters = self.poller.dead_letters.path

    def evaluate_pending(self) -> int:
        """Deliver every stream record written so far to the evaluation function; the
        number of batches it took."""
        batches = 0
        while self.poller.poll_once():
            batches += 1
        return batches

    def run_backfills(self) -> None:
        """Deliver every job record written so far to the backfill function. Each page's
        checkpoint is a record of its own, so this runs every job to its end."""
        while self.pollers["BackfillFunction"].poll_once():
            pass

    def notify_pending(self) -> None:
        """Deliver every counted conversion's stream record written so far to the notify
        function (deliveries created and queued, the event bus put)."""
        while self.pollers["NotifyFunction"].poll_once():
            pass

    def deliver_pending(self, timeout: float = 30.0) -> None:
        """Evaluate, notify, then run the delivery queue until it is empty: retries are
        delayed in the queue (a second each in the tests), so this waits for them."""
        import time

        self.evaluate_pending()
        self.notify_pending()
        deadline = time.monotonic() + timeout
        while True:
            if not self.delivery_poller.poll_once():
                if self.delivery_poller.pending() == 0:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError("deliveries still queued")
                time.sleep(0.05)

    def dead_lettered(self) -> str:
        """What evaluation dead-lettered so far ("" when nothing)."""
        return self.dead_letters.read_text() if self.dead_letters.exists() else ""

    def new_account(self, **body: Any) -> dict[str, Any]:
        status, account = self.api.request("POST", "/v1/accounts", self.admin_key, body or {})
        assert status == 201, account
        return account

    def add_goals(self, write: str, specs: Sequence[dict[str, Any]]) -> list[str]:
        """Creates the goals; their ids."""
        created = []
        for spec in specs:
            status, body = self.api.request("POST", "/v1/goals", write, spec)
            assert status == 201, body
            created.append(body["goal_id"])
        return created

    def send(self, write: str, events: list[dict[str, Any]], per_request: int = 100) -> None:
        for start in range(0, len(events), per_request):
            chunk = events[start : start + per_request]
            status, body = self.api.request("POST", "/v1/events", write, {"events": chunk})
            assert status == 202, body

    def items(self) -> list[dict[str, Any]]:
        """Every item of the table (tests only: the product never scans)."""
        from goalkeeper.attributes import from_attributes

        pages = self.client.get_paginator("scan").paginate(TableName=self.table)
        return [from_attributes(item) for page in pages for item in page["Items"]]


@contextmanager
def mocked_aws() -> Iterator[None]:
    """moto in process, with the local stack's DynamoDB fixes. moto's own
    TransactWriteItems rolls back by swapping in a copy of the table, which orphans open
    stream iterators; the embedded endpoint's all-or-nothing version (same semantics as
    DynamoDB) is used in process too, and so are its plain JSON responses (moto's own
    rendering is the slowest part of a test)."""
    atomic_transactions.install()
    moto_speedups.install()
    with mock_aws():
        yield


def load_event_file(name: str) -> dict[str, Any]:
    return json.loads((REPO / "events" / name).read_text())
