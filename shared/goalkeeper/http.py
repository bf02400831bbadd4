"""The HTTP edge shared by the API functions: one error registry, one resolver factory.

Domain code raises GoalkeeperError subclasses; this module alone decides which
HTTP status each one becomes and renders the documented error shape:
{"error": {"code", "message", "fields": [{"field", "reason"}]}}.
"""

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from goalkeeper import errors
from goalkeeper.auth import API_KEY_HEADER, KeyLookup, authenticate
from goalkeeper.errors import FieldProblem, GoalkeeperError
from goalkeeper.settings import get_settings

STATUS_BY_ERROR: dict[type[GoalkeeperError], HTTPStatus] = {
    errors.InvalidInput: HTTPStatus.BAD_REQUEST,
    errors.PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.Unauthenticated: HTTPStatus.UNAUTHORIZED,
    errors.Forbidden: HTTPStatus.FORBIDDEN,
    errors.NotFound: HTTPStatus.NOT_FOUND,
    errors.Conflict: HTTPStatus.CONFLICT,
    errors.StoreUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
}

# Discriminated unions put the chosen tag into pydantic's error location
# ("events", 0, "call", "bridged_seconds"); users know the field as events[0].bridged_seconds.
_UNION_TAG_PARENTS = ("rule", "value")


def status_for(error: GoalkeeperError) -> HTTPStatus:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return HTTPStatus.INTERNAL_SERVER_ERROR


JsonResponse = Response[dict[str, Any]]


def json_response(status: int, body: dict[str, Any]) -> JsonResponse:
    """Bodies hold JSON-ready data (money already as strings); Powertools serialises them."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def error_response(error: GoalkeeperError) -> JsonResponse:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    body["fields"] = [{"field": f.field, "reason": f.reason} for f in error.fields]
    return json_response(status_for(error), {"error": body})


def field_path(loc: Sequence[str | int]) -> str:
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    path = ""
    for index, part in enumerate(parts):
        previous = parts[index - 1] if index else None
        if isinstance(part, int):
            path += f"[{part}]"
        elif (isinstance(previous, int) and _is_union_tag(part)) or previous in _UNION_TAG_PARENTS:
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _is_union_tag(part: str) -> bool:
    from goalkeeper.models.events import EVENT_TYPES

    return part in EVENT_TYPES


def problems_from_validation(details: Sequence[dict[str, Any]]) -> list[FieldProblem]:
    problems = []
    for detail in details:
        reason = str(detail.get("msg", "is invalid"))
        if detail.get("type") == "extra_forbidden":
            reason = "unknown field"
        elif detail.get("type") == "missing":
            reason = "is required"
        problems.append(FieldProblem(field_path(detail.get("loc", ())), reason))
    return problems


def create_resolver() -> APIGatewayRestResolver:
    """A REST resolver with request validation, decimal JSON and the error registry."""
    app = APIGatewayRestResolver(
        cors=CORSConfig(allow_origin="*", allow_headers=[API_KEY_HEADER], max_age=600),
        enable_validation=True,
        json_body_deserializer=lambda text: json.loads(text, parse_float=Decimal),
    )

    @app.exception_handler(GoalkeeperError)
    def _domain_error(error: GoalkeeperError) -> JsonResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> JsonResponse:
        problems = problems_from_validation(error.errors())
        return error_response(errors.InvalidInput("the request is invalid", problems))

    @app.not_found
    def _no_route(_: NotFoundError) -> JsonResponse:
        return error_response(errors.NotFound("no such route"))

    return app


ProxyHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def api_entrypoint(app: APIGatewayRestResolver, lookup: KeyLookup) -> ProxyHandler:
    """The Lambda entry of an API function.

    Checks that need no route run before Powertools validates the body: an
    oversized body is refused unread (413) and an unknown key gets 401 whatever
    it sent. Bodies are JSON whatever Content-Type says, so a browser's
    navigator.sendBeacon (text/plain) and `curl -d` both work.
    """

    def entry(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event.get("httpMethod") == "OPTIONS":
            return _PREFLIGHT  # a CORS preflight carries no key; API Gateway answers it in AWS
        try:
            _check_body_size(event)
            principal = authenticate(_header(event, API_KEY_HEADER), lookup)
        except GoalkeeperError as error:
            return _proxy_error(error)
        _read_body_as_json(event)
        app.append_context(principal=principal)
        return app.resolve(event, context)

    return entry


_CORS_HEADERS = {"Access-Control-Allow-Origin": "*"}
_PREFLIGHT = {
    "statusCode": 204,
    "headers": _CORS_HEADERS
    | {
        "Access-Control-Allow-Headers": f"content-type,{API_KEY_HEADER}",
        "Access-Control-Allow-Methods": "GET,POST,PUT,DELETE,OPTIONS",
        "Access-Control-Max-Age": "600",
    },
    "body": "",
    "isBase64Encoded": False,
}


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


def _check_body_size(event: dict[str, Any]) -> None:
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    limit = get_settings().max_body_bytes
    if size > limit:
        raise errors.PayloadTooLarge(
            f"the request body is larger than {limit} bytes",
            [FieldProblem("body", f"larger than {limit} bytes")],
        )


def _read_body_as_json(event: dict[str, Any]) -> None:
    for headers in (event.get("headers"), event.get("multiValueHeaders")):
        for key in [key for key in headers or {} if key.lower() == "content-type"]:
            del headers[key]
    if event.get("headers") is not None:
        event["headers"]["content-type"] = "application/json"


def _proxy_error(error: GoalkeeperError) -> dict[str, Any]:
    response = error_response(error)
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": "application/json"} | _CORS_HEADERS,
        "body": json.dumps(response.body),
        "isBase64Encoded": False,
    }
