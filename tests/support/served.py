"""`goalkeeper serve` run as a user runs it, in a child process, and a small HTTP
client for it: what the end-to-end tests and the throughput benchmark share."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import goalkeeper
import goalkeeper_cli
from goalkeeper_cli.commands import http_json
from goalkeeper_cli.local_stack.server import free_port

START_SECONDS = 60


class ServedStack:
    """The child runs in a temporary working directory (its state files stay out of
    the caller's) with none of the caller's AWS, Powertools or Goalkeeper settings
    but the admin key. `options` are more of `goalkeeper serve`'s (`--engine ...`)."""

    def __init__(self, admin_key: str, options: Sequence[str] = ()) -> None:
        self.admin_key = admin_key
        self.port = free_port()
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "POWERTOOLS_", "GOALKEEPER_"))
        }
        env |= {
            "GOALKEEPER_ADMIN_KEY": admin_key,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                str(Path(package.__file__).resolve().parents[1])
                for package in (goalkeeper, goalkeeper_cli)
            ),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "goalkeeper_cli.commands",
                "serve",
                "--port",
                str(self.port),
                *options,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tempfile.mkdtemp(prefix="goalkeeper-served-"),
        )
        self.banner = self._read_banner()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.dynamodb_url = next(
            line.split()[1] for line in self.banner if line.strip().startswith("DynamoDB:")
        )
        # Keep reading what it prints: an unread pipe fills up and the server's next
        # print (Powertools writes metrics to stdout) would block a request forever.
        self._output: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._output.append(line)

    def _read_banner(self) -> list[str]:
        lines: list[str] = []
        deadline = time.monotonic() + START_SECONDS
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("goalkeeper serve exited early:\n" + "".join(lines))
            lines.append(line)
            if line.strip().startswith("Admin key:"):
                return lines
        raise RuntimeError("goalkeeper serve did not start:\n" + "".join(lines))

    def request(
        self, method: str, path: str, key: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        return http_json(method, self.base_url + path, key, body)

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user stops it; returns the exit code and what it printed after
        start (killed, with a negative code, if it does not stop in 30 s)."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        return self.process.returncode, "".join(self._output)
