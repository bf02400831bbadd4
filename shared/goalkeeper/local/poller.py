"""Feeds the table's stream to the evaluation function, the way Lambda's event source
mapping does: filtered records in batches, partial batch failures retried from the
first failed record, and a batch that keeps failing sent to the on-failure
destination (here a JSON-lines file) after the configured number of retries."""

import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from goalkeeper.local.functions import LocalFunction
from goalkeeper.local.template import StreamSubscription, passes_filters

log = logging.getLogger("local-stack")


def lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A stream record exactly as Lambda delivers it (moto returns a datetime here)."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


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
    ) -> None:
        self._client = streams_client
        self._arn = stream_arn
        self._subscription = subscription
        self._function = function
        self._dead_letters = dead_letter_file
        self._region = region
        self._idle_sleep = idle_sleep
        self._iterators: dict[str, str | None] = {}
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
        """One pass over every shard; True when records were delivered."""
        shards = self._client.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]
        delivered = False
        for shard in shards:
            shard_id = shard["ShardId"]
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
            self._iterators[shard_id] = response.get("NextShardIterator")
            records = [
                lambda_record(record, self._arn, self._region)
                for record in response.get("Records", [])
            ]
            records = [r for r in records if passes_filters(self._subscription.filter_patterns, r)]
            if records:
                delivered = True
                self._deliver(shard_id, records)
        return delivered

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        attempts = 0
        while records:
            failed_from = self._invoke(records)
            if failed_from is None:
                return
            attempts += 1
            if attempts > self._subscription.maximum_retry_attempts:
                self._send_to_destination(shard_id, records[failed_from:], attempts)
                return
            records = records[failed_from:]

    def _invoke(self, records: list[dict[str, Any]]) -> int | None:
        """Index of the first record to retry, or None when the batch succeeded."""
        try:
            result = self._function.invoke({"Records": records}) or {}
        except Exception:
            log.exception("evaluation function failed for a whole batch")
            return 0
        failures = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for index, record in enumerate(records):
            if record["dynamodb"]["SequenceNumber"] in failures:
                return index
        return None

    def _send_to_destination(
        self, shard_id: str, records: list[dict[str, Any]], attempts: int
    ) -> None:
        failure = {
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "batchSize": len(records),
                "streamArn": self._arn,
            },
            "records": records,
        }
        self._dead_letters.parent.mkdir(parents=True, exist_ok=True)
        with self._dead_letters.open("a") as sink:
            sink.write(json.dumps(failure) + "\n")
        log.error(
            "%d stream records sent to %s after %d attempts",
            len(records),
            self._dead_letters,
            attempts,
        )
