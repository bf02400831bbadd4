"""Goal-reached notifications on `goalkeeper serve`: the notify function driven from
template.yaml (the stream poller, and the delivery queue on moto's SQS), deliveries
signed and verified by the `standardwebhooks` package.

The moto engine only (its endpoint serves SQS and EventBridge too): `make test` has a
10-minute budget, and the DynamoDB Local leg (a moto endpoint of its own for SQS and
EventBridge) takes 15 s more; run it with GOALKEEPER_TEST_WEBHOOKS_ALL_ENGINES=1."""

import os
from collections.abc import Iterator

import pytest

from support.receiver import Receiver
from support.served import ServedStack

ADMIN = "e2e-webhooks-admin"
GOAL = {
    "name": "Thank-you page",
    "rule": {"kind": "url", "match": "prefix", "pattern": "https://shop.example/thanks"},
}


ENGINES = (
    ["moto", "dynamodb-local"]
    if os.environ.get("GOALKEEPER_TEST_WEBHOOKS_ALL_ENGINES")
    else ["moto"]
)


@pytest.fixture(scope="module", params=ENGINES)
def served(request: pytest.FixtureRequest) -> Iterator[ServedStack]:
    if request.param == "dynamodb-local":
        from goalkeeper_cli.local_stack import dynamodb_local

        problem = dynamodb_local.java_problem()
        if problem:
            pytest.skip(f"DynamoDB Local leg: {problem}")
        dynamodb_local.install()
    stack = ServedStack(ADMIN, ["--engine", request.param])
    yield stack
    if stack.process.poll() is None:
        stack.stop()


@pytest.mark.server
def test_counted_conversions_reach_a_local_receiver_signed(served: ServedStack) -> None:
    status, account = served.request("POST", "/v1/accounts", ADMIN, {})
    assert status == 201, account
    write = account["keys"]["write"]
    assert served.request("POST", "/v1/goals", write, GOAL)[0] == 201
    receiver = Receiver()
    try:
        status, hook = served.request("POST", "/v1/webhooks", write, {"url": receiver.url})
        assert status == 201, hook
        receiver.secret = hook["secret"]
        views = [
            {"type": "page_view", "visitor_id": f"v-{i % 3}", "url": "https://shop.example/thanks"}
            for i in range(4)  # v-0 twice: the second is void, never sent
        ]
        status, answer = served.request("POST", "/v1/events", write, {"events": views})
        assert status == 202, answer
        arrived = receiver.wait_for(3, timeout=20)
        assert {r.event["data"]["visitor_id"] for r in arrived} == {"v-0", "v-1", "v-2"}
        assert receiver.rejected == 0
        status, log = served.request("GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", write)
        assert status == 200, log
        assert sorted(d["status"] for d in log["deliveries"]) == ["delivered"] * 3
        # Deployed, a URL on this machine would be refused; locally a private one still is.
        status, refused = served.request(
            "POST", "/v1/webhooks", write, {"url": "http://10.0.0.1/hooks"}
        )
        assert status == 400 and refused["error"]["fields"][0]["field"] == "url"
    finally:
        receiver.close()
    code, output = served.stop()
    assert code == 0, output
    assert "Traceback" not in output, output
