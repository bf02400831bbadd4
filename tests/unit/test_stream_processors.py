"""The stream subscribers' batch policy, without a table: pure unit tests with small fakes.

EvaluationProcessor decides a shard's events in stream order: an outage at record k
fails records k..n in order, the later ones unattempted; any other failure is the
record's own; an outage counting the batch's visitors seen fails every record; a batch
whose every record failed is still a partial response. BackfillProcessor decides each
record on its own. The same batches run end to end against moto in test_poison.py,
test_fault_injection.py and test_backfill.py.
"""

from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit
from boto3.dynamodb.types import TypeSerializer

from goalkeeper.dal.goals import LibraryVersion
from goalkeeper.dedup import Decision
from goalkeeper.errors import StoreUnavailable, WriteRejected
from goalkeeper.models.accounts import AttributionSettings
from goalkeeper.services.backfill_stream import BackfillProcessor
from goalkeeper.services.evaluation import Evaluator
from goalkeeper.services.evaluation_stream import EvaluationProcessor
from goalkeeper.settings import Settings

_serializer = TypeSerializer()
CONTEXT: Any = SimpleNamespace(get_remaining_time_in_millis=lambda: 900_000)


def stream_batch(*images: dict[str, Any]) -> dict[str, Any]:
    """A Lambda event of INSERT records, sequence numbers 100, 101, ... in stream order."""
    return {
        "Records": [
            {
                "eventID": f"id-{n}",
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "dynamodb": {
                    "SequenceNumber": str(100 + n),
                    "NewImage": {name: _serializer.serialize(v) for name, v in image.items()},
                },
            }
            for n, image in enumerate(images)
        ]
    }


def events(*event_ids: str) -> dict[str, Any]:
    return stream_batch(*({"account_id": "acc", "event_id": e} for e in event_ids))


def failed(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


class FakeLog:
    """Powertools Logger's methods a subscriber calls; keeps (level, message)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _keep(self, level: str) -> Any:
        return lambda message, *_args, **_kwargs: self.lines.append((level, message))

    def __getattr__(self, level: str) -> Any:
        return self._keep(level)


def not_debug(log: FakeLog) -> list[tuple[str, str]]:
    return [line for line in log.lines if line[0] != "debug"]


class FakeMetrics:
    def __init__(self) -> None:
        self.names: list[str] = []

    def add_metric(self, name: str, unit: MetricUnit, value: float) -> None:
        self.names.append(name)


class FakeEvaluator:
    """Evaluates each event by its id: raises the fault given for it, else decides
    `decisions`; counts the batch's sightings, or raises `sightings_fault`."""

    def __init__(
        self,
        faults: dict[str, Exception] | None = None,
        sightings_fault: Exception | None = None,
        decisions: list[Decision] | None = None,
    ) -> None:
        self.faults = faults or {}
        self.sightings_fault = sightings_fault
        self.decisions = decisions or []
        self.calls: list[str] = []

    def new_batch(self) -> None:
        self.calls.append("new_batch")

    def evaluate(self, item: dict[str, Any]) -> list[Decision]:
        self.calls.append(item["event_id"])
        if item["event_id"] in self.faults:
            raise self.faults[item["event_id"]]
        return self.decisions

    def count_sightings(self) -> None:
        self.calls.append("count_sightings")
        if self.sightings_fault is not None:
            raise self.sightings_fault


def evaluation(
    evaluator: Any, log: FakeLog | None = None, metrics: FakeMetrics | None = None
) -> EvaluationProcessor:
    return EvaluationProcessor(evaluator, log or FakeLog(), metrics or FakeMetrics())  # type: ignore[arg-type]


OUTAGE = StoreUnavailable("the table could not be reached")


def test_an_outage_at_record_k_fails_k_to_n_in_order_without_attempting_the_rest() -> None:
    evaluator = FakeEvaluator(faults={"e2": OUTAGE})
    log = FakeLog()
    response = evaluation(evaluator, log).handle(events("e0", "e1", "e2", "e3", "e4"), CONTEXT)
    assert failed(response) == ["102", "103", "104"]
    assert evaluator.calls == ["new_batch", "e0", "e1", "e2", "count_sightings"]
    assert not_debug(log) == [
        ("warning", "store unavailable; the batch is retried from this record")
    ]


def test_a_poison_record_fails_alone_and_the_rest_are_decided() -> None:
    evaluator = FakeEvaluator(faults={"e1": ValueError("not an event")})
    log = FakeLog()
    response = evaluation(evaluator, log).handle(events("e0", "e1", "e2"), CONTEXT)
    assert failed(response) == ["101"]
    assert evaluator.calls == ["new_batch", "e0", "e1", "e2", "count_sightings"]
    assert [level for level, _ in not_debug(log)] == ["exception"]


def test_a_rejected_write_fails_its_record_alone_and_counts_for_the_alarm() -> None:
    evaluator = FakeEvaluator(faults={"e0": WriteRejected("invalid key")})
    metrics = FakeMetrics()
    response = evaluation(evaluator, metrics=metrics).handle(events("e0", "e1"), CONTEXT)
    assert failed(response) == ["100"]
    assert evaluator.calls == ["new_batch", "e0", "e1", "count_sightings"]
    assert metrics.names == ["DecisionWritesRejected"]


def test_an_outage_after_a_poison_record_still_defers_the_rest() -> None:
    evaluator = FakeEvaluator(faults={"e0": ValueError("poison"), "e2": OUTAGE})
    response = evaluation(evaluator).handle(events("e0", "e1", "e2", "e3"), CONTEXT)
    assert failed(response) == ["100", "102", "103"]
    assert evaluator.calls == ["new_batch", "e0", "e1", "e2", "count_sightings"]


def test_an_outage_counting_sightings_fails_every_record_of_the_batch_in_order() -> None:
    evaluator = FakeEvaluator(faults={"e1": ValueError("poison")}, sightings_fault=OUTAGE)
    log = FakeLog()
    response = evaluation(evaluator, log).handle(events("e0", "e1", "e2"), CONTEXT)
    assert failed(response) == ["100", "101", "102"]
    assert ("warning", "visitors seen could not be counted; the batch is retried") in log.lines


def test_a_fully_failed_batch_is_a_partial_response_not_a_raised_error() -> None:
    outage_first = evaluation(FakeEvaluator(faults={"e0": OUTAGE}))
    assert failed(outage_first.handle(events("e0", "e1"), CONTEXT)) == ["100", "101"]
    all_poison = evaluation(FakeEvaluator(faults={"e0": KeyError("a"), "e1": KeyError("b")}))
    assert failed(all_poison.handle(events("e0", "e1"), CONTEXT)) == ["100", "101"]
    sightings = evaluation(FakeEvaluator(sightings_fault=OUTAGE))
    assert failed(sightings.handle(events("e0", "e1"), CONTEXT)) == ["100", "101"]


def test_an_outage_defers_only_the_rest_of_its_own_batch() -> None:
    evaluator = FakeEvaluator(faults={"e0": OUTAGE})
    processor = evaluation(evaluator)
    assert failed(processor.handle(events("e0", "e1"), CONTEXT)) == ["100", "101"]
    evaluator.faults.clear()
    assert processor.handle(events("e0", "e1"), CONTEXT) == {"batchItemFailures": []}
    assert evaluator.calls[-4:] == ["new_batch", "e0", "e1", "count_sightings"]


def test_a_failure_other_than_an_outage_counting_sightings_is_the_functions_error() -> None:
    """Only an outage is retried as a batch; anything else is a defect, raised (Lambda
    retries the invocation, then bisects it)."""
    processor = evaluation(FakeEvaluator(sightings_fault=WriteRejected("invalid")))
    with pytest.raises(WriteRejected):
        processor.handle(events("e0"), CONTEXT)


def test_conversions_decided_now_are_counted_in_metrics_replays_are_not() -> None:
    decisions = [
        Decision("c1", "g1", "counted"),
        Decision("c2", "g2", "void", reason="duplicate"),
        Decision("c3", "g3", "counted", replayed=True),
    ]
    metrics = FakeMetrics()
    evaluation(FakeEvaluator(decisions=decisions), metrics=metrics).handle(events("e0"), CONTEXT)
    assert metrics.names == ["ConversionsCounted", "ConversionsVoid"]


# -- the evaluator's lifetimes, over a fake store ----------------------------------------


class FakeStore:
    """An account with an empty goal library; sightings counted in memory. It stands in
    for the data access bundle (goalkeeper.dal.Dal) and for its goals, funnels and
    decisions."""

    def __init__(self) -> None:
        self.version_reads = 0
        self.counted: list[list[str]] = []
        self.sightings_fault: Exception | None = None
        self.goals = self.decisions = self.funnels = self

    def all(self, account_id: str) -> list[Any]:  # no funnels
        return []

    def library_version(self, account_id: str) -> LibraryVersion:
        self.version_reads += 1
        return LibraryVersion(1, "UTC", AttributionSettings())

    def library(self, account_id: str) -> list[Any]:
        return []

    def count_sightings(self, sightings: list[Any]) -> None:
        if self.sightings_fault is not None:
            raise self.sightings_fault
        self.counted.append([sighting.visitor_id for sighting in sightings])


def page_views(*visits: tuple[str, str]) -> dict[str, Any]:
    """Stored page views, (event id, visitor id) each, on one day."""
    return stream_batch(
        *(
            {
                "account_id": "acc",
                "event_id": event_id,
                "body": {
                    "type": "page_view",
                    "event_id": event_id,
                    "occurred_at": "2026-11-20T10:15:00Z",
                    "visitor_id": visitor_id,
                    "url": "https://example.com/",
                },
            }
            for event_id, visitor_id in visits
        )
    )


def test_each_batch_reads_the_library_version_once_and_visitors_are_counted_once_while_warm() -> (
    None
):
    store = FakeStore()
    processor = evaluation(Evaluator(lambda: store, lambda: Settings(aggregate_shards=4)))
    first = page_views(("e0", "v1"), ("e1", "v1"), ("e2", "v2"))
    assert processor.handle(first, CONTEXT) == {"batchItemFailures": []}
    assert store.version_reads == 1
    assert store.counted == [["v1", "v2"]]
    assert processor.handle(page_views(("e3", "v1")), CONTEXT) == {"batchItemFailures": []}
    assert store.version_reads == 2  # one snapshot per batch
    assert store.counted[-1] == []  # v1 was counted that day by this warm Lambda


def test_a_batch_retried_after_its_sightings_failed_counts_them_again() -> None:
    """Found by these tests: the visitors of deferred sightings were taken for seen
    before their write, so when it failed, the batch retried in the same warm Lambda
    deferred nothing and those visitor-days were never counted."""
    store = FakeStore()
    processor = evaluation(Evaluator(lambda: store, lambda: Settings(aggregate_shards=4)))
    batch = page_views(("e0", "v1"), ("e1", "v2"))
    store.sightings_fault = OUTAGE
    assert failed(processor.handle(batch, CONTEXT)) == ["100", "101"]
    store.sightings_fault = None
    assert processor.handle(batch, CONTEXT) == {"batchItemFailures": []}
    assert store.counted == [["v1", "v2"]]


# -- backfill: each record on its own -----------------------------------------------------


class FakeJobStore:
    """Jobs that have all moved on (JobRun.resume finds nothing to run), except that
    reading the job of `unreachable` meets an outage. It stands in for the data access
    bundle (goalkeeper.dal.Dal) and for its jobs."""

    def __init__(self, unreachable: str) -> None:
        self.unreachable = unreachable
        self.reads: list[str] = []
        self.jobs = self

    def get(self, account_id: str, job_id: str) -> dict[str, Any] | None:
        self.reads.append(job_id)
        if job_id == self.unreachable:
            raise OUTAGE
        return None


def test_a_backfill_record_that_meets_an_outage_fails_alone_the_next_jobs_still_run() -> None:
    store = FakeJobStore(unreachable="j1")
    processor = BackfillProcessor(
        lambda: store,  # type: ignore[arg-type, return-value]
        lambda: Settings(aggregate_shards=4, backfill_page_events=100),
        FakeLog(),  # type: ignore[arg-type]
        FakeMetrics(),
    )
    jobs = stream_batch(
        *({"account_id": "acc", "job_id": j, "goal_id": "g", "step": 1} for j in ("j0", "j1", "j2"))
    )
    assert failed(processor.handle(jobs, CONTEXT)) == ["101"]
    assert store.reads == ["j0", "j1", "j2"]
