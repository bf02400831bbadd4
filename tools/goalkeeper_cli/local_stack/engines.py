"""Where the local stack's table lives: an engine started for it (the embedded moto
endpoint, the default, or AWS's DynamoDB Local), or any DynamoDB endpoint given by URL."""

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from goalkeeper_cli.local_stack import dynamodb_local, moto_version

MOTO = "moto"
DYNAMODB_LOCAL = "dynamodb-local"
ENGINES = (MOTO, DYNAMODB_LOCAL)
LOCAL_REGION = "us-east-1"
# dynamodb.eu-west-2.amazonaws.com, dynamodb-fips.us-east-1.amazonaws.com, ...cn
_AWS_HOST = re.compile(r"^https://dynamodb(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/?$")


@dataclass(frozen=True)
class DynamoDBEndpoint:
    url: str
    streams_url: str
    region: str
    on_aws: bool  # called with your AWS credentials; any other endpoint with placeholder ones

    @classmethod
    def at(cls, url: str) -> "DynamoDBEndpoint":
        """An endpoint by URL. On AWS, DynamoDB Streams has a host of its own and the
        region is the host's; an emulator serves both APIs on one URL."""
        url = url.rstrip("/")
        aws = _AWS_HOST.match(url)
        if aws is None:
            return cls(url, url, LOCAL_REGION, on_aws=False)
        region, china = aws.group(1), aws.group(2) or ""
        return cls(url, f"https://streams.dynamodb.{region}.amazonaws.com{china}", region, True)

    def environment(self) -> dict[str, str]:
        """What boto3 clients (the functions' and the poller's) need to call it."""
        environment = {
            "AWS_ENDPOINT_URL_DYNAMODB": self.url,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": self.streams_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # Stream ARNs carry an account id; botocore would route by it, past the endpoint.
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }
        if not self.on_aws:
            # Emulators accept any; a profile's SSO or role credentials would only slow
            # every call down, or fail it once they expire.
            environment |= {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
        return environment


class ChildEndpoint:
    """An engine in a child process that prints its endpoint's URL on its first line
    once it answers, and stops when its stdin closes: it never outlives the process
    that started it, however that one ends."""

    def __init__(self, module: str, *options: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", module, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url:
            code = self._process.wait()
            raise dynamodb_local.EngineUnavailable(f"{module} exited at start ({code})")

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=dynamodb_local.STOP_SECONDS + 5)
        except subprocess.TimeoutExpired:
            self._process.kill()


@dataclass
class Engine:
    endpoint: DynamoDBEndpoint
    description: str  # for the banner: what it is and where its data lives
    process: ChildEndpoint | None = None  # None: an endpoint this stack did not start

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def start_engine(
    engine: str, host: str, data_dir: Path | None = None, log_requests: bool = False
) -> Engine:
    """Start `engine` (one of ENGINES); raises EngineUnavailable when it cannot run here."""
    if engine == MOTO:
        if data_dir is not None:
            raise ValueError("the embedded moto engine keeps its data in memory only")
        problem = moto_version.problem()  # refused here, before a child fails to start
        if problem:
            raise dynamodb_local.EngineUnavailable(problem)
        options = ["--host", host] + (["--log-requests"] if log_requests else [])
        process = ChildEndpoint("goalkeeper_cli.local_stack.dynamodb", *options)
        return Engine(DynamoDBEndpoint.at(process.url), "embedded moto, in memory", process)
    if engine != DYNAMODB_LOCAL:
        raise ValueError(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
    problem = dynamodb_local.java_problem()
    if problem:
        raise dynamodb_local.EngineUnavailable(problem)
    dynamodb_local.install()
    options = ["--host", host] + (["--log"] if log_requests else [])
    if data_dir is not None:
        options += ["--data-dir", str(data_dir.resolve())]
    process = ChildEndpoint("goalkeeper_cli.local_stack.dynamodb_local", *options)
    where = f"data in {data_dir.resolve()}" if data_dir else "in memory"
    return Engine(DynamoDBEndpoint.at(process.url), f"DynamoDB Local, {where}", process)


def external_engine(url: str) -> Engine:
    endpoint = DynamoDBEndpoint.at(url)
    return Engine(endpoint, "on AWS" if endpoint.on_aws else "external")
