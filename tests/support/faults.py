"""Fault injection for DynamoDB calls, at the botocore level (tests only).

`FaultInjector.attach(client)` takes the place of the client's transport (moto's
in-process `before-send` hook, or the client's HTTP session when it talks to a
real endpoint) for every attempt botocore makes, so botocore's own retry logic
sees the faults exactly as it would see them from DynamoDB:

- `throttle`: a 400 ThrottlingException / ProvisionedThroughputExceededException,
  answered *before* the request reaches the table;
- `server_error`: a 500 InternalServerError, also before the table;
- `timeout_after_write`: the request reaches the table and succeeds, then the
  answer is lost (a ReadTimeoutError), so botocore retries a request that
  already took effect.

A seeded `random.Random` picks which attempts fail, so a run is reproducible.
moto ignores TransactWriteItems' ClientRequestToken (DynamoDB honours it for 10
minutes), so a retried transaction meets its own earlier write: the strict case,
the one a redelivered Lambda invocation (a new token) meets in AWS too.
"""

import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from goalkeeper_cli.local_stack.functions import LocalFunction
from goalkeeper_cli.local_stack.poller import StreamPoller
from goalkeeper_cli.local_stack.template import load_template, stream_subscriptions
from support.stack import InProcessStack

KINDS = ("throttle", "server_error", "timeout_after_write")
_ERRORS = {
    "ThrottlingException": (400, "Rate of requests exceeds the allowed throughput."),
    "ProvisionedThroughputExceededException": (400, "The level of configured provisioned "),
    "InternalServerError": (500, "Internal server error"),
    "ValidationException": (400, "One or more parameter values were invalid"),
}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def error_response(request: AWSPreparedRequest, code: str) -> AWSResponse:
    status, message = _ERRORS[code]
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    return AWSResponse(request.url, status, headers, _Body(body.encode()))  # type: ignore[arg-type]


def operation_of(request: AWSPreparedRequest) -> str:
    target = request.headers.get("X-Amz-Target", b"")
    text = target.decode() if isinstance(target, bytes) else str(target)
    return text.rsplit(".", 1)[-1]


class FaultInjector:
    """Fails a chosen fraction of the attempts of the clients it is attached to."""

    def __init__(
        self,
        rate: float,
        seed: int,
        kinds: tuple[str, ...] = KINDS,
        outage_share: float = 0.0,
        outage_length: tuple[int, int] = (4, 8),
    ) -> None:
        """`rate`: the fraction of attempts that fail. `outage_share` of those failures
        come in runs of consecutive failed attempts (`outage_length`), long enough to
        outlast botocore's retries, so callers see StoreUnavailable too."""
        self.rate = rate
        self.kinds = kinds
        self.enabled = True
        self._random = random.Random(seed)
        mean_length = sum(outage_length) / 2
        self._outage_start = rate * outage_share / mean_length
        self._single = rate * (1 - outage_share)
        self._outage_length = outage_length
        self._outage_left = 0
        self.outages = 0
        self._scripts: dict[str, list[str | None]] = {}
        self._refusals: list[tuple[str, Callable[[AWSPreparedRequest], bool], str]] = []
        self.attempts: Counter[str] = Counter()  # per operation, while enabled
        self.injected: Counter[tuple[str, str]] = Counter()  # per (operation, kind)
        self._detach: list[Callable[[], None]] = []

    def script(self, operation: str, *kinds: str | None) -> "FaultInjector":
        """The next attempts of `operation` meet these faults (None: no fault), in order."""
        self._scripts.setdefault(operation, []).extend(kinds)
        return self

    def refuse(
        self,
        operation: str,
        when: Callable[[AWSPreparedRequest], bool],
        code: str = "ValidationException",
    ) -> "FaultInjector":
        """Every attempt of `operation` that `when` picks out is answered with `code`
        before it reaches the table (a ValidationException: botocore does not retry)."""
        self._refusals.append((operation, when, code))
        return self

    # -- wiring ------------------------------------------------------------

    def attach(self, client: Any) -> "FaultInjector":
        events = client.meta.events
        transport = _moto_transport(client)
        if transport is not None:
            events.unregister("before-send", transport)

            def send(request: AWSPreparedRequest) -> AWSResponse | None:
                return transport("before-send", request)

        else:
            # A real endpoint: the attempt goes out through an HTTP session of our own.
            send = URLLib3Session().send

        def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            return self._send(request, send)

        events.register("before-send", before_send)

        def detach() -> None:
            events.unregister("before-send", before_send)
            if transport is not None:
                events.register("before-send", transport)

        self._detach.append(detach)
        return self

    def detach(self) -> None:
        while self._detach:
            self._detach.pop()()

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.enabled, before = False, self.enabled
        try:
            yield
        finally:
            self.enabled = before

    # -- the faults --------------------------------------------------------

    def _send(
        self, request: AWSPreparedRequest, send: Callable[[AWSPreparedRequest], AWSResponse | None]
    ) -> AWSResponse | None:
        if not self.enabled:
            return send(request)
        operation = operation_of(request)
        self.attempts[operation] += 1
        for refused, when, code in self._refusals:
            if refused == operation and when(request):
                self.injected[(operation, code)] += 1
                return error_response(request, code)
        if self._scripts.get(operation):
            scripted = self._scripts[operation].pop(0)
            if scripted is None:
                return send(request)
            return self._fail(request, send, operation, scripted)
        if self._outage_left == 0:
            draw = self._random.random()
            if draw < self._outage_start:
                self._outage_left = self._random.randint(*self._outage_length)
                self.outages += 1
            elif draw >= self._outage_start + self._single:
                return send(request)
        self._outage_left = max(0, self._outage_left - 1)
        return self._fail(request, send, operation, self._random.choice(self.kinds))

    def _fail(
        self,
        request: AWSPreparedRequest,
        send: Callable[[AWSPreparedRequest], AWSResponse | None],
        operation: str,
        kind: str,
    ) -> AWSResponse | None:
        self.injected[(operation, kind)] += 1
        if kind == "throttle":
            code = self._random.choice(
                ("ThrottlingException", "ProvisionedThroughputExceededException")
            )
            return error_response(request, code)
        if kind == "server_error":
            return error_response(request, "InternalServerError")
        send(request)  # the table applies it; the answer is lost on the way back
        raise ReadTimeoutError(endpoint_url=request.url)

    @property
    def failed_fraction(self) -> float:
        return self.total() / max(1, sum(self.attempts.values()))

    def total(self, kind: str | None = None, operation: str | None = None) -> int:
        return sum(
            count
            for (op, k), count in self.injected.items()
            if (kind is None or k == kind) and (operation is None or op == operation)
        )


def _moto_transport(client: Any) -> Any:
    """moto's in-process hook, when moto is mocking (it then answers every request)."""
    try:
        from moto.core.models import botocore_stubber
    except ImportError:  # pragma: no cover - moto is a dev dependency
        return None
    return botocore_stubber if botocore_stubber.enabled else None


class BackoffRecorder:
    """Stands in for the `time` module botocore's endpoint sleeps with between
    attempts: records each backoff instead of waiting it out, so a test with
    hundreds of throttles runs in seconds and can still check the backoff."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)


# -- a randomized workload, run through the API and the stream poller -----------------

CUSTOM_GOALS = [
    {
        "name": "Thank-you page",
        "rule": {"kind": "url", "match": "prefix", "pattern": "/thank-you"},
    },
    {
        "name": "Big sale",
        "rule": {"kind": "transaction", "min_value": "100"},
        "value": {"type": "percent_of_transaction", "percent": "10"},
    },
    {
        # visitor-only de-dup: counted only when the visitor has no counted
        # conversion of ANY goal within 30 days.
        "name": "First touch sign-up",
        "rule": {"kind": "custom_trigger", "name": "signup"},
        "dedup": {"keys": ["visitor"], "window_days": 30},
    },
    {
        "name": "Target call",
        "rule": {
            "kind": "call",
            "connected": True,
            "min_bridged_seconds": 30,
            "first_time_caller_days": 30,
        },
        "value": {"type": "fixed", "amount": "25", "currency": "USD"},
    },
    {"name": "Lead once per visit", "rule": {"kind": "lead"}, "once_per_visit": True},
]


# -- the workload -------------------------------------------------------------


REPORT_DAYS = 60  # the workload's events are spread over the last 50 days


# A big library: 94 more goals on the workload's sign-ups and sales, with every
# de-dup layout the engine knows, so one event reaches dozens of goals.
BIG_LIBRARY = (
    CUSTOM_GOALS
    + [
        {
            "name": f"Sign-up {n}",
            "rule": {"kind": "custom_trigger", "name": "signup"},
            "dedup": [
                {"keys": ["visitor"], "window_days": 1 + n % 9},
                {"keys": ["visitor", "goal"], "window_days": 3},
                {"keys": []},
                {"keys": ["visit"]},
            ][n % 4],
            "value": {"type": "fixed", "amount": str(n), "currency": "EUR"},
        }
        for n in range(47)
    ]
    + [
        {
            "name": f"Sale {n}",
            "rule": {"kind": "transaction", "min_value": str(n * 10)},
            "dedup": {"keys": ["visitor", "transaction_ref"], "window_days": 1 + n % 5},
        }
        for n in range(47)
    ]
)


def workload(seed: int, size: int, shuffled: bool = False) -> list[list[dict[str, Any]]]:
    """Requests (each a list of events) for POST /v1/events, some of them resent; in
    time order, or `shuffled` (a late event arrives after later ones)."""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=50)
    visitors = [f"v-{n:03d}" for n in range(40)]
    callers = [f"+4420712{n:05d}" for n in range(25)]
    urls = ["/", "/pricing", "/thank-you", "/thank-you/pro", "/blog/a", "/checkout"]
    events: list[dict[str, Any]] = []
    for n in range(size):
        at = start + timedelta(minutes=n * (48 * 24 * 60 // size) + rng.randrange(60))
        visitor = rng.choice(visitors)
        common = {
            "event_id": f"ev-{n:04d}",
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "visitor_id": visitor,
            "visit_id": f"{visitor}-visit-{rng.randrange(3)}",
            "attribution": {"source": rng.choice(["google", "bing", "newsletter"])},
        }
        kind = rng.choices(
            ["page_view", "call", "transaction", "signup", "lead"], [40, 25, 15, 10, 10]
        )[0]
        if kind == "page_view":
            event = common | {"type": "page_view", "url": rng.choice(urls)}
        elif kind == "call":
            connected = rng.random() < 0.8
            event = common | {
                "type": "call",
                "call_id": f"CA-{n}",
                "caller_number": rng.choice(callers),
                "connected": connected,
                "bridged_seconds": rng.choice([0, 5, 29, 30, 59, 60, 61, 180, 900])
                if connected
                else 0,
            }
        elif kind == "transaction":
            event = common | {
                "type": "transaction",
                "transaction": {
                    "value": str(Decimal(rng.randrange(500, 50000)) / 100),
                    "currency": rng.choice(["USD", "EUR"]),
                    "reference": f"order-{rng.randrange(size // 4)}",
                },
            }
        elif kind == "signup":
            event = common | {"type": "custom_trigger", "name": "signup", "fields": {"plan": "pro"}}
        else:
            event = common | {"type": "lead", "lead_id": f"lead-{n}"}
        events.append(event)
    if shuffled:
        rng.shuffle(events)
    requests: list[list[dict[str, Any]]] = []
    position = 0
    while position < len(events):
        size_of_batch = rng.choice([1, 1, 1, 2, 5, 10])
        batch = events[position : position + size_of_batch]
        position += size_of_batch
        requests.append(batch)
        if rng.random() < 0.1:  # a client resends an earlier event (same id): a duplicate
            requests.append([rng.choice(events[:position])])
    return requests


# -- running it ---------------------------------------------------------------


class Run:
    """One account's pass of the workload, with what the client saw."""

    def __init__(self, stack: InProcessStack, goals: list[dict[str, Any]] = CUSTOM_GOALS) -> None:
        self.stack = stack
        account = stack.new_account()
        self.account_id = account["account_id"]
        self.write, self.read = account["keys"]["write"], account["keys"]["read"]
        for spec in goals:
            status, body = stack.api.request("POST", "/v1/goals", self.write, spec)
            assert status == 201, body
        self.acknowledged: set[str] = set()  # accepted or duplicate: the API says stored
        self.first_answers: dict[int, dict[str, Any]] = {}  # request -> answer, if first try
        self.retried_5xx = 0

    def send(self, number: int, events: list[dict[str, Any]]) -> None:
        body = events[0] if len(events) == 1 else {"events": events}
        for attempt in range(20):
            status, answer = self.stack.api.request("POST", "/v1/events", self.write, body)
            if status == 202:
                assert sorted(answer["accepted"] + answer["duplicates"]) == sorted(
                    event["event_id"] for event in events
                )
                self.acknowledged.update(answer["accepted"] + answer["duplicates"])
                if attempt == 0:
                    self.first_answers[number] = answer
                return
            assert status == 503, (status, answer)  # never a 500: nothing unexplained
            assert answer["error"]["code"] == "store_unavailable"
            self.retried_5xx += 1
        raise AssertionError(f"events {events} were never accepted")

    def evaluate(self, poller: StreamPoller) -> None:
        """Poll the stream until it is drained; a poll whose own calls failed is repeated."""
        for _ in range(10_000):
            try:
                if not poller.poll_once():
                    return
            except (BotoCoreError, ClientError):
                continue
        raise AssertionError("the stream never drained")


def outcome(stack: InProcessStack, run: Run) -> dict[str, Any]:
    """One account's conversions (from the table) and counters (as the reports show
    them), keyed by event id and goal name so two accounts compare."""
    prefix = f"A#{run.account_id}#"
    items = [item for item in stack.items() if item["pk"].startswith(prefix)]
    status, body = stack.api.request("GET", "/v1/goals", run.read, query={"limit": "500"})
    assert status == 200 and body["next_cursor"] is None
    goal_names = {goal["goal_id"]: goal["name"] for goal in body["goals"]}
    conversions = [item for item in items if item.get("kind") == "conversion"]
    by_id = {
        item["conversion_id"]: (item["event_id"], goal_names[item["goal_id"]])
        for item in conversions
    }

    def reason(text: str | None) -> str | None:  # a goal it names, by name (as accounts differ)
        for goal_id, name in goal_names.items():
            text = text.replace(goal_id, name) if text else text
        return text

    decided = {
        by_id[item["conversion_id"]]: (
            item["status"],
            reason(item.get("reason")),
            by_id.get(item.get("duplicate_of"), item.get("duplicate_of")),
            item.get("value_amount"),
            item.get("value_currency"),
        )
        for item in conversions
    }
    today = datetime.now(UTC).date()
    span = {"from": str(today - timedelta(days=REPORT_DAYS)), "to": str(today)}
    status, report = stack.api.request("GET", "/v1/reports/goals", run.read, query=span)
    assert status == 200, report
    counters: dict[str, Any] = {}
    for row in report["goals"]:
        path = f"/v1/reports/goals/{row['goal_id']}/timeseries"
        status, series = stack.api.request("GET", path, run.read, query=span)
        assert status == 200, series
        days = [day for day in series["days"] if day["counted"] or day["void"]]
        counters[row["name"]] = {"total": row | {"goal_id": None}, "days": days}
    events = {item["event_id"] for item in items if item.get("kind") == "event"}
    return {"conversions": decided, "counters": counters, "events": events}


def recount(conversions: dict[tuple[str, str], tuple]) -> Counter[tuple[str, str]]:
    return Counter((goal, status) for (_, goal), (status, *_) in conversions.items())


def counted_in_reports(counters: dict[str, Any]) -> Counter[tuple[str, str]]:
    totals: Counter[tuple[str, str]] = Counter()
    for goal, counter in counters.items():
        for day in counter["days"]:
            totals[(goal, "counted")] += day["counted"]
            totals[(goal, "void")] += day["void"]
    return +totals


def evaluation_poller(stack: InProcessStack, function: Any = None) -> StreamPoller:
    """A poller of the stack's stream feeding a fresh evaluation instance."""
    # One batch at a time: moto in process has no lock (as in conftest's stack).
    subscription = replace(stream_subscriptions(load_template())[0], parallelization_factor=1)
    if function is None:
        function = LocalFunction(subscription.function, subscription.code_uri, subscription.handler)
    return StreamPoller(
        stack.streams_client, stack.stream_arn, subscription, function, stack.dead_letters
    )
