"""The `goalkeeper` command and the local stack say what they need, in one line, where
they cannot run: without pyproject.toml's `local` extra, or on another moto than the
one the local stack's patches were written for."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from goalkeeper_cli import REPO_ROOT
from goalkeeper_cli.local_stack import atomic_transactions, moto_speedups, moto_version
from goalkeeper_cli.local_stack.dynamodb_local import EngineUnavailable
from goalkeeper_cli.local_stack.engines import MOTO, start_engine

# A fresh interpreter where the local extra's modules cannot be imported, as after a
# plain `pip install -e .`; the rest of its arguments are the command's.
WITHOUT = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError
from goalkeeper_cli.commands import main
sys.exit(main(sys.argv[2:]))
"""


def _goalkeeper_without(modules: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, modules, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.mark.parametrize("command", ["serve", "redrive"])
def test_without_the_local_extra_serve_and_redrive_say_what_to_install(
    command: str, tmp_path: Path
) -> None:
    done = _goalkeeper_without("moto,flask,werkzeug,yaml", command, cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"goalkeeper {command} needs the local extra (moto, flask, werkzeug, yaml not "
        "installed): pip install -e '.[local]' in the repository (make serve does it for you)"
    ]
    assert not (tmp_path / ".goalkeeper").exists()


def test_one_missing_module_of_the_extra_is_named(tmp_path: Path) -> None:
    done = _goalkeeper_without("yaml", "serve", cwd=tmp_path)
    assert done.returncode == 1
    assert "needs the local extra (yaml not installed)" in done.stderr
    assert "Traceback" not in done.stderr


def test_backfill_and_help_need_no_local_extra(tmp_path: Path) -> None:
    blocked = "moto,flask,werkzeug,yaml"
    assert _goalkeeper_without(blocked, "--help", cwd=tmp_path).returncode == 0
    done = _goalkeeper_without(blocked, "backfill", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--from" in done.stdout


def test_the_moto_patches_were_written_for_the_moto_pyproject_pins() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    local = pyproject["project"]["optional-dependencies"]["local"]
    pins = [re.fullmatch(r"moto(\[[a-z,]+\])?==(.+)", requirement) for requirement in local]
    assert [pin.group(2) for pin in pins if pin] == [moto_version.WRITTEN_FOR]
    assert moto_version.installed() == moto_version.WRITTEN_FOR  # and it runs the tests


# A fresh interpreter whose installed moto reads as 5.3.0.
ANOTHER_MOTO = """
import sys
from importlib import metadata
real_version = metadata.version
metadata.version = lambda name: "5.3.0" if name == "moto" else real_version(name)
"""


def _one_line_naming_both_versions(message: str) -> None:
    assert "\n" not in message
    assert "moto 5.3.0 is installed" in message
    assert f"written for moto {moto_version.WRITTEN_FOR}" in message
    assert "pip install -e '.[local]'" in message


@pytest.mark.parametrize("patches", [moto_speedups, atomic_transactions], ids=lambda m: m.__name__)
def test_the_moto_patches_refuse_another_moto_version(
    patches: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(moto_version, "installed", lambda: "5.3.0")
    with pytest.raises(moto_version.MotoVersionMismatch) as refused:
        patches.install()
    _one_line_naming_both_versions(str(refused.value))


def test_another_moto_is_refused_before_its_internals_are_imported() -> None:
    script = (
        ANOTHER_MOTO
        + """
try:
    import goalkeeper_cli.local_stack.atomic_transactions
except Exception as error:
    print(type(error).__name__, "moto.dynamodb" in sys.modules)
    print(error)
"""
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    refused, message = done.stdout.splitlines()
    assert refused == "MotoVersionMismatch False"
    _one_line_naming_both_versions(message)


def test_serve_on_another_moto_says_so_in_one_line_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(moto_version, "installed", lambda: "5.3.0")
    with pytest.raises(EngineUnavailable, match=r"^moto 5\.3\.0 is installed"):
        start_engine(MOTO, "127.0.0.1")
    script = (
        ANOTHER_MOTO
        + """
from goalkeeper_cli.commands import main
sys.exit(main(["serve", "--port", "0"]))
"""
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 1
    assert done.stderr.startswith("goalkeeper serve: moto 5.3.0 is installed")
    _one_line_naming_both_versions(done.stderr.strip())
    assert done.stdout == ""  # no banner: nothing started
