"""GET /v1/tracker.js: the site tracker, for any page to load. Public: it takes no key
and reads no table, so it needs neither the API resolver nor boto3, and a cold start
costs only reading the script."""

from typing import Any

from goalkeeper.tracker import CACHE_CONTROL, CONTENT_TYPE, served_script


def _header(event: dict[str, Any], name: str) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return ""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    script = served_script()
    headers = {"ETag": script.etag, "Cache-Control": CACHE_CONTROL}
    if script.etag in _header(event, "if-none-match"):
        return {"statusCode": 304, "headers": headers, "body": "", "isBase64Encoded": False}
    return {
        "statusCode": 200,
        "headers": headers | {"Content-Type": CONTENT_TYPE, "X-Content-Type-Options": "nosniff"},
        "body": script.body,
        "isBase64Encoded": False,
    }
