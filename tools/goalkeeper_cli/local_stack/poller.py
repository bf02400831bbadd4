"""Feeds the table's stream to the evaluation function, the way Lambda's event source
mapping does: filtered records in batches, partial batch failures retried from the
first failed record, a batch whose function invocation failed split in two (bisect),
and a batch that keeps failing sent to the on-failure destination (here a JSON-lines
file, `DeadLetterFile`) after the configured number of retries."""

import contextlib
import fcntl
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from goalkeeper_cli.local_stack.functions import LocalFunction
from goalkeeper_cli.local_stack.template import (
    EVALUATION_FUNCTION,
    StreamSubscription,
    passes_filters,
)

log = logging.getLogger("local-stack")

# MaximumRetryAttempts -1 means "until the record expires" (24 hours in a DynamoDB
# stream). Locally a record that fails this often is dead-lettered instead, so one
# bad record cannot block its shard for a day.
LOCAL_RETRY_LIMIT = 100
MAX_RETRY_DELAY = 5.0


def lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A stream record exactly as Lambda delivers it, whatever the engine: the creation
    time in whole epoch seconds (boto3 parses it into a datetime; on the wire moto sends
    a float with microseconds, DynamoDB Local a float of whole seconds), the region of
    the stack (DynamoDB Local names its own "ddblocal")."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        created = created.timestamp()
    if created is not None:
        dynamodb["ApproximateCreationDateTime"] = int(created)
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


def sequence_number(record: dict[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


def invoke_batch(function: LocalFunction, records: list[dict[str, Any]]) -> tuple[set[str], bool]:
    """Invoke the function with one batch: (sequence numbers that failed, function error).

    A function error (the invocation raised, as Powertools does when every record
    of a batch failed) fails the whole batch.
    """
    try:
        result = function.invoke({"Records": records}) or {}
    except Exception:
        log.exception("evaluation function failed for a whole batch")
        return {sequence_number(record) for record in records}, True
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    return failed & {sequence_number(record) for record in records}, False


def dead_letter_file(function: str) -> str:
    """Evaluation's failed records go where `goalkeeper redrive` replays them from; any
    other function's to a file of its own, never replayed into evaluation."""
    if function == EVALUATION_FUNCTION:
        return "dead-letters.jsonl"
    return f"dead-letters-{function}.jsonl"


class DeadLetterFile:
    """The local on-failure destination: one JSON document per line, each a failed
    batch as Lambda describes it (`DDBStreamBatchInfo`) plus the failed records
    themselves. Writers and `goalkeeper redrive` lock the file, so a redrive never
    loses a line the poller appends meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, failure: dict[str, Any]) -> None:
        with self._locked() as handle:
            handle.write(json.dumps(failure) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self._locked() as handle:
            handle.seek(0)
            return [json.loads(line) for line in handle if line.strip()]

    def replace(self, done: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> None:
        """Swap each (entry, new entry or None to drop it), keeping lines added meanwhile."""
        with self._locked() as handle:
            handle.seek(0)
            entries = [json.loads(line) for line in handle if line.strip()]
            for old, new in done:
                if old in entries:
                    position = entries.index(old)
                    if new is None:
                        del entries[position]
                    else:
                        entries[position] = new
            handle.seek(0)
            handle.truncate()
            handle.writelines(json.dumps(entry) + "\n" for entry in entries)


class StreamPoller:
    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        subscription: StreamSubscription,
        function: LocalFunction,
        dead_letter_file: Path,
        region: str = "us-east-1",
        idle_sleep: float = 0.1,
        retry_delay: float = 0.0,
        retry_limit: int = LOCAL_RETRY_LIMIT,
    ) -> None:
        self._client = streams_client
        self._arn = stream_arn
        self._subscription = subscription
        self.function = function
        self.dead_letters = DeadLetterFile(dead_letter_file)
        self._region = region
        self._idle_sleep = idle_sleep
        self.retry_delay = retry_delay  # doubled per retry of a batch, at most MAX_RETRY_DELAY
        retries = subscription.maximum_retry_attempts
        self.max_retries = min(retries, retry_limit) if retries >= 0 else retry_limit
        self._iterators: dict[str, str | None] = {}
        self._shards: list[str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self.idle = threading.Event()  # set whenever a full pass found nothing to do

    def start(self) -> "StreamPoller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.poll_once()
            except Exception:
                log.exception("stream poll failed; retrying")
                busy = False
            if not busy:
                self.idle.set()
                self._stop.wait(self._idle_sleep)
            else:
                self.idle.clear()

    def poll_once(self) -> bool:
        """One pass over every shard; True when records were read (delivered or filtered out).

        A batch whose records are all filtered out (the conversions and counters
        evaluation itself writes) is progress too: more records may follow it.
        """
        progressed = False
        for shard_id in self._shard_ids():
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._client.get_shard_iterator(
                    StreamArn=self._arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            if iterator is None:
                continue
            response = self._client.get_records(
                ShardIterator=iterator, Limit=self._subscription.batch_size
            )
            read = response.get("Records", [])
            records = [lambda_record(record, self._arn, self._region) for record in read]
            records = [r for r in records if passes_filters(self._subscription.filter_patterns, r)]
            if records:
                self._deliver_in_parallel(shard_id, records)
            # The checkpoint moves only once the batch is done (succeeded or dead-lettered).
            self._iterators[shard_id] = response.get("NextShardIterator")
            if self._iterators[shard_id] is None:
                self._shards = None  # a shard ended: its children are new shards
            progressed = progressed or bool(read)
        return progressed

    def _shard_ids(self) -> list[str]:
        """The stream's shards, listed again only after one ended: a DynamoDB stream
        opens new shards only as the children of one that closed."""
        if self._shards is None:
            description = self._client.describe_stream(StreamArn=self._arn)["StreamDescription"]
            self._shards = [shard["ShardId"] for shard in description["Shards"]]
        return self._shards

    def _deliver_in_parallel(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        """Like Lambda's ParallelizationFactor: records are split by partition key into
        up to that many batches, delivered at once; one key's records stay in order."""
        factor = self._subscription.parallelization_factor
        groups: dict[int, list[dict[str, Any]]] = {}
        for record in records:
            key = json.dumps(record["dynamodb"]["Keys"], sort_keys=True)
            groups.setdefault(hash(key) % factor, []).append(record)
        if len(groups) == 1:
            self._deliver(shard_id, records)
            return
        workers = [
            threading.Thread(target=self._deliver, args=(shard_id, group), daemon=True)
            for group in groups.values()
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        """Invoke until the batch succeeds, keeping the shard's order: a retry starts at
        the first failed record; after `max_retries` the failed records are dead-lettered.

        A retry is counted against the batch that starts at the checkpoint: when an
        invocation moves the checkpoint (its first records succeeded), the records
        left form a new batch with a fresh count, so a record is given up on only
        after failing `max_retries + 1` times itself.
        """
        pending: list[tuple[list[dict[str, Any]], int]] = [(records, 0)]
        while pending:
            batch, attempts = pending.pop(0)
            failed, function_error = invoke_batch(self.function, batch)
            if not failed:
                continue
            first = next(i for i, record in enumerate(batch) if sequence_number(record) in failed)
            attempts = 1 if first > 0 else attempts + 1
            if attempts > self.max_retries:
                self._send_to_destination(shard_id, batch[first:], failed, attempts)
                continue
            if self.retry_delay:
                self._stop.wait(min(self.retry_delay * 2 ** (attempts - 1), MAX_RETRY_DELAY))
            if function_error and self._subscription.bisect_on_error and len(batch) > 1:
                middle = len(batch) // 2
                pending[:0] = [(batch[:middle], attempts), (batch[middle:], attempts)]
            else:
                pending.insert(0, (batch[first:], attempts))

    def _send_to_destination(
        self, shard_id: str, batch: list[dict[str, Any]], failed: set[str], attempts: int
    ) -> None:
        """What Lambda sends to an SQS on-failure destination, plus the failed records
        (AWS sends only the sequence range; `goalkeeper redrive` re-reads it from the stream)."""
        records = [record for record in batch if sequence_number(record) in failed]
        failure = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": sequence_number(batch[0]),
                "endSequenceNumber": sequence_number(batch[-1]),
                "batchSize": len(batch),
                "streamArn": self._arn,
            },
            "records": records,
        }
        self.dead_letters.append(failure)
        log.error(
            "%d stream records sent to %s after %d attempts",
            len(records),
            self.dead_letters.path,
            attempts,
        )
