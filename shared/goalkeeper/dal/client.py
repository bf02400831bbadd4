"""The table every aggregate's door shares: the boto3 client and its configuration,
the one mapping of DynamoDB and botocore failures to domain errors, the one backoff,
pagination (a page and its cursor), batched gets and the commit of a Transaction.
"""

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from goalkeeper.attributes import from_attributes, to_attributes
from goalkeeper.dal.transactions import Transaction, TransactionCancelled
from goalkeeper.errors import StoreUnavailable, WriteRejected

# Throttling, 5xx and timeouts are retried by botocore: standard mode, 4 attempts in
# all, with exponential backoff and full jitter (botocore 1.44: up to 1, 2, 4 s after a
# throttle, up to 25, 50, 100 ms after a 5xx or timeout). The worst case, ~7 s of
# backoff plus four 3 s timeouts, stays near the ingest function's 10 s, so a caller
# gets our 503, not a gateway timeout. A retry that lands after an earlier attempt
# already wrote is recognised by our conditions (see Events.put, Decisions.decide_event).
CLIENT_CONFIG = {
    "retries": {"total_max_attempts": 4, "mode": "standard"},
    "connect_timeout": 1,
    "read_timeout": 2,
}
# Attempts at a transaction that lost to concurrent writes (see `attempts`).
TRANSACTION_CONFLICT_ATTEMPTS = 5
BATCH_GET_LIMIT = 100
BATCH_GET_ATTEMPTS = 6
BATCH_WRITE_LIMIT = 25
# DynamoDB refuses an empty key value, and a sort key over 1,024 bytes (partition keys 2,048).
MAX_KEY_BYTES = 1024

# Errors botocore retries (throttling and transient); once its attempts are spent they
# mean "not done, try later" (StoreUnavailable, HTTP 503), as does any 5xx status.
_RETRYABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "InternalServerError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
}
# Cancellation reasons that only say "concurrent writes won": worth waiting and retrying.
_CONFLICT_CODES = {"TransactionConflict", "ThrottlingError", "ConditionalCheckFailed"}


class ConditionFailed(Exception):
    """A single-item write's condition failed (ConditionalCheckFailedException), with
    the item as it was when the write asked for it (ReturnValuesOnConditionCheckFailure)."""

    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("the condition of the write failed")
        self.item = item


@dataclass
class Page:
    """One Query request's items, and where the next page starts (None: the end)."""

    items: list[dict[str, Any]]
    cursor: dict[str, Any] | None


def is_key_value(value: Any) -> bool:
    """Whether DynamoDB takes `value` as a string key value in a start position:
    UTF-8 text (JSON can carry a lone surrogate, which is none) of a size it allows."""
    if not isinstance(value, str):
        return False
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        return False
    return 0 < size <= MAX_KEY_BYTES


def pause(attempt: int) -> None:
    """The one backoff: before the `attempt`-th retry (from 0), 50 ms doubling, at most 1.6 s."""
    time.sleep(0.05 * 2 ** min(attempt, 5))


def back_off(cancelled: TransactionCancelled, attempt: int) -> None:
    """Wait before retrying a transaction that lost to concurrent writes; any other
    cause of a cancellation that taught nothing is a defect, not a busy store."""
    codes = cancelled.codes()
    if codes - _CONFLICT_CODES:
        raise WriteRejected(f"transaction cancelled: {sorted(codes)}") from cancelled
    pause(attempt)


def attempts(count: int, exhausted: str) -> Iterator[int]:
    """Attempt numbers for a retry loop; once `count` are spent, StoreUnavailable saying
    `exhausted`. The loop returns (or breaks) when an attempt settles the matter."""
    yield from range(count)
    raise StoreUnavailable(exhausted)


def _domain_error(error: ClientError, transaction: Transaction | None) -> Exception | None:
    """The one mapping of a DynamoDB error to what callers handle (None: a defect, raised
    as it is)."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in _RETRYABLE_CODES or status >= 500:
        return StoreUnavailable("the event store is busy; retry the request")
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(from_attributes(error.response.get("Item", {})))
    if transaction is not None and code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return TransactionCancelled(transaction.reasons(reasons))
    if transaction is not None and code == "ValidationException":
        return WriteRejected(f"DynamoDB refused the write: {error}")
    return None


class Table:
    """The single table, through one lazily created client."""

    def __init__(self, name: str, client: Any | None = None) -> None:
        self.name = name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            # Imported here: boto3 costs ~0.3 s, which the first request pays, not the cold start.
            import boto3
            from botocore.config import Config

            self._client = boto3.client("dynamodb", config=Config(**CLIENT_CONFIG))
        return self._client

    def call(
        self, operation: str, transaction: Transaction | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run one request; its failures as domain errors (StoreUnavailable once botocore's
        retries are spent), ConditionFailed or, for a transaction, TransactionCancelled."""
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**kwargs)
        except ClientError as error:
            mapped = _domain_error(error, transaction)
            if mapped is None:
                raise
            raise mapped from error
        except BotoCoreError as error:
            raise StoreUnavailable("the event store could not be reached") from error
        return response

    def get(
        self, key: Mapping[str, str], consistent: bool = False, **request: Any
    ) -> dict[str, Any] | None:
        """One item by key (None: none there); `request` adds to the GetItem (a projection)."""
        response = self.call(
            "get_item",
            TableName=self.name,
            Key=to_attributes(key),
            ConsistentRead=consistent,
            **request,
        )
        item = response.get("Item")
        return from_attributes(item) if item else None

    def update(
        self,
        key: Mapping[str, str],
        update: str,
        condition: str | None = None,
        returned: str = "NONE",
        old_on_failure: bool = False,
        **request: Any,
    ) -> dict[str, Any]:
        """One UpdateItem: the attributes `returned` names ({} for NONE). A failed
        `condition` raises ConditionFailed, carrying the item as it was when
        `old_on_failure`; `request` adds the expression's names and values."""
        if condition is not None:
            request["ConditionExpression"] = condition
        if old_on_failure:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        response = self.call(
            "update_item",
            TableName=self.name,
            Key=to_attributes(key),
            UpdateExpression=update,
            ReturnValues=returned,
            **request,
        )
        return from_attributes(response.get("Attributes", {}))

    def query(self, **query: Any) -> Iterator[dict[str, Any]]:
        """Every item a Query reads, page after page."""
        while True:
            response = self.call("query", TableName=self.name, **query)
            yield from (from_attributes(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def count(self, **query: Any) -> int:
        """How many items a Query reads (Select COUNT: the same read units as reading them)."""
        query = query | {"TableName": self.name, "Select": "COUNT"}
        total = 0
        while True:
            response = self.call("query", **query)
            total += response["Count"]
            if "LastEvaluatedKey" not in response:
                return total
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def page(self, limit: int, start: Mapping[str, Any] | None, **query: Any) -> Page:
        """One Query request reading at most `limit` items, from just after `start`."""
        if start:
            query["ExclusiveStartKey"] = to_attributes(start)
        response = self.call("query", TableName=self.name, Limit=limit, **query)
        last = response.get("LastEvaluatedKey")
        return Page(
            [from_attributes(item) for item in response.get("Items", [])],
            from_attributes(last) if last else None,
        )

    def get_many(
        self, item_keys: list[dict[str, str]], consistent: bool = False
    ) -> list[dict[str, Any]]:
        """Items by exact key (BatchGetItem, 100 at a time); missing keys are skipped."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(item_keys), BATCH_GET_LIMIT):
            request = {
                self.name: {
                    "Keys": [
                        to_attributes(key) for key in item_keys[start : start + BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": consistent,
                }
            }
            for attempt in attempts(BATCH_GET_ATTEMPTS, "the table kept deferring a batch read"):
                response = self.call("batch_get_item", RequestItems=request)
                found.extend(
                    from_attributes(item)
                    for item in response.get("Responses", {}).get(self.name, [])
                )
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                pause(attempt)
        return found

    def put_many(self, items: list[dict[str, Any]]) -> None:
        """Unconditional puts (BatchWriteItem, 25 at a time), for items that a repeat
        writes identically; what the table defers is sent again."""
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            request = {
                self.name: [
                    {"PutRequest": {"Item": to_attributes(item)}}
                    for item in items[start : start + BATCH_WRITE_LIMIT]
                ]
            }
            for attempt in attempts(BATCH_GET_ATTEMPTS, "the table kept deferring a batch write"):
                response = self.call("batch_write_item", RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                pause(attempt)

    def transaction(self) -> Transaction:
        return Transaction(self.name)

    def commit(self, transaction: Transaction) -> None:
        """One TransactWriteItems; a cancellation comes back as its reasons by tag."""
        self.call("transact_write_items", transaction, TransactItems=transaction.request())
