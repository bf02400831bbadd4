"""The embedded DynamoDB endpoint of the local stack: moto's server, one request at a time.

moto applies a TransactWriteItems write by write and rolls back by swapping in a
deep copy of the table, with no lock: two racing transactions can both "win"
and a rollback can erase a concurrent writer's item. Measured on moto 5.2.5 (Nov
2026): 32 threads racing one conditional transaction on one key had two winners
and torn items in 1 to 2 rounds of 20 (in process, moto also raised "RuntimeError:
dictionary changed size during iteration"); 16 threads against moto's own server,
without a lock, were wrong in 19 rounds of 20, where AWS's DynamoDB Local had one
winner in every round. Real DynamoDB is serializable. Serving one request at a
time restores that property, so tests against this endpoint prove our conditions, not moto's races;
and with requests serialized, transactions check every condition before writing
(goalkeeper_cli.local_stack.atomic_transactions) instead of copying whole tables.

`goalkeeper serve` runs the endpoint in a child process of its own (`python -m
goalkeeper_cli.local_stack.dynamodb`, see goalkeeper_cli.local_stack.engines): one
Python process runs Python code on one core at a time, and the endpoint's work would
otherwise queue behind the API and the functions for the same core.
"""

import argparse
import logging
import signal
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

from goalkeeper_cli.local_stack import atomic_transactions, moto_speedups
from goalkeeper_cli.local_stack.server import SWITCH_INTERVAL, BackgroundServer, SerializedApp


class EmbeddedDynamoDB(BackgroundServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        atomic_transactions.install()
        moto_speedups.install()
        app = SerializedApp(DomainDispatcherApplication(create_backend_app))
        super().__init__(app, host, port, "embedded-dynamodb", request_handler=MotoRequestHandler)

    @property
    def endpoint_url(self) -> str:
        return self.url


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the embedded DynamoDB until stdin closes.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log-requests", action="store_true")
    args = parser.parse_args()
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.setswitchinterval(SWITCH_INTERVAL)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.log_requests else logging.WARNING)
    server = EmbeddedDynamoDB(args.host, args.port).start()
    print(server.endpoint_url, flush=True)
    sys.stdout = sys.stderr  # nobody reads our stdout after the first line; a full pipe would block
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
