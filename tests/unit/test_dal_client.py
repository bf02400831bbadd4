"""goalkeeper.dal.client without a table: the one mapping of DynamoDB failures to
domain errors, cancellation reasons read by tag, the retry loop's end, batched gets
that DynamoDB defers."""

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError

from goalkeeper.dal import client
from goalkeeper.dal.client import ConditionFailed, Table, attempts
from goalkeeper.dal.transactions import Expression, TransactionCancelled
from goalkeeper.errors import StoreUnavailable, WriteRejected


class Stub:
    """A DynamoDB client whose every call answers with the next of `answers` (a
    response, or an exception to raise)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Any:
        def call(**request: Any) -> Any:
            self.calls.append((operation, request))
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call


def _error(code: str, status: int = 400, **response: Any) -> ClientError:
    body = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(body | response, "Operation")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        _error("ThrottlingException"),
        _error("ProvisionedThroughputExceededException"),
        _error("TransactionInProgressException"),
        _error("SomethingNew", status=503),
        ConnectTimeoutError(endpoint_url="http://dynamodb"),
    ],
    ids=["throttled", "throughput", "transaction in progress", "5xx", "unreachable"],
)
def test_a_busy_or_unreachable_table_is_store_unavailable(error: Exception) -> None:
    with pytest.raises(StoreUnavailable):
        Table("t", Stub(error)).get({"pk": "a", "sk": "b"})


def test_a_failed_condition_carries_the_item_as_it_was() -> None:
    failed = _error("ConditionalCheckFailedException", Item={"pk": {"S": "a"}, "n": {"N": "2"}})
    with pytest.raises(ConditionFailed) as raised:
        Table("t", Stub(failed)).call("put_item", TableName="t", Item={})
    assert raised.value.item == {"pk": "a", "n": 2}


def test_any_other_error_is_raised_as_it_is() -> None:
    with pytest.raises(ClientError):
        Table("t", Stub(_error("ValidationException"))).get({"pk": "a", "sk": "b"})


def test_a_cancelled_transaction_says_why_by_tag() -> None:
    table = Table("t", Stub(_cancelled("None", "ConditionalCheckFailed", "None")))
    transaction = table.transaction()
    transaction.create("first", {"pk": "1", "sk": "x"})
    expression = Expression()
    update = f"ADD {expression.name('n')} {expression.value(1)}"
    condition = f"{expression.name('n')} < {expression.value(3)}"
    transaction.update("counter", {"pk": "2", "sk": "x"}, update, expression, condition)
    transaction.create("last", {"pk": "3", "sk": "x"})
    with pytest.raises(TransactionCancelled) as cancelled:
        table.commit(transaction)
    reasons = cancelled.value.reasons
    assert [tag for tag, reason in reasons.items() if reason.failed_condition] == ["counter"]
    assert reasons["counter"].item == {"n": 3}
    assert cancelled.value.codes() == {"ConditionalCheckFailed"}


def test_a_transaction_dynamodb_refuses_as_invalid_is_a_rejected_write() -> None:
    table = Table("t", Stub(_error("ValidationException")))
    transaction = table.transaction()
    transaction.create("only", {"pk": "1", "sk": "x"})
    with pytest.raises(WriteRejected):
        table.commit(transaction)


def test_a_retry_loop_that_never_settles_ends_as_store_unavailable() -> None:
    tried = []
    with pytest.raises(StoreUnavailable, match="kept conflicting"):
        for attempt in attempts(3, "the write kept conflicting"):
            tried.append(attempt)
    assert tried == [0, 1, 2]


def test_deferred_keys_of_a_batched_get_are_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(client.time, "sleep", pauses.append)
    deferred = {"t": {"Keys": [{"pk": {"S": "b"}, "sk": {"S": "x"}}]}}
    stub = Stub(
        {"Responses": {"t": [{"pk": {"S": "a"}, "sk": {"S": "x"}}]}, "UnprocessedKeys": deferred},
        {"Responses": {"t": [{"pk": {"S": "b"}, "sk": {"S": "x"}}]}},
    )
    found = Table("t", stub).get_many([{"pk": "a", "sk": "x"}, {"pk": "b", "sk": "x"}])
    assert [item["pk"] for item in found] == ["a", "b"]
    assert stub.calls[1][1]["RequestItems"] == deferred
    assert pauses == [0.05]


def test_a_batched_get_deferred_every_time_ends_as_store_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client.time, "sleep", lambda _: None)
    deferred = {"t": {"Keys": [{"pk": {"S": "a"}, "sk": {"S": "x"}}]}}
    answers = [{"Responses": {}, "UnprocessedKeys": deferred}] * client.BATCH_GET_ATTEMPTS
    with pytest.raises(StoreUnavailable, match="kept deferring"):
        Table("t", Stub(*answers)).get_many([{"pk": "a", "sk": "x"}])


def _cancelled(*codes: str) -> ClientError:
    reasons = [
        {"Code": code} | ({"Item": {"n": {"N": "3"}}} if code != "None" else {}) for code in codes
    ]
    return _error("TransactionCanceledException", CancellationReasons=reasons)
