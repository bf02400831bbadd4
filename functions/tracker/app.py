"""The public static files: the site tracker (GET /v1/tracker.js), for any page to load,
and the marketers' dashboard (GET / and GET /dashboard/{file}). They take no key and read
no table, so the function needs neither the API resolver nor boto3, and a cold start
costs only reading a file."""

import json
from typing import Any

from goalkeeper import dashboard
from goalkeeper.served_files import file_answer
from goalkeeper.tracker import CACHE_CONTROL, CONTENT_TYPE, served_script

TRACKER_PATH = "/v1/tracker.js"


def _not_found(name: str) -> dict[str, Any]:
    error = {"code": "not_found", "message": f"no such file: {name}", "fields": []}
    return {
        "statusCode": 404,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": error}),
        "isBase64Encoded": False,
    }


def _to_folder(event: dict[str, Any]) -> dict[str, Any] | None:
    """Deployed, the page is also reached without its trailing slash (`…/prod`), where
    its relative links would miss its files: that request is sent to `…/prod/`."""
    requested = str((event.get("requestContext") or {}).get("path") or "/")
    if requested.endswith("/"):
        return None
    return {
        "statusCode": 301,
        "headers": {"Location": requested + "/"},
        "body": "",
        "isBase64Encoded": False,
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    resource = event.get("resource") or event.get("path")
    if resource == TRACKER_PATH:
        return file_answer(event, served_script(), CONTENT_TYPE, {"Cache-Control": CACHE_CONTROL})
    if resource == "/" and (moved := _to_folder(event)):
        return moved
    name = (
        dashboard.INDEX if resource == "/" else str((event.get("pathParameters") or {}).get("file"))
    )
    found = dashboard.dashboard_file(name)
    if found is None:
        return _not_found(name)
    file, content_type = found
    return file_answer(event, file, content_type, dashboard.HEADERS)
