"""Static files as the key-less, table-less function answers them (the tracker script,
the dashboard's pages): the body with its digest, and a 304 for a browser that holds it."""

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServedFile:
    body: str
    etag: str


def served_file(body: str) -> ServedFile:
    """The body and its ETag: a digest of exactly those bytes, so a cache never takes one
    version for another."""
    return ServedFile(body, '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"')


def _header(event: dict[str, Any], name: str) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return ""


def file_answer(
    event: dict[str, Any], file: ServedFile, content_type: str, headers: dict[str, str]
) -> dict[str, Any]:
    """The API Gateway proxy answer: 304 without a body when the request names this
    version in If-None-Match, else 200 with it."""
    headers = headers | {"ETag": file.etag}
    if file.etag in _header(event, "if-none-match"):
        return {"statusCode": 304, "headers": headers, "body": "", "isBase64Encoded": False}
    return {
        "statusCode": 200,
        "headers": headers | {"Content-Type": content_type, "X-Content-Type-Options": "nosniff"},
        "body": file.body,
        "isBase64Encoded": False,
    }
