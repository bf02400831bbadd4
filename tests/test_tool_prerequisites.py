"""The `goalkeeper` command and the local stack say what they need, in one line, where
they cannot run: without pyproject.toml's `local` extra, or on another moto than the
one the local stack's patches were written for."""

import subprocess
import sys
from pathlib import Path

import pytest

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
