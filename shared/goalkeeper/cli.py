"""The `goalkeeper` command: `goalkeeper serve` runs the local stack."""

import argparse
import logging
import signal
import sys
import threading


def _serve(args: argparse.Namespace) -> int:
    from goalkeeper.local.stack import LocalStack, StackConfig

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    # werkzeug logs every request at INFO unless told otherwise; the endpoint is chatty.
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    stack = LocalStack(StackConfig(host=args.host, port=args.port, quiet_lambdas=not args.verbose))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print("Goalkeeper local stack is running (Ctrl-C stops it)")
    print(f"  API:       {stack.api_url}/v1")
    print(f"  DynamoDB:  {stack.dynamodb.endpoint_url} (embedded, in memory)")
    print(f"  Admin key: {stack.config.admin_key}")
    sys.stdout.flush()
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("Goalkeeper local stack stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="goalkeeper", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API, evaluation and reports locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--verbose", action="store_true", help="show the functions' logs")
    serve.set_defaults(run=_serve)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
