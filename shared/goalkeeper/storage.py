"""DynamoDB access: every read and write of the table goes through `Store`.

Keys come from goalkeeper.keys; this module owns expressions, (de)serialisation
and the mapping of DynamoDB failures to domain outcomes. Duplicate goals are
refused by conditions inside one TransactWriteItems, never by read-then-write.
"""

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from goalkeeper import keys
from goalkeeper.dedup import ConversionPlan, Decision
from goalkeeper.errors import Conflict, StoreUnavailable

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Throttling, 5xx and timeouts are retried by botocore (standard mode, with
# exponential backoff and jitter); a retry that lands after an earlier attempt
# already wrote is recognised by our conditions (see Store.put_event/decide).
CLIENT_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=2,
    read_timeout=5,
)
TRANSACTION_CONFLICT_ATTEMPTS = 5


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items() if value is not None}


def from_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in attributes.items()}


@dataclass
class Page:
    items: list[dict[str, Any]]
    cursor: dict[str, Any] | None


class Store:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb", config=CLIENT_CONFIG)
        return self._client

    # -- generic helpers ---------------------------------------------------

    def _get(self, key: Mapping[str, str], consistent: bool = False) -> dict[str, Any] | None:
        response = self._call(
            self.client.get_item,
            TableName=self.table_name,
            Key=to_attributes(key),
            ConsistentRead=consistent,
        )
        item = response.get("Item")
        return from_attributes(item) if item else None

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        while True:
            response = self._call(self.client.query, TableName=self.table_name, **kwargs)
            yield from (from_attributes(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _call(self, operation: Any, **kwargs: Any) -> dict[str, Any]:
        """Run one request; give up as StoreUnavailable once botocore's retries are spent."""
        try:
            return operation(**kwargs)
        except ClientError as error:
            if _error_code(error) in _RETRYABLE_CODES:
                raise StoreUnavailable("the event store is busy; retry the request") from error
            raise
        except BotoCoreError as error:
            raise StoreUnavailable("the event store could not be reached") from error

    # -- accounts and keys -------------------------------------------------

    def create_items(self, items: list[dict[str, Any]]) -> None:
        """Create several new items all-or-nothing (an account with its keys and goals)."""
        self._call(
            self.client.transact_write_items,
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": to_attributes(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
                for item in items
            ],
        )

    def get_api_key(self, digest: str) -> dict[str, Any] | None:
        return self._get(keys.api_key(digest))

    def get_account(self, account_id: str) -> dict[str, Any] | None:
        return self._get(keys.account(account_id))

    # -- events ------------------------------------------------------------

    def put_event(self, item: dict[str, Any]) -> bool:
        """Store a new event; False when its id was already stored by an earlier request.

        A botocore retry of our own request (a timeout after the write landed)
        finds an item with our request id and still counts as accepted.
        """
        try:
            self._call(
                self.client.put_item,
                TableName=self.table_name,
                Item=to_attributes(item),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            old = from_attributes(error.response.get("Item", {}))
            return old.get("request_id") == item["request_id"]
        return True

    def visit_page_views_before(self, account_id: str, visit_id: str, before_sk: str) -> int:
        total = 0
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.SCOPE_INDEX,
            "KeyConditionExpression": "gsi2pk = :pk AND gsi2sk < :before",
            "ExpressionAttributeValues": to_attributes(
                {":pk": keys.visit_scope_pk(account_id, visit_id), ":before": before_sk}
            ),
            "Select": "COUNT",
        }
        while True:
            response = self._call(self.client.query, **kwargs)
            total += response["Count"]
            if "LastEvaluatedKey" not in response:
                return total
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def contact_tag_events_before(
        self, account_id: str, contact_id: str, before_sk: str
    ) -> list[dict[str, Any]]:
        return list(
            self._query(
                IndexName=keys.SCOPE_INDEX,
                KeyConditionExpression="gsi2pk = :pk AND gsi2sk < :before",
                ExpressionAttributeValues=to_attributes(
                    {":pk": keys.contact_scope_pk(account_id, contact_id), ":before": before_sk}
                ),
            )
        )

    # -- goals -------------------------------------------------------------

    def list_goal_items(self, account_id: str) -> list[dict[str, Any]]:
        return list(
            self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_attributes({":pk": keys.goal_library_pk(account_id)}),
            )
        )

    def get_goal_item(self, account_id: str, goal_id: str) -> dict[str, Any] | None:
        return self._get(keys.goal(account_id, goal_id), consistent=True)

    def save_goal(
        self, goal_item: dict[str, Any], version_item: dict[str, Any], previous_version: int | None
    ) -> None:
        """Write a goal's new current version and its history entry, refusing lost updates."""
        if previous_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :previous",
                "ExpressionAttributeValues": to_attributes({":previous": previous_version}),
            }
        try:
            self._call(
                self.client.transact_write_items,
                TransactItems=[
                    {
                        "Put": {"TableName": self.table_name, "Item": to_attributes(goal_item)}
                        | condition
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": to_attributes(version_item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ],
            )
        except ClientError as error:
            if _error_code(error) == "TransactionCanceledException":
                raise Conflict(
                    "the goal was changed by another request; read it and retry"
                ) from error
            raise

    # -- conversions -------------------------------------------------------

    def decide(self, plan: ConversionPlan) -> Decision:
        """Count the conversion, or store it void, in one atomic write each.

        The conversion id is deterministic, so a redelivered decision finds its
        own earlier write (first cancellation reason) and returns it unchanged.
        """
        for attempt in range(TRANSACTION_CONFLICT_ATTEMPTS):
            items = _counted_transaction(self.table_name, plan)
            try:
                self._call(self.client.transact_write_items, TransactItems=items)
                return plan.counted()
            except ClientError as error:
                if _error_code(error) != "TransactionCanceledException":
                    raise
                reasons = error.response.get("CancellationReasons", [])
            codes = [reason.get("Code", "None") for reason in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                return plan.already_decided(from_attributes(reasons[0].get("Item", {})))
            blocking = [
                (check, from_attributes(reasons[position].get("Item", {})))
                for position, check in _claim_positions(plan)
                if position < len(codes) and codes[position] == "ConditionalCheckFailed"
            ]
            if blocking:
                return self._store_void(plan, *blocking[0])
            if "TransactionConflict" in codes or "ThrottlingError" in codes:
                time.sleep(0.05 * 2**attempt)
                continue
            raise StoreUnavailable(f"conversion write cancelled: {codes}")
        raise StoreUnavailable("conversion write kept conflicting with concurrent writes")

    def _store_void(self, plan: ConversionPlan, check: Any, claim: dict[str, Any]) -> Decision:
        void = plan.void(check, claim)
        try:
            self._call(
                self.client.transact_write_items,
                TransactItems=_void_transaction(self.table_name, plan, void),
            )
        except ClientError as error:
            if _error_code(error) != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return plan.already_decided(from_attributes(reasons[0].get("Item", {})))
            raise StoreUnavailable("void conversion write cancelled") from error
        return void

    # -- reports -----------------------------------------------------------

    def aggregate_items(
        self, account_id: str, shards: int, sk_from: str, sk_to: str
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for shard in range(shards):
            items.extend(
                self._query(
                    KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
                    ExpressionAttributeValues=to_attributes(
                        {
                            ":pk": keys.aggregate_pk(account_id, shard),
                            ":from": sk_from,
                            ":to": sk_to,
                        }
                    ),
                )
            )
        return items

    def trace_page(
        self, account_id: str, visitor_id: str, limit: int, cursor: dict[str, Any] | None
    ) -> Page:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.TRACE_INDEX,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": to_attributes(
                {":pk": keys.visitor_trace_pk(account_id, visitor_id)}
            ),
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = to_attributes(cursor)
        response = self._call(self.client.query, **kwargs)
        last = response.get("LastEvaluatedKey")
        return Page(
            [from_attributes(item) for item in response.get("Items", [])],
            from_attributes(last) if last else None,
        )


_RETRYABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _claim_positions(plan: ConversionPlan) -> list[tuple[int, Any]]:
    """Transaction positions of the claims the goal checks (position 0 is the conversion)."""
    return [
        (position, claim.check)
        for position, claim in enumerate(plan.claims, start=1)
        if claim.check is not None
    ]


def _counted_transaction(table: str, plan: ConversionPlan) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {
            "Put": {
                "TableName": table,
                "Item": to_attributes(plan.conversion_item("counted")),
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
    ]
    for claim in plan.claims:
        values = {
            ":conversion": plan.conversion_id,
            ":goal": plan.goal_id,
            ":at": plan.occurred_at,
            ":kind": "claim",
        }
        update: dict[str, Any] = {
            "TableName": table,
            "Key": to_attributes(keys.claim(plan.account_id, claim.shape, claim.values)),
            "UpdateExpression": "SET conversion_id = :conversion, goal_id = :goal, "
            "last_at = :at, kind = :kind",
        }
        if claim.check is not None:
            if claim.check.cutoff is None:
                update["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                update["ConditionExpression"] = "attribute_not_exists(pk) OR last_at < :cutoff"
                values[":cutoff"] = claim.check.cutoff
            update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        update["ExpressionAttributeValues"] = to_attributes(values)
        items.append({"Update": update})
    items.append({"Update": _aggregate_update(table, plan, counted=True)})
    return items


def _void_transaction(table: str, plan: ConversionPlan, void: Decision) -> list[dict[str, Any]]:
    return [
        {
            "Put": {
                "TableName": table,
                "Item": to_attributes(plan.conversion_item("void", void)),
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
        {"Update": _aggregate_update(table, plan, counted=False)},
    ]


def _aggregate_update(table: str, plan: ConversionPlan, counted: bool) -> dict[str, Any]:
    delta = plan.aggregate
    names = {"#counter": "counted" if counted else "void"}
    values: dict[str, Any] = {
        ":one": 1,
        ":goal": plan.goal_id,
        ":day": delta.day,
        ":at": plan.occurred_at,
        ":kind": "aggregate",
    }
    adds = ["#counter :one"]
    if counted and delta.value is not None:
        names["#value"] = f"value_{delta.value.currency}"
        values[":value"] = delta.value.amount
        adds.append("#value :value")
    return {
        "TableName": table,
        "Key": to_attributes(keys.aggregate(plan.account_id, delta.shard, delta.day, plan.goal_id)),
        "UpdateExpression": f"ADD {', '.join(adds)} "
        "SET goal_id = :goal, #day = :day, last_match_at = :at, kind = :kind",
        "ExpressionAttributeNames": names | {"#day": "day"},
        "ExpressionAttributeValues": to_attributes(values),
    }
