"""Runs `goalkeeper serve` as a user would, in a child process, for end-to-end tests."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

SERVE_START_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServedStack:
    def __init__(self, admin_key: str) -> None:
        self.admin_key = admin_key
        self.port = free_port()
        env = os.environ | {"GOALKEEPER_ADMIN_KEY": admin_key, "PYTHONUNBUFFERED": "1"}
        for name in list(env):
            if name.startswith(("AWS_", "GOALKEEPER_TABLE", "POWERTOOLS_")):
                env.pop(name)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "goalkeeper.cli", "serve", "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.banner = self._read_banner()
        self.base_url = f"http://127.0.0.1:{self.port}"
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
        deadline = time.monotonic() + SERVE_START_SECONDS
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
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("x-api-key", key)
        try:
            # Generous: a loaded 2-core machine can queue a request for many seconds.
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user stops it; returns the exit code and what it printed after start."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        return self.process.returncode, "".join(self._output)
