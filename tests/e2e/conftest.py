"""`goalkeeper serve` over HTTP (tests/support/served.py), once per engine."""

import pytest

from goalkeeper_cli.local_stack import dynamodb_local
from goalkeeper_cli.local_stack.engines import DYNAMODB_LOCAL, ENGINES


def require_dynamodb_local() -> None:
    """Skip, saying why, where Java cannot run DynamoDB Local (never elsewhere: a jar
    that cannot be fetched is an error); fetch its jar on first use."""
    problem = dynamodb_local.java_problem()
    if problem:
        pytest.skip(f"DynamoDB Local leg: {problem}")
    dynamodb_local.install()


@pytest.fixture
def dynamodb_local_available() -> None:
    """For a test that runs DynamoDB Local whatever the engine parameter says."""
    require_dynamodb_local()


@pytest.fixture(scope="module", params=ENGINES)
def serve_engine(request: pytest.FixtureRequest) -> str:
    """The end-to-end modules run once per engine of `goalkeeper serve`."""
    if request.param == DYNAMODB_LOCAL:
        require_dynamodb_local()
    return request.param
