"""The moto version the local stack's patches were written for; any other is refused.

moto_speedups and atomic_transactions replace code inside moto (its DynamoDB
backend's TransactWriteItems, UpdateItem and Query, its response rendering, item
and stream record construction, its service routing) with versions that copy how
moto 5.2.5 does those things. Another moto may have moved or changed any of them,
and a patch that still imports could then answer differently from moto, and from
DynamoDB, without a word. So the patches check the installed version before they
import moto's internals and again when installed, and refuse any but this one,
which pyproject.toml's local extra pins exactly. Moving to another moto: re-read
each patch against its code, then change WRITTEN_FOR and the pin together (a test
keeps them equal).
"""

from importlib import metadata

WRITTEN_FOR = "5.2.5"


class MotoVersionMismatch(RuntimeError):
    """moto is not the version the patches were written for; the message says what to do."""


def installed() -> str | None:
    """The installed moto's version, read from its metadata: importing moto itself would
    add half a second to `goalkeeper serve`'s start, which checks before its engine."""
    try:
        return metadata.version("moto")
    except metadata.PackageNotFoundError:
        return None


def problem() -> str | None:
    """Why the patches cannot run here, in one line, or None when they can."""
    found = installed()
    if found == WRITTEN_FOR:
        return None
    if found is None:
        return (
            f"moto is not installed; the local stack needs moto {WRITTEN_FOR}: "
            "pip install -e '.[local]' in the repository"
        )
    return (
        f"moto {found} is installed, but the local stack's moto patches were written for "
        f"moto {WRITTEN_FOR}: install that one (pip install -e '.[local]' in the repository), "
        f"or re-check moto_speedups.py and atomic_transactions.py against {found} and then "
        "move WRITTEN_FOR (local_stack/moto_version.py) and pyproject.toml's pin together"
    )


def check() -> None:
    """Raise MotoVersionMismatch unless moto is the version the patches were written for."""
    found = problem()
    if found is not None:
        raise MotoVersionMismatch(found)
