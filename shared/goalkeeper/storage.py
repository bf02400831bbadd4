"""DynamoDB access: every read and write of the table goes through `Store`.

Keys come from goalkeeper.keys; this module owns expressions, (de)serialisation
and the mapping of DynamoDB failures to domain outcomes. Duplicate goals are
refused by conditions inside one TransactWriteItems, never by read-then-write.
"""

import itertools
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from goalkeeper import keys
from goalkeeper.attributes import from_attributes, to_attributes
from goalkeeper.decision_writes import DecisionState, Sighting, chunks, sightings_transaction
from goalkeeper.dedup import ConversionPlan, Decision
from goalkeeper.errors import Conflict, NotFound, StoreUnavailable, WriteRejected
from goalkeeper.transactions import Expression, Transaction, TransactionCancelled

# Throttling, 5xx and timeouts are retried by botocore: standard mode, 4 attempts in
# all, with exponential backoff and full jitter (botocore 1.44: up to 1, 2, 4 s after a
# throttle, up to 25, 50, 100 ms after a 5xx or timeout). The worst case, ~7 s of
# backoff plus four 3 s timeouts, stays near the ingest function's 10 s, so a caller
# gets our 503, not a gateway timeout. A retry that lands after an earlier attempt
# already wrote is recognised by our conditions (see Store.put_event/decide).
CLIENT_CONFIG = {
    "retries": {"total_max_attempts": 4, "mode": "standard"},
    "connect_timeout": 1,
    "read_timeout": 2,
}
TRANSACTION_CONFLICT_ATTEMPTS = 5
BATCH_GET_LIMIT = 100
# Each sighting is a marker plus at most one counter update: 45 stay within 100 items.
SIGHTINGS_PER_WRITE = 45
BATCH_GET_ATTEMPTS = 6
# The account item's count of the goals in its library (absent on accounts created
# before goals were counted).
GOAL_COUNT = "goal_count"
# Moved on by every goal change, in the change's own write: evaluation reloads an
# account's cached goal library when it sees a new version.
LIBRARY_VERSION = "library_version"
# A position in the visitor trace index (a Query's LastEvaluatedKey) holds exactly these.
TRACE_POSITION_KEYS = frozenset({keys.PK, keys.SK, "gsi1pk", "gsi1sk"})
# DynamoDB refuses an empty key value, and a sort key over 1,024 bytes (partition keys 2,048).
MAX_KEY_BYTES = 1024


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
            # Imported here: boto3 costs ~0.3 s, which the first request pays, not the cold start.
            import boto3
            from botocore.config import Config

            self._client = boto3.client("dynamodb", config=Config(**CLIENT_CONFIG))
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
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if _error_code(error) in _RETRYABLE_CODES or status >= 500:
                raise StoreUnavailable("the event store is busy; retry the request") from error
            raise
        except BotoCoreError as error:
            raise StoreUnavailable("the event store could not be reached") from error

    # -- accounts and keys -------------------------------------------------

    def _new_item_put(self, item: dict[str, Any]) -> dict[str, Any]:
        """A transaction Put that only creates: it fails if the item exists."""
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": to_attributes(item),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def create_items(self, items: list[dict[str, Any]]) -> None:
        """Create several new items all-or-nothing (an account with its keys and goals)."""
        self._call(
            self.client.transact_write_items,
            TransactItems=[self._new_item_put(item) for item in items],
        )

    def get_api_key(self, digest: str) -> dict[str, Any] | None:
        # Strongly consistent: a key revoked a moment ago must already be refused.
        return self._get(keys.api_key(digest), consistent=True)

    def get_account(self, account_id: str) -> dict[str, Any] | None:
        return self._get(keys.account(account_id))

    def list_key_records(
        self, account_id: str, role: str, limit: int, after_key_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Up to `limit` records of the account's keys of one role, in key id order,
        starting after `after_key_id`. Every role's records share one partition, so
        DynamoDB's filter may leave a page short: pages are read until `limit` are found."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "#role = :role",
            "ExpressionAttributeNames": {"#role": "role"},  # a DynamoDB reserved word
            "ExpressionAttributeValues": to_attributes(
                {":pk": keys.account_keys_pk(account_id), ":role": role}
            ),
            "ConsistentRead": True,
            "Limit": limit,
        }
        if after_key_id is not None:
            kwargs["ExclusiveStartKey"] = to_attributes(keys.account_key(account_id, after_key_id))
        return list(itertools.islice(self._query(**kwargs), limit))

    def get_key_record(self, account_id: str, key_id: str) -> dict[str, Any] | None:
        return self._get(keys.account_key(account_id, key_id), consistent=True)

    def add_api_key(
        self, account_id: str, lookup: dict[str, Any], record: dict[str, Any], max_active: int
    ) -> bool:
        """Store a new key (its lookup item and its account record) and count it as
        active, all at once; False when the account already has `max_active` of that role."""
        active = f"active_keys_{record['role']}"
        try:
            self._call(
                self.client.transact_write_items,
                TransactItems=[self._new_item_put(item) for item in (lookup, record)]
                + [
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": to_attributes(keys.account(account_id)),
                            "UpdateExpression": "ADD #active :one",
                            "ConditionExpression": "attribute_exists(pk) AND "
                            "(attribute_not_exists(#active) OR #active < :max)",
                            "ExpressionAttributeNames": {"#active": active},
                            "ExpressionAttributeValues": to_attributes(
                                {":one": 1, ":max": max_active}
                            ),
                        }
                    }
                ],
            )
        except ClientError as error:
            if _error_code(error) != "TransactionCanceledException":
                raise
            codes = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if codes[2:3] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    def revoke_api_key(
        self, account_id: str, key_id: str, digest: str, role: str, revoked_at: str, expires_at: int
    ) -> str:
        """Revoke a key at once: its lookup item and its record, never the last active
        key of its role; DynamoDB's TTL deletes both after `expires_at` (epoch seconds).
        Returns "revoked", "already_revoked" or "last_key"."""
        revoke = {
            "UpdateExpression": "SET revoked_at = :at, expires_at = :expires",
            "ExpressionAttributeValues": to_attributes({":at": revoked_at, ":expires": expires_at}),
        }
        try:
            self._call(
                self.client.transact_write_items,
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": to_attributes(keys.account_key(account_id, key_id)),
                            "ConditionExpression": "attribute_exists(pk) AND "
                            "attribute_not_exists(revoked_at)",
                        }
                        | revoke
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": to_attributes(keys.api_key(digest)),
                            "ConditionExpression": "attribute_exists(pk) AND account_id = :account",
                            "UpdateExpression": revoke["UpdateExpression"],
                            "ExpressionAttributeValues": to_attributes(
                                {":at": revoked_at, ":expires": expires_at, ":account": account_id}
                            ),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": to_attributes(keys.account(account_id)),
                            "UpdateExpression": "ADD #active :minus_one",
                            "ConditionExpression": "#active > :one",
                            "ExpressionAttributeNames": {"#active": f"active_keys_{role}"},
                            "ExpressionAttributeValues": to_attributes(
                                {":one": 1, ":minus_one": -1}
                            ),
                        }
                    },
                ],
            )
        except ClientError as error:
            if _error_code(error) != "TransactionCanceledException":
                raise
            codes = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if codes[:1] == ["ConditionalCheckFailed"]:
                return "already_revoked"
            if codes[2:3] == ["ConditionalCheckFailed"]:
                return "last_key"
            raise
        return "revoked"

    def account_pii_key(self, account_id: str, candidate: str) -> str | None:
        """The account's secret for keyed hashes of personal data (None: no such account).

        Accounts get one at creation; an older account gets `candidate`, set at most
        once (if_not_exists), so concurrent first uses agree on one secret.
        """
        item = self._call(
            self.client.get_item,
            TableName=self.table_name,
            Key=to_attributes(keys.account(account_id)),
            ProjectionExpression="pk, pii_key",
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        if "pii_key" in item:
            return str(from_attributes(item)["pii_key"])
        try:
            response = self._call(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_attributes(keys.account(account_id)),
                UpdateExpression="SET pii_key = if_not_exists(pii_key, :candidate)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_attributes({":candidate": candidate}),
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        return str(from_attributes(response["Attributes"])["pii_key"])

    # -- events ------------------------------------------------------------

    def stored_events(self, account_id: str, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The events already stored under these ids, by id (consistent BatchGetItem)."""
        found = self.get_many([keys.event(account_id, e) for e in event_ids], consistent=True)
        return {item["event_id"]: item for item in found}

    def put_event(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Store a new event: None when this put stored it, else the item already
        stored under its id (by an earlier request, or one racing this one).

        Each call marks its item with a fresh `write_id`, so a botocore retry of
        this very put (a timeout after the write landed) recognises its own write
        and still counts as stored by this put. When every attempt failed, one of
        them may still have written before its answer was lost: a consistent read
        decides, so StoreUnavailable (503) means the event is not stored, or the
        table could not even be read (a retry with the same id is safe).
        """
        item = item | {"write_id": uuid.uuid4().hex}
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
            return None if old.get("write_id") == item["write_id"] else old
        except StoreUnavailable:
            stored = self._get({keys.PK: item[keys.PK], keys.SK: item[keys.SK]}, consistent=True)
            if stored is None:
                raise
            return None if stored.get("write_id") == item["write_id"] else stored
        return None

    def put_events(
        self, items: list[dict[str, Any]], concurrency: int
    ) -> list[dict[str, Any] | None]:
        """put_event for each item, `concurrency` at a time; results in the items' order.

        A batch then waits for len/concurrency round trips instead of len. When a put
        fails, the puts already under way finish before the first failure is raised.
        """
        if len(items) <= 1 or concurrency <= 1:
            return [self.put_event(item) for item in items]
        self.client  # noqa: B018 -- created before the threads: boto3 creates clients unsafely
        with ThreadPoolExecutor(min(concurrency, len(items))) as pool:
            return list(pool.map(self.put_event, items))

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

    def visit_page_views_from(
        self, account_id: str, visit_id: str, from_sk: str
    ) -> list[dict[str, Any]]:
        """A visit's page views from one on, in time order."""
        return list(
            self._query(
                IndexName=keys.SCOPE_INDEX,
                KeyConditionExpression="gsi2pk = :pk AND gsi2sk >= :from",
                ExpressionAttributeValues=to_attributes(
                    {":pk": keys.visit_scope_pk(account_id, visit_id), ":from": from_sk}
                ),
            )
        )

    def day_events(
        self,
        account_id: str,
        utc_day: str,
        after_sk: str | None,
        limit: int,
        before_sk: str | None = None,
    ) -> Page:
        """At most `limit` of an account's events of one UTC day in time order, after a
        position (an event's `gsi3sk`) and, given `before_sk`, before that one; the
        cursor is the position to read on from, or None at the end."""
        condition = "gsi3pk = :pk"
        values = {":pk": keys.events_day_pk(account_id, utc_day)}
        between = after_sk is not None and before_sk is not None
        if between:
            # A key takes one condition, and BETWEEN includes both ends: the event at
            # `after_sk` (a cursor) is read again, so one more is asked for; ends are dropped.
            condition += " AND gsi3sk BETWEEN :after AND :before"
        elif after_sk is not None:
            condition += " AND gsi3sk > :after"
        elif before_sk is not None:
            condition += " AND gsi3sk < :before"
        if after_sk is not None:
            values[":after"] = after_sk
        if before_sk is not None:
            values[":before"] = before_sk
        response = self._call(
            self.client.query,
            TableName=self.table_name,
            IndexName=keys.DAY_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=to_attributes(values),
            Limit=limit + 1 if between else limit,
        )
        read = [from_attributes(item) for item in response.get("Items", [])]
        kept = [item for item in read if item["gsi3sk"] not in (after_sk, before_sk)]
        items = kept[:limit]
        if len(kept) > limit:
            cursor = items[-1]["gsi3sk"]
        elif "LastEvaluatedKey" in response and read:
            cursor = read[-1]["gsi3sk"]  # past every event read, kept or dropped
        else:
            return Page(items, None)
        return Page(items, {"gsi3sk": cursor})

    def count_day_events(self, account_id: str, utc_day: str, low_sk: str, high_sk: str) -> int:
        """How many of an account's events of one UTC day have positions (`gsi3sk`) in
        [low_sk, high_sk]. A count reads the items as a Query would (same read units)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.DAY_INDEX,
            "KeyConditionExpression": "gsi3pk = :pk AND gsi3sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": to_attributes(
                {":pk": keys.events_day_pk(account_id, utc_day), ":low": low_sk, ":high": high_sk}
            ),
            "Select": "COUNT",
        }
        total = 0
        while True:
            response = self._call(self.client.query, **kwargs)
            total += response["Count"]
            if "LastEvaluatedKey" not in response:
                return total
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def contact_tag_events(self, account_id: str, contact_id: str) -> list[dict[str, Any]]:
        """Every tag event of a contact, in time order."""
        return list(
            self._query(
                IndexName=keys.SCOPE_INDEX,
                KeyConditionExpression="gsi2pk = :pk",
                ExpressionAttributeValues=to_attributes(
                    {":pk": keys.contact_scope_pk(account_id, contact_id)}
                ),
            )
        )

    def completions(
        self, account_id: str, goal_id: str, scope: str, scope_id: str
    ) -> dict[str, int]:
        """The decided occurrences of a history rule in one scope: event id -> ordinal."""
        items = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_attributes(
                {":pk": keys.completions_pk(account_id, goal_id, scope, scope_id)}
            ),
            ConsistentRead=True,
        )
        return {item["event_id"]: int(item["ordinal"]) for item in items}

    # -- goals -------------------------------------------------------------

    def _goal_library(self, account_id: str) -> dict[str, Any]:
        return {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": to_attributes({":pk": keys.goal_library_pk(account_id)}),
        }

    def list_goal_items(self, account_id: str) -> list[dict[str, Any]]:
        # Strongly consistent: evaluation reloads the library when its version moved on.
        return list(self._query(**self._goal_library(account_id), ConsistentRead=True))

    def goal_items_after(
        self, account_id: str, after_goal_id: str | None, count: int
    ) -> list[dict[str, Any]]:
        """Up to `count` of an account's goals in goal_id order, from after `after_goal_id`."""
        query = self._goal_library(account_id) | {"ConsistentRead": True, "Limit": count}
        if after_goal_id is not None:
            query["ExclusiveStartKey"] = to_attributes(keys.goal(account_id, after_goal_id))
        return list(islice(self._query(**query), count))

    def count_goals(self, account_id: str) -> int:
        query = self._goal_library(account_id) | {
            "ProjectionExpression": "sk",
            "ConsistentRead": True,
        }
        return sum(1 for _ in self._query(**query))

    def get_goal_item(self, account_id: str, goal_id: str) -> dict[str, Any] | None:
        return self._get(keys.goal(account_id, goal_id), consistent=True)

    def create_goal(
        self,
        account_id: str,
        goal_item: dict[str, Any],
        version_item: dict[str, Any],
        max_goals: int,
    ) -> bool:
        """Store a new goal and its first version, count it on the account item and move
        the account's library version on, all at once; False when the account already
        holds `max_goals` goals.

        An account created before goals were counted has no counter: it is set from a
        count of the goals the account holds, on condition that it is still absent, so a
        goal created meanwhile (which sets it first) sends this one back to add to it.
        """
        uncounted: int | None = None  # the goals held by an account without a counter
        # Two more rounds than for conflicts: learning that the counter is absent, then
        # that another request has just set it.
        for attempt in range(TRANSACTION_CONFLICT_ATTEMPTS + 2):
            transaction = Transaction(self.table_name)
            transaction.create("goal", goal_item)
            transaction.create("version", version_item)
            _count_goal(transaction, account_id, max_goals, uncounted)
            try:
                self.commit(transaction)
                return True
            except TransactionCancelled as cancelled:
                if cancelled.reasons["goal"].failed_condition:
                    # A new goal id (its creation time and 48 random bits) exists only if
                    # an earlier attempt of this very write was applied and its answer
                    # lost (a retry that DynamoDB did not recognise by its token).
                    return True
                account = cancelled.reasons["account"]
                if account.failed_condition:
                    if not account.item:
                        raise NotFound("no such account") from cancelled
                    held = account.item.get(GOAL_COUNT)
                    uncounted = None if held is not None else self.count_goals(account_id)
                    if (held if held is not None else uncounted) >= max_goals:  # type: ignore[operator]
                        return False
                else:
                    _back_off(cancelled, attempt)
        raise StoreUnavailable("creating the goal kept conflicting with concurrent writes")

    def save_goal(
        self, goal_item: dict[str, Any], version_item: dict[str, Any], previous_version: int
    ) -> None:
        """Write a goal's new current version and its history entry, refusing lost updates,
        and move the account's library version on in the same write."""
        transaction = Transaction(self.table_name)
        expression = Expression()
        condition = f"{expression.name('version')} = {expression.value(previous_version)}"
        transaction.put("goal", goal_item, condition, expression)
        transaction.create("version", version_item)
        _bump_library_version(transaction, goal_item["account_id"])
        try:
            self.commit(transaction)
        except TransactionCancelled as cancelled:
            raise Conflict("the goal was changed by another request; read it and retry") from (
                cancelled
            )

    def library_version(self, account_id: str) -> tuple[int, str] | None:
        """The account's goal library version and time zone, read strongly consistent: a
        goal change answered a moment ago must already show (None: no such account)."""
        response = self._call(
            self.client.get_item,
            TableName=self.table_name,
            Key=to_attributes(keys.account(account_id)),
            ProjectionExpression="#version, #timezone",
            ExpressionAttributeNames={"#version": LIBRARY_VERSION, "#timezone": "timezone"},
            ConsistentRead=True,
        )
        if "Item" not in response:
            return None
        item = from_attributes(response["Item"])
        return int(item.get(LIBRARY_VERSION, 0)), str(item.get("timezone", "UTC"))

    # -- conversions -------------------------------------------------------

    def commit(self, transaction: Transaction) -> None:
        """One TransactWriteItems; a cancellation comes back as its reasons by tag."""
        try:
            self._call(self.client.transact_write_items, TransactItems=transaction.request())
        except ClientError as error:
            code = _error_code(error)
            if code == "TransactionCanceledException":
                reasons = error.response.get("CancellationReasons", [])
                raise TransactionCancelled(transaction.reasons(reasons)) from error
            if code == "ValidationException":
                raise WriteRejected(f"DynamoDB refused the write: {error}") from error
            raise

    def decide_event(
        self, plans: list[ConversionPlan], sighting: Sighting | None = None
    ) -> list[Decision]:
        """Decide every goal one event reached, each group of goals in one atomic write
        (see decision_writes.chunks).

        All conditions are judged against the table as it was before the write, and
        a claim period holding only this event's conversions blocks none of them, so
        conversions of one event never void each other. A cancellation says which
        conditions failed: a conversion that already exists was decided by an earlier
        delivery (kept as it was); a failed claim makes the goals whose check it fails
        void; the rest are written again, still under conditions.
        """
        decisions: list[Decision] = []
        for state in chunks(plans, sighting, self.table_name):
            self._decide(state)
            decisions += state.results()
        return decisions

    def _decide(self, state: DecisionState) -> None:
        for attempt in range(TRANSACTION_CONFLICT_ATTEMPTS + 4 * len(state.plans) + 1):
            if state.done:
                return  # everything was decided by earlier deliveries
            try:
                self.commit(state.transaction(self.table_name))
            except TransactionCancelled as cancelled:
                if not state.learn(cancelled.reasons):
                    _back_off(cancelled, attempt)
                continue
            state.succeeded()
            return
        raise StoreUnavailable("conversion write kept conflicting with concurrent writes")

    def count_sightings(self, sightings: list[Sighting]) -> None:
        """Count each visitor-day once among the visitors seen, many per request.

        A marker that already exists (an earlier event or delivery counted that
        visitor that day) cancels the write; it is dropped and the rest retried.
        """
        unique = list({(s.account_id, s.day, s.visitor_id): s for s in sightings}.values())
        for start in range(0, len(unique), SIGHTINGS_PER_WRITE):
            pending = unique[start : start + SIGHTINGS_PER_WRITE]
            for attempt in range(TRANSACTION_CONFLICT_ATTEMPTS + SIGHTINGS_PER_WRITE):
                if not pending:
                    break
                try:
                    self.commit(sightings_transaction(self.table_name, pending))
                    break
                except TransactionCancelled as cancelled:
                    counted = {
                        (tag[1], tag[2])  # type: ignore[index]
                        for tag, reason in cancelled.reasons.items()
                        if tag[0] == "seen" and reason.failed_condition  # type: ignore[index]
                    }
                    if not counted:
                        _back_off(cancelled, attempt)
                    pending = [s for s in pending if (s.visitor_id, s.day) not in counted]
            else:
                raise StoreUnavailable("counting visitors seen kept conflicting")

    def get_conversion(self, account_id: str, conversion_id: str) -> dict[str, Any] | None:
        return self._get(keys.conversion(account_id, conversion_id), consistent=True)

    # -- jobs --------------------------------------------------------------

    def start_job(self, job: dict[str, Any], lock_key: dict[str, str]) -> str | None:
        """Store a new job and make it the holder of `lock_key`, at once: None when it
        started, else the id of the job that holds the lock (one not yet released)."""
        lock = lock_key | {"kind": "job_lock", "job_id": job["job_id"], "active": True}
        for attempt in range(TRANSACTION_CONFLICT_ATTEMPTS):
            transaction = Transaction(self.table_name)
            expression = Expression()
            active, no = expression.name("active"), expression.value(False)
            free = f"attribute_not_exists(pk) OR {active} = {no}"
            transaction.put("lock", lock, free, expression, return_old=True)
            transaction.create("job", job)
            try:
                self.commit(transaction)
                return None
            except TransactionCancelled as cancelled:
                holder = cancelled.reasons["lock"]
                if holder.failed_condition:
                    # Our own earlier attempt, applied with its answer lost, holds it too.
                    running = holder.item["job_id"]
                    return None if running == job["job_id"] else str(running)
                _back_off(cancelled, attempt)
        raise StoreUnavailable("starting the job kept conflicting with concurrent writes")

    def get_job(self, account_id: str, job_id: str) -> dict[str, Any] | None:
        return self._get(keys.job(account_id, job_id), consistent=True)

    def update_job(
        self,
        job: dict[str, Any],
        changes: dict[str, Any],
        release: dict[str, str] | None = None,
    ) -> bool:
        """Write `changes` to a job and count the write in its `step`, on condition that
        `step` is still the one `job` holds; with `release`, also free that lock (which
        the job holds). False when another write reached the job first."""
        transaction = Transaction(self.table_name)
        expression = Expression()
        changes = changes | {"step": job["step"] + 1}
        sets = [f"{expression.name(n)} = {expression.value(v)}" for n, v in changes.items()]
        condition = f"{expression.name('step')} = {expression.value(job['step'])}"
        key = keys.job(job["account_id"], job["job_id"])
        transaction.update("job", key, f"SET {', '.join(sets)}", expression, condition)
        if release is not None:
            freeing = Expression()
            transaction.update(
                "lock",
                release,
                f"SET {freeing.name('active')} = {freeing.value(False)}",
                freeing,
                f"{freeing.name('job_id')} = {freeing.value(job['job_id'])}",
            )
        for attempt in range(TRANSACTION_CONFLICT_ATTEMPTS):
            try:
                self.commit(transaction)
                return True
            except TransactionCancelled as cancelled:
                if cancelled.reasons["job"].failed_condition:
                    return False
                _back_off(cancelled, attempt)
        raise StoreUnavailable("updating the job kept conflicting with concurrent writes")

    # -- reports -----------------------------------------------------------

    def get_many(
        self, item_keys: list[dict[str, str]], consistent: bool = False
    ) -> list[dict[str, Any]]:
        """Items by exact key (BatchGetItem, 100 at a time); missing keys are skipped."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(item_keys), BATCH_GET_LIMIT):
            request = {
                self.table_name: {
                    "Keys": [
                        to_attributes(key) for key in item_keys[start : start + BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": consistent,
                }
            }
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = self._call(self.client.batch_get_item, RequestItems=request)
                found.extend(
                    from_attributes(item)
                    for item in response.get("Responses", {}).get(self.table_name, [])
                )
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise StoreUnavailable("the table kept deferring a batch read")
        return found

    def counters_items(
        self, account_id: str, shards: int, sk_from: str, sk_to: str
    ) -> list[dict[str, Any]]:
        """Counters items of one key range, from every shard."""
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

    def attribution_page(
        self,
        account_id: str,
        shard: int,
        sk_range: tuple[str, str],
        after: str | None,
        limit: int,
    ) -> Page:
        """At most `limit` attribution counters of one shard with sort keys in
        `sk_range`, from just after the sort key `after`."""
        pk = keys.aggregate_pk(account_id, shard)
        return self._page(
            limit,
            {keys.PK: pk, keys.SK: after} if after else None,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
            ExpressionAttributeValues=to_attributes(
                {":pk": pk, ":from": sk_range[0], ":to": sk_range[1]}
            ),
        )

    def trace_page(
        self, account_id: str, visitor_id: str, limit: int, start: dict[str, Any] | None
    ) -> Page:
        return self._page(
            limit,
            start,
            IndexName=keys.TRACE_INDEX,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues=to_attributes(
                {":pk": keys.visitor_trace_pk(account_id, visitor_id)}
            ),
        )

    def _page(self, limit: int, start: dict[str, Any] | None, **query: Any) -> Page:
        """One Query request reading at most `limit` items, from just after `start`."""
        if start:
            query["ExclusiveStartKey"] = to_attributes(start)
        response = self._call(self.client.query, TableName=self.table_name, Limit=limit, **query)
        last = response.get("LastEvaluatedKey")
        return Page(
            [from_attributes(item) for item in response.get("Items", [])],
            from_attributes(last) if last else None,
        )


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


def is_trace_position(position: dict[str, Any], account_id: str, visitor_id: str) -> bool:
    """Whether `position` can start a page of this visitor's trace (Store.trace_page):
    a client-held position that DynamoDB would refuse must never reach it."""
    return (
        set(position) == TRACE_POSITION_KEYS
        and all(is_key_value(value) for value in position.values())
        and position["gsi1pk"] == keys.visitor_trace_pk(account_id, visitor_id)
    )


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


def _count_goal(
    transaction: Transaction, account_id: str, max_goals: int, uncounted: int | None
) -> None:
    expression = Expression()
    count, one = expression.name(GOAL_COUNT), expression.value(1)
    library = f"{expression.name(LIBRARY_VERSION)} {one}"
    if uncounted is None:
        update = f"ADD {count} {one}, {library}"
        condition = f"{count} < {expression.value(max_goals)}"
    else:
        update = f"SET {count} = {expression.value(uncounted + 1)} ADD {library}"
        condition = f"attribute_exists(pk) AND attribute_not_exists({count})"
    transaction.update(
        "account", keys.account(account_id), update, expression, condition, return_old=True
    )


def _bump_library_version(transaction: Transaction, account_id: str) -> None:
    expression = Expression()
    update = f"ADD {expression.name(LIBRARY_VERSION)} {expression.value(1)}"
    transaction.update(
        "account", keys.account(account_id), update, expression, "attribute_exists(pk)"
    )


def _back_off(cancelled: TransactionCancelled, attempt: int) -> None:
    """Wait before retrying a transaction that lost to concurrent writes; any other
    cause of a cancellation that taught nothing is a defect, not a busy store."""
    codes = cancelled.codes()
    if codes - {"TransactionConflict", "ThrottlingError", "ConditionalCheckFailed"}:
        raise WriteRejected(f"transaction cancelled: {sorted(codes)}") from cancelled
    time.sleep(0.05 * 2 ** min(attempt, 5))


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")
