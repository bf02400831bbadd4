"""Re-driving stream records that evaluation gave up on, once the cause is fixed.

After its bounded retries, Lambda sends a failing stream batch to the on-failure
destination. That message only points at the records (`DDBStreamBatchInfo`: the
stream, the shard and a sequence-number range); the records themselves stay in
the stream for 24 hours. `redrive_queue` reads those messages, re-reads the
records with GetShardIterator(AT_SEQUENCE_NUMBER) and GetRecords, evaluates them
and deletes each message whose records all succeeded. Locally the stream poller
writes the failed records themselves to a JSON-lines file (`DeadLetterFile`), and
`redrive_file` replays them and removes what succeeded.

Either way each record is evaluated as its event item is stored *now* (a
consistent read): a fix may be new code or a repaired item, and a repair written
over the item is a MODIFY record that evaluation never sees otherwise. A record
whose item is gone (deleted to discard a bad event) is dropped unevaluated.
Evaluation is idempotent per (event, goal), so replaying records that had
already succeeded changes nothing.
"""

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from goalkeeper_cli.local_stack.poller import DeadLetterFile, lambda_record, sequence_number
from goalkeeper_cli.local_stack.template import passes_filters

log = logging.getLogger("goalkeeper_cli.redrive")

# Records in, sequence numbers of the records that failed out.
Evaluate = Callable[[list[dict[str, Any]]], set[str]]
# DynamoDB key (attribute-value JSON) in, the item as stored now (or None) out.
CurrentItem = Callable[[str, dict[str, Any]], dict[str, Any] | None]

_STREAM_GONE = {
    "TrimmedDataAccessException",
    "ExpiredIteratorException",
    "ResourceNotFoundException",
}


@dataclass
class RedriveReport:
    batches: int = 0  # dead-letter entries or queue messages looked at
    records: int = 0  # records evaluated
    succeeded: int = 0
    failed: int = 0
    dropped: int = 0  # records whose event item no longer exists
    resolved: int = 0  # entries or messages removed because all their records succeeded
    unreadable: list[str] = field(default_factory=list)  # messages whose records are gone

    def summary(self) -> str:
        text = (
            f"{self.batches} failed batches: {self.records} records evaluated, "
            f"{self.succeeded} succeeded, {self.failed} still failing, "
            f"{self.dropped} dropped (event item gone); {self.resolved} batches cleared"
        )
        if self.unreadable:
            text += f"; {len(self.unreadable)} could not be re-read from the stream"
        return text


def table_name_of(stream_arn: str) -> str:
    """arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL -> NAME"""
    return stream_arn.split(":", 5)[5].split("/")[1]


def table_reader(dynamodb_client: Any) -> CurrentItem:
    def current_item(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        response = dynamodb_client.get_item(TableName=table, Key=key, ConsistentRead=True)
        return response.get("Item")

    return current_item


def _evaluate_current(
    records: list[dict[str, Any]], evaluate: Evaluate, current_item: CurrentItem
) -> tuple[set[str], set[str], int]:
    """(sequence numbers that succeeded, that failed, records dropped)."""
    refreshed = []
    dropped: set[str] = set()
    for record in records:
        image = current_item(table_name_of(record["eventSourceARN"]), record["dynamodb"]["Keys"])
        if image is None:
            log.warning("record %s: its event item is gone; dropped", sequence_number(record))
            dropped.add(sequence_number(record))
            continue
        refreshed.append(record | {"dynamodb": record["dynamodb"] | {"NewImage": image}})
    failed = evaluate(refreshed) if refreshed else set()
    succeeded = {sequence_number(record) for record in records} - failed
    return succeeded, failed, len(dropped)


def redrive_file(path: Path, evaluate: Evaluate, current_item: CurrentItem) -> RedriveReport:
    """Replay the local dead-letter file; keep only the records that still fail."""
    dead_letters = DeadLetterFile(path)
    report = RedriveReport()
    done: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for entry in dead_letters.read():
        report.batches += 1
        records = entry.get("records", [])
        succeeded, failed, dropped = _evaluate_current(records, evaluate, current_item)
        report.records += len(records) - dropped
        report.dropped += dropped
        report.succeeded += len(succeeded) - dropped
        report.failed += len(failed)
        remaining = [record for record in records if sequence_number(record) in failed]
        if remaining:
            done.append((entry, entry | {"records": remaining}))
        else:
            report.resolved += 1
            done.append((entry, None))
    dead_letters.replace(done)
    return report


def stream_range(streams_client: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of one failed batch, from its start to its end sequence number."""
    start, end = info["startSequenceNumber"], int(info["endSequenceNumber"])
    iterator = streams_client.get_shard_iterator(
        StreamArn=info["streamArn"],
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=start,
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    empty_reads = 0
    # An open shard may answer an empty page before later records; a few tries suffice.
    while iterator and empty_reads < 5:
        response = streams_client.get_records(ShardIterator=iterator, Limit=1000)
        page = response.get("Records", [])
        empty_reads = 0 if page else empty_reads + 1
        for record in page:
            if int(sequence_number(record)) > end:
                return records
            records.append(record)
        if records and int(sequence_number(records[-1])) == end:
            return records
        iterator = response.get("NextShardIterator")
    return records


def _messages(
    sqs_client: Any, queue_url: str, wait_seconds: int, visibility: int
) -> Iterator[dict[str, Any]]:
    """Each message of the queue once, until a receive brings nothing new."""
    seen: set[str] = set()
    while True:
        response = sqs_client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility,
        )
        messages = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
        if not messages:
            return
        seen.update(message["MessageId"] for message in messages)
        yield from messages


def redrive_queue(
    sqs_client: Any,
    streams_client: Any,
    queue_url: str,
    evaluate: Evaluate,
    current_item: CurrentItem,
    filter_patterns: list[dict[str, Any]],
    wait_seconds: int = 2,
    visibility_timeout: int = 900,
    region: str = "us-east-1",
) -> RedriveReport:
    """Re-drive every on-failure message of the queue; delete the ones that now succeed.

    A message whose records still fail stays invisible for `visibility_timeout`
    (so one run looks at each message once), then is there for the next run.
    """
    report = RedriveReport()
    for message in _messages(sqs_client, queue_url, wait_seconds, visibility_timeout):
        report.batches += 1
        info = json.loads(message["Body"]).get("DDBStreamBatchInfo")
        if info is None:
            log.warning("message %s is not a stream batch failure; left", message["MessageId"])
            report.unreadable.append(message["MessageId"])
            continue
        try:
            raw = stream_range(streams_client, info)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _STREAM_GONE:
                raise
            log.error(
                "message %s: its records are no longer in the stream (24 h retention): %s",
                message["MessageId"],
                error,
            )
            report.unreadable.append(message["MessageId"])
            continue
        # The range covers every record between the first and the last failed one;
        # the subscription's filter picks the ones the function was given.
        records = [lambda_record(record, info["streamArn"], region) for record in raw]
        records = [record for record in records if passes_filters(filter_patterns, record)]
        succeeded, failed, dropped = _evaluate_current(records, evaluate, current_item)
        report.records += len(records) - dropped
        report.dropped += dropped
        report.succeeded += len(succeeded) - dropped
        report.failed += len(failed)
        if not failed:
            sqs_client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            report.resolved += 1
    return report
