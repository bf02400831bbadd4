"""A poison record fails alone, is retried a bounded number of times, goes to the
on-failure destination, and `goalkeeper redrive` processes it once fixed (issue 7).

The poison is an event item written straight to the table (as a bad migration or
an operator's hand edit would) whose body no longer validates: a call that is
not connected yet was bridged for 75 seconds. It sits between two good calls in
one stream batch.
"""

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from goalkeeper.attributes import from_attributes, to_attributes
from goalkeeper_cli import commands
from goalkeeper_cli.local_stack.poller import StreamPoller, sequence_number
from goalkeeper_cli.local_stack.template import StreamSubscription
from support.faults import evaluation_poller
from support.stack import REGION, TABLE, InProcessStack

TEMPLATE_RETRIES = 5  # MaximumRetryAttempts of the evaluation function in template.yaml


def _call(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "call",
        "occurred_at": "2026-11-20T10:15:00Z",
        "visitor_id": f"v-{event_id}",
        "call_id": event_id,
        "connected": True,
        "bridged_seconds": 75,
    }


class Recording:
    """The evaluation function, remembering each batch it got and what it answered."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.calls: list[tuple[list[str], list[str]]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        try:
            result = self.function.invoke(event)
        except Exception:
            result = {"raised": True}
        failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
        if result.get("raised"):
            failures = [sequence_number(record) for record in event["Records"]]
        self.calls.append(([sequence_number(r) for r in event["Records"]], failures))
        if result.get("raised"):
            raise RuntimeError("the whole batch failed")
        return result


class PoisonScene:
    """Good call, poison call, good call, all stored before one poll of the stream."""

    def __init__(self, stack: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        account = stack.new_account()
        self.account_id, self.write = account["account_id"], account["keys"]["write"]
        assert stack.api.request("POST", "/v1/events", self.write, _call("good-1"))[0] == 202
        good = self.event_item("good-1")
        self.poison_key = {"pk": good["pk"].replace("good-1", "poison-1"), "sk": good["sk"]}
        poison = good | self.poison_key | {"event_id": "poison-1", "request_id": "hand-edit"}
        poison["body"] = good["body"] | {"event_id": "poison-1", "connected": False}
        poison.pop("gsi1pk", None), poison.pop("gsi1sk", None)
        stack.client.put_item(TableName=TABLE, Item=to_attributes(poison))
        assert stack.api.request("POST", "/v1/events", self.write, _call("good-2"))[0] == 202
        self.poller = evaluation_poller(stack)
        self.recording = Recording(self.poller.function)
        self.poller.function = self.recording
        self.poller.poll_once()

    def event_item(self, event_id: str) -> dict[str, Any]:
        key = {"pk": f"A#{self.account_id}#E#{event_id}", "sk": "EVENT"}
        return from_attributes(
            self.stack.client.get_item(TableName=TABLE, Key=to_attributes(key))["Item"]
        )

    def statuses(self) -> dict[str, str]:
        """event id -> status of its Call Qualified conversion."""
        return {
            item["event_id"]: item["status"]
            for item in self.stack.items()
            if item.get("kind") == "conversion"
            and item.get("account_id") == self.account_id
            and item.get("goal_name") == "Call Qualified"
        }

    def fix(self) -> None:
        item = self.stack.client.get_item(TableName=TABLE, Key=to_attributes(self.poison_key))
        repaired = from_attributes(item["Item"])
        repaired["body"]["connected"] = True
        self.stack.client.put_item(TableName=TABLE, Item=to_attributes(repaired))


def test_a_poison_record_fails_alone_and_is_dead_lettered_after_bounded_retries(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene = PoisonScene(stack, monkeypatch)
    calls = scene.recording.calls
    (first_batch, first_failures), *retries = calls
    assert len(first_batch) == 3  # good-1, poison-1, good-2 in one batch
    poison = first_batch[1]
    assert first_failures == [poison]  # the good records around it succeeded
    # Retried from the poison record (as Lambda does with ReportBatchItemFailures),
    # then given up on after MaximumRetryAttempts; only the poison kept failing.
    assert len(retries) == TEMPLATE_RETRIES
    assert all(batch[0] == poison and failures == [poison] for batch, failures in retries)
    assert scene.statuses() == {"good-1": "counted", "good-2": "counted"}

    (failure,) = scene.poller.dead_letters.read()
    assert [sequence_number(record) for record in failure["records"]] == [poison]
    assert failure["requestContext"]["approximateInvokeCount"] == TEMPLATE_RETRIES + 1
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == poison
    assert failure["DDBStreamBatchInfo"]["streamArn"].endswith(stack.stream_arn.split("/")[-1])
    # The shard moved on: the next poll delivers nothing again.
    scene.poller.poll_once()
    assert len(calls) == TEMPLATE_RETRIES + 1


def test_poison_record_is_redriven_locally_once_its_item_is_fixed(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scene = PoisonScene(stack, monkeypatch)
    redrive = ["redrive", "--dead-letters", str(stack.dead_letters), "--state-dir", str(tmp_path)]

    assert commands.main(redrive) == 1  # not fixed yet: still failing, kept
    assert len(scene.poller.dead_letters.read()) == 1

    scene.fix()
    assert commands.main(redrive) == 0
    assert scene.poller.dead_letters.read() == []
    assert scene.statuses() == {"good-1": "counted", "poison-1": "counted", "good-2": "counted"}
    assert commands.main(redrive) == 0  # nothing left to do


def test_poison_record_whose_item_was_deleted_is_dropped_by_redrive(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scene = PoisonScene(stack, monkeypatch)
    stack.client.delete_item(TableName=TABLE, Key=to_attributes(scene.poison_key))
    redrive = ["redrive", "--dead-letters", str(stack.dead_letters), "--state-dir", str(tmp_path)]
    assert commands.main(redrive) == 0
    assert scene.poller.dead_letters.read() == []
    assert scene.statuses() == {"good-1": "counted", "good-2": "counted"}


def test_poison_record_is_redriven_from_the_sqs_on_failure_queue(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = PoisonScene(stack, monkeypatch)
    (failure,) = scene.poller.dead_letters.read()
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="evaluation-dead-letters")["QueueUrl"]
    # What Lambda sends to an SQS on-failure destination: a pointer, not the records
    # (the range runs from the poison record to the end of the batch it was retried in).
    message = {key: value for key, value in failure.items() if key != "records"}
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
    redrive = ["redrive", "--queue-url", queue_url, "--wait-seconds", "0"]

    assert commands.main(redrive) == 2  # the aggregate shards must be known
    assert "--aggregate-shards" in capsys.readouterr().err
    redrive += ["--aggregate-shards", "4", "--visibility-timeout", "0"]
    assert commands.main(redrive) == 1  # still poison: the message stays
    assert "1 still failing" in capsys.readouterr().out
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"

    scene.fix()
    assert commands.main(redrive) == 0
    assert "1 batches cleared" in capsys.readouterr().out
    assert scene.statuses() == {"good-1": "counted", "poison-1": "counted", "good-2": "counted"}
    assert sqs.receive_message(QueueUrl=queue_url).get("Messages", []) == []


def test_poison_batch_errors_are_bisected_and_unbounded_retries_end_locally(
    tmp_path: Path,
) -> None:
    """MaximumRetryAttempts -1 ("until the record expires") is bounded locally; a whole
    batch that errors is split in two (BisectBatchOnFunctionError) until the poison
    record is alone."""

    def record(number: int) -> dict[str, Any]:
        return {
            "eventID": str(number),
            "eventName": "INSERT",
            "dynamodb": {"SequenceNumber": str(100 + number), "Keys": {}, "NewImage": {}},
        }

    class Streams:
        def describe_stream(self, **_: Any) -> dict[str, Any]:
            return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

        def get_shard_iterator(self, **_: Any) -> dict[str, Any]:
            return {"ShardIterator": "start"}

        def get_records(self, ShardIterator: str, **_: Any) -> dict[str, Any]:
            records = [record(n) for n in range(4)] if ShardIterator == "start" else []
            return {"Records": records, "NextShardIterator": "end"}

    class Function:
        def __init__(self) -> None:
            self.batches: list[list[str]] = []

        def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
            numbers = [r["eventID"] for r in event["Records"]]
            self.batches.append(numbers)
            if "2" in numbers:
                raise ValueError("poison")
            return {"batchItemFailures": []}

    subscription = StreamSubscription(
        function="EvaluateFunction",
        code_uri=tmp_path,
        handler="app.handler",
        batch_size=100,
        maximum_retry_attempts=-1,
        bisect_on_error=True,
        filter_patterns=[],
        report_batch_item_failures=True,
    )
    function = Function()
    poller = StreamPoller(
        Streams(), "arn:stream", subscription, function, tmp_path / "dl.jsonl", retry_limit=3
    )
    assert poller.max_retries == 3
    assert poller.poll_once() is True
    # Bisected until alone, retried (the count carries over the splits), dead-lettered;
    # then the shard goes on in order.
    assert function.batches == [["0", "1", "2", "3"], ["0", "1"], ["2", "3"], ["2"], ["2"], ["3"]]
    (failure,) = poller.dead_letters.read()
    assert [r["eventID"] for r in failure["records"]] == ["2"]
    assert failure["requestContext"]["approximateInvokeCount"] == 4
    assert poller.poll_once() is False
