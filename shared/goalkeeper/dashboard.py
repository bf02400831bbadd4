"""The marketers' dashboard (README, "Dashboard"): a page and its few scripts and styles,
`static/dashboard/`, served as written by GET / and GET /dashboard/{file}. No build step:
the browser loads the ES modules as they are.

The page talks to the API of its own origin with the key the user types, so its policy
allows scripts, styles and requests from that origin only, and no inline script."""

from functools import cache
from importlib import resources
from pathlib import PurePosixPath

from goalkeeper.served_files import ServedFile, served_file

INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# No version in the files' URLs: a browser asks again each time and gets a 304 while the
# file is unchanged, so a deploy reaches every open dashboard on its next load.
CACHE_CONTROL = "no-cache"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": CACHE_CONTROL,
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}


def file_names() -> list[str]:
    """The files the dashboard is made of, which are all that is served."""
    folder = resources.files("goalkeeper").joinpath("static/dashboard")
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.is_file() and PurePosixPath(entry.name).suffix in CONTENT_TYPES
    )


def source(name: str) -> str:
    return resources.files("goalkeeper").joinpath("static/dashboard", name).read_text("utf-8")


@cache
def dashboard_file(name: str) -> tuple[ServedFile, str] | None:
    """The file and its content type; None for a name that is not one of the dashboard's
    (checked against the listing, so no path can reach another file)."""
    if name not in file_names():
        return None
    return served_file(source(name)), CONTENT_TYPES[PurePosixPath(name).suffix]
