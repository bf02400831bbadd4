"""The HTTP edge shared by the API functions: one error registry, one resolver factory.

Domain code raises GoalkeeperError subclasses; this module alone decides which
HTTP status each one becomes and renders the documented error shape:
{"error": {"code", "message", "fields": [{"field", "reason"}]}}.
"""

import base64
import binascii
import functools
import inspect
import json
import re
import typing
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
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.shared.json_encoder import Encoder

from goalkeeper import errors
from goalkeeper.auth import (
    API_KEY_HEADER,
    QUERY_KEY_PARAMETER,
    KeyLookup,
    Principal,
    authenticate,
    basic_auth_user,
    check_origin,
)
from goalkeeper.errors import FieldProblem, GoalkeeperError
from goalkeeper.settings import get_settings

# Routes speaking Segment's HTTP Tracking API (goalkeeper.segment): their own key
# header and body limit.
SEGMENT_ROUTES = "/segment/"
SEGMENT_MAX_BODY_BYTES = 500 * 1024
# Routes whose callers hold no key: a signature made with a secret the account stored
# proves the sender, and the route checks it (Twilio's X-Twilio-Signature).
SIGNED_ROUTES = frozenset({"/v1/integrations/twilio/{account_id}/calls"})

STATUS_BY_ERROR: dict[type[GoalkeeperError], HTTPStatus] = {
    errors.InvalidInput: HTTPStatus.BAD_REQUEST,
    errors.PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.Unauthenticated: HTTPStatus.UNAUTHORIZED,
    errors.Forbidden: HTTPStatus.FORBIDDEN,
    errors.NotFound: HTTPStatus.NOT_FOUND,
    errors.Conflict: HTTPStatus.CONFLICT,
    errors.KeyLimitReached: HTTPStatus.CONFLICT,
    errors.LastActiveKey: HTTPStatus.CONFLICT,
    errors.GoalLimitReached: HTTPStatus.CONFLICT,
    errors.JobRunning: HTTPStatus.CONFLICT,
    errors.WebhookLimitReached: HTTPStatus.CONFLICT,
    errors.EventIdConflict: HTTPStatus.CONFLICT,
    errors.StoreUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
}

# Discriminated unions put the chosen tag into pydantic's error location
# ("events", 0, "call", "bridged_seconds"); users know the field as events[0].bridged_seconds.
# The tags are read from the models: rule kinds after "rule", value types after "value",
# event types after an event's index.
_UNION_FIELDS = {"rule": ("Rule", "kind"), "value": ("GoalValue", "type")}

# Smart unions (a custom field's string | number | boolean) add one error per member,
# each located under the member's schema label: events[0].fields.size.bool, ...int, ...
# A wrapper label (list[...], nullable[...]) can sit mid-path; a bare one only at the end.
_MEMBER_LABEL = re.compile(r"^(?:bool|int|float|decimal|str|bytes|none|constrained-str)$")
_WRAPPER_LABEL = re.compile(
    r"^(?:list|dict|set|frozenset|tuple|nullable|union|default|tagged-union|json-or-python"
    r"|lax-or-strict|function-(?:after|before|plain|wrap))\[.*\]$"
)
_TYPE_NOUNS = {
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


# Every JSON body the API answers: the resolver's, and the errors the entry answers
# before any route (401, 413, ...), written alike (compact, as Powertools writes them).
to_json = functools.partial(json.dumps, separators=(",", ":"), cls=Encoder)


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
    parts = [p for p in parts if not (isinstance(p, str) and _WRAPPER_LABEL.match(p))]
    if len(parts) > 1 and isinstance(parts[-1], str) and _MEMBER_LABEL.match(parts[-1]):
        parts.pop()
    path = ""
    for index, part in enumerate(parts):
        previous = parts[index - 1] if index else None
        if isinstance(part, int):
            path += f"[{part}]"
        elif _is_union_tag(previous, part):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _is_union_tag(previous: str | int | None, part: str) -> bool:
    if isinstance(previous, int):
        from goalkeeper.models.events import EVENT_TYPES

        return part in EVENT_TYPES
    return previous in _UNION_FIELDS and part in _union_tags(str(previous))


@functools.cache
def _union_tags(field: str) -> frozenset[str]:
    from goalkeeper.models import goals

    union_name, tag_field = _UNION_FIELDS[field]
    (members, *_) = typing.get_args(getattr(goals, union_name))
    return frozenset(
        tag
        for member in typing.get_args(members)
        for tag in typing.get_args(member.model_fields[tag_field].annotation)
    )


def _reason(detail: dict[str, Any]) -> str:
    kind = detail.get("type")
    ctx = detail.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "is required"
    if kind == "json_invalid":
        return f"is not valid JSON: {ctx.get('error', 'malformed')}"
    if kind == "union_tag_invalid":
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"{ctx.get('tag')!r} is not one of: {expected}"
    if kind == "union_tag_not_found":
        return "is required"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a JSON object"
    message = str(detail.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ") if kind == "value_error" else message
    return f"the name: {message}" if tuple(detail.get("loc", ()))[-1:] == ("[key]",) else message


def _location(detail: dict[str, Any]) -> list[str | int]:
    loc = list(detail.get("loc", ()))
    if loc and loc[-1] == "[key]":
        loc.pop()  # a dict key itself is invalid; the reason says so
    if detail.get("type") == "json_invalid":
        return ["body"]  # pydantic points at a character offset; the body is what is wrong
    if detail.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str((detail.get("ctx") or {}).get("discriminator", "type")).strip("'")
        loc.append(discriminator)  # the tag field itself is what is wrong
    return loc


def problems_from_validation(details: Sequence[dict[str, Any]]) -> list[FieldProblem]:
    """One problem per field, named as the client wrote it (events[0].transaction.currency)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for detail in details:
        grouped.setdefault(field_path(_location(detail)), []).append(detail)
    problems = []
    for field, group in grouped.items():
        nouns = [noun for detail in group if (noun := _TYPE_NOUNS.get(str(detail.get("type"))))]
        if len(group) > 1 and len(nouns) == len(group):
            distinct = list(dict.fromkeys(nouns))
            head = ", ".join(distinct[:-1])
            reason = "must be " + (f"{head} or {distinct[-1]}" if head else distinct[-1])
        else:
            reason = "; ".join(dict.fromkeys(_reason(detail) for detail in group))
        problems.append(FieldProblem(field, reason))
    return problems


def _parse_json_body(text: str) -> Any:
    """A request body as JSON, numbers with a fraction or exponent as Decimal.

    Text that is not JSON raises JSONDecodeError, which Powertools reports as
    json_invalid. JSON that Python cannot hold (nesting past the interpreter's
    recursion limit, an integer past its digit limit, an exponent past Decimal's)
    is refused here as a 400 naming the body, instead of escaping as a 500.
    """
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        raise  # not JSON at all: Powertools names it
    except RecursionError as error:
        raise _unreadable_body("nests arrays or objects too deeply") from error
    except (ValueError, ArithmeticError) as error:
        raise _unreadable_body(
            "holds a number with too many digits or too large an exponent"
        ) from error


def _unreadable_body(reason: str) -> errors.InvalidInput:
    return errors.InvalidInput("the request is invalid", [FieldProblem("body", reason)])


class _Resolver(APIGatewayRestResolver):
    """Every route it registers refuses query parameters the route does not declare.

    Routes (get, post, include_router, ...) all register through `route`, so the
    check is added there once, after the route's own middlewares: a key of the
    wrong role is 403 whatever its query. The not-found fallback is no registered
    route: an unknown path stays 404 whatever its query.
    """

    def route(self, *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(super().route).bind(*args, **kwargs)
        declared = bound.arguments.get("middlewares") or []
        bound.arguments["middlewares"] = [*declared, _refuse_unknown_query_parameters]
        return super().route(*bound.args, **bound.kwargs)


def _unknown_query_parameters(app: APIGatewayRestResolver) -> list[FieldProblem]:
    """The request's query parameters that its route does not declare, as problems."""
    declared = {param.alias for param in app.context["_route"].dependant.query_params}
    event = app.current_event
    sent = {
        **(event.query_string_parameters or {}),
        **(event.multi_value_query_string_parameters or {}),
    }
    return [FieldProblem(name, "unknown query parameter") for name in sent if name not in declared]


def _refuse_unknown_query_parameters(
    app: APIGatewayRestResolver, next_middleware: NextMiddleware
) -> Response[Any]:
    problems = _unknown_query_parameters(app)
    if problems:
        raise errors.InvalidInput("the request is invalid", problems)
    return next_middleware(app)


def create_resolver() -> APIGatewayRestResolver:
    """A REST resolver with request validation, decimal JSON and the error registry."""
    app = _Resolver(
        cors=CORSConfig(allow_origin="*", allow_headers=[API_KEY_HEADER], max_age=600),
        enable_validation=True,
        serializer=to_json,
        json_body_deserializer=_parse_json_body,
    )

    @app.exception_handler(GoalkeeperError)
    def _domain_error(error: GoalkeeperError) -> JsonResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> JsonResponse:
        # Powertools validates declared parameters before any middleware runs: the
        # unknown ones are listed here too, so one answer names every problem.
        problems = problems_from_validation(error.errors()) + _unknown_query_parameters(app)
        return error_response(errors.InvalidInput("the request is invalid", problems))

    @app.not_found
    def _no_route(_: NotFoundError) -> JsonResponse:
        return error_response(errors.NotFound("no such route"))

    return app


ProxyHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def api_entrypoint(app: APIGatewayRestResolver, lookup: KeyLookup) -> ProxyHandler:
    """The Lambda entry of an API function.

    Checks that need no route run before Powertools validates the body: an
    oversized body is refused unread (413), an unknown key gets 401 whatever
    it sent, and a site key used from an origin it does not allow gets 403. Bodies
    are JSON whatever Content-Type says, so a browser's navigator.sendBeacon
    (text/plain, which needs no CORS preflight) and `curl -d` both work. A signed
    route (SIGNED_ROUTES) reads no key: its principal is None, its route checks the
    signature.
    """

    def entry(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event.get("httpMethod") == "OPTIONS":
            return _PREFLIGHT  # a CORS preflight carries no key; API Gateway answers it in AWS
        signed = event.get("resource") in SIGNED_ROUTES
        principal: Principal | None = None
        try:
            _check_body_size(event)
            if not signed:
                principal = authenticate(_presented_key(event), lookup, _take_query_key(event))
                check_origin(principal, _header(event, "origin"))
            _body_as_text(event)
            _refuse_top_level_array(event)
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


def public_base_url(app: APIGatewayRestResolver) -> str:
    """The API's base URL as its clients reach it: GOALKEEPER_PUBLIC_API_URL when set
    (behind a proxy or a tunnel), else this request's own: API Gateway's domain and
    whatever precedes the route in the path it was called with (the stage, or a
    custom domain's base path)."""
    configured = get_settings().public_api_url
    if configured:
        return configured.rstrip("/")
    request = app.current_event
    called = request.request_context.path or request.path
    before_route = called[: len(called) - len(request.path)]
    host = request.request_context.domain_name or request.headers.get("host", "")
    return f"https://{host}{before_route}"


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


def _take_query_key(event: dict[str, Any]) -> str | None:
    """The ?key= of a beacon, taken out of the event: routes never see it as a query
    parameter, nor does anything that logs or echoes the query."""
    single = event.get("queryStringParameters") or {}
    multi = event.get("multiValueQueryStringParameters") or {}
    key = single.pop(QUERY_KEY_PARAMETER, None)
    keys = multi.pop(QUERY_KEY_PARAMETER, None) or ([key] if key is not None else [])
    for name in ("queryStringParameters", "multiValueQueryStringParameters"):
        if event.get(name) == {}:
            event[name] = None  # as API Gateway sends a request without a query
    if len(keys) > 1:
        raise errors.InvalidInput(
            "the request is invalid", [FieldProblem(QUERY_KEY_PARAMETER, "send one key")]
        )
    return keys[0] if keys else None


def _is_segment_route(event: dict[str, Any]) -> bool:
    return str(event.get("resource") or "").startswith(SEGMENT_ROUTES)


def _presented_key(event: dict[str, Any]) -> str | None:
    """The key in x-api-key; on the Segment routes also the HTTP Basic user, as
    Segment's and RudderStack's libraries send their write key (goalkeeper.segment)."""
    key = _header(event, API_KEY_HEADER)
    if key or not _is_segment_route(event):
        return key
    key = basic_auth_user(_header(event, "authorization"))
    in_url = QUERY_KEY_PARAMETER in (event.get("queryStringParameters") or {})
    if not key and not in_url:  # a ?key= is authenticated (and refused) like anywhere
        raise errors.Unauthenticated(
            "missing credentials: HTTP Basic with the write key as user (or x-api-key)"
        )
    return key


def _check_body_size(event: dict[str, Any]) -> None:
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if _is_segment_route(event):
        # Segment's documented limit and answer: 500 KB a batch, 400 beyond.
        if size > SEGMENT_MAX_BODY_BYTES:
            raise errors.InvalidInput(
                "the request body is larger than Segment's 500 KB",
                [FieldProblem("body", f"larger than {SEGMENT_MAX_BODY_BYTES} bytes")],
            )
        return
    limit = get_settings().max_body_bytes
    if size > limit:
        raise errors.PayloadTooLarge(
            f"the request body is larger than {limit} bytes",
            [FieldProblem("body", f"larger than {limit} bytes")],
        )


def _body_as_text(event: dict[str, Any]) -> None:
    """JSON is UTF-8 text; a binary (base64) body is decoded here or refused as 400,
    rather than failing inside Powertools' decoding as a 5xx."""
    if not event.get("isBase64Encoded"):
        return
    try:
        event["body"] = base64.b64decode(event.get("body") or "").decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise errors.InvalidInput(
            "the request is invalid", [FieldProblem("body", "must be UTF-8 encoded JSON")]
        ) from error
    event["isBase64Encoded"] = False


def _refuse_top_level_array(event: dict[str, Any]) -> None:
    """Every body is a JSON object. Powertools would validate only the first element
    of a top-level array against a model and silently drop the rest."""
    body = event.get("body") or ""
    if body.lstrip().startswith("["):
        raise errors.InvalidInput(
            "the request is invalid", [FieldProblem("body", "must be a JSON object, not an array")]
        )


def _read_body_as_json(event: dict[str, Any]) -> None:
    for name in ("headers", "multiValueHeaders"):
        headers = event.get(name) or {}
        for key in [key for key in headers if key.lower() == "content-type"]:
            del headers[key]
    if event.get("headers") is not None:
        event["headers"]["content-type"] = "application/json"


def _proxy_error(error: GoalkeeperError) -> dict[str, Any]:
    response = error_response(error)
    return {
        "statusCode": int(response.status_code),
        "headers": {"Content-Type": "application/json"} | _CORS_HEADERS,
        "body": to_json(response.body),
        "isBase64Encoded": False,
    }
