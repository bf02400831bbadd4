"""The site tracker, `static/tracker.js`, as GET /v1/tracker.js serves it.

The source stays readable and commented; what is served drops its comment lines and
indentation. That is safe for the source's style (whole-line `//` comments, no block
comment but the `/*!` banner, no template literals), which tests/unit/test_tracker.py
checks, and it needs no build step: a warm function does it once.
"""

from functools import cache
from importlib import resources

from goalkeeper.served_files import ServedFile, served_file

# The tag's URL carries no version (it is pasted into every page of a site and never
# changes), so browsers keep the script a day: a fixed tracker reaches every visitor
# within a day. After that a revalidation costs a 304 without a body (the ETag).
CACHE_CONTROL = "public, max-age=86400"
CONTENT_TYPE = "application/javascript; charset=utf-8"


def source() -> str:
    return resources.files("goalkeeper").joinpath("static/tracker.js").read_text("utf-8")


def compact(text: str) -> str:
    """The script without comment lines, blank lines or indentation; the `/*!` banner,
    which names the version, stays."""
    kept = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in kept if line and not line.startswith("//")) + "\n"


@cache
def served_script() -> ServedFile:
    """The script served, and its ETag."""
    return served_file(compact(source()))
