"""The local API: HTTP requests become API Gateway REST proxy events for the same handlers."""

import base64
import time
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from goalkeeper_cli.local_stack.functions import FunctionPool, LocalFunction
from goalkeeper_cli.local_stack.server import BackgroundServer, SerializedApp
from goalkeeper_cli.local_stack.template import ApiRoute, api_routes


def _specificity(route: ApiRoute) -> int:
    """Literal segments first, so /v1/goals/{goal_id}/health wins over a shorter pattern."""
    return sum(1 for part in route.path.split("/") if part and "{" not in part)


def proxy_event(
    request: Request, route: ApiRoute, path_parameters: dict[str, str]
) -> dict[str, Any]:
    """An API Gateway REST (v1 proxy) event, as the deployed API sends it."""
    raw = request.get_data()
    try:
        body: str | None = raw.decode() if raw else None
        encoded = False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(raw).decode(), True
    query = request.args
    return {
        "resource": route.path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": dict(request.headers.items()),
        "multiValueHeaders": {
            key: request.headers.getlist(key) for key, _ in request.headers.items()
        },
        "queryStringParameters": {key: query[key] for key in query} or None,
        "multiValueQueryStringParameters": {key: query.getlist(key) for key in query} or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "resourcePath": route.path,
            "httpMethod": request.method,
            "path": f"/prod{request.path}",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": request.remote_addr, "userAgent": request.user_agent.string},
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


class LocalApi:
    def __init__(self, routes: list[tuple[ApiRoute, LocalFunction]]) -> None:
        self._routes = sorted(routes, key=lambda pair: -_specificity(pair[0]))

    def _match(
        self, method: str, path: str
    ) -> tuple[ApiRoute, LocalFunction, dict[str, str]] | None:
        for route, function in self._routes:
            # API Gateway answers CORS preflights for every route; its function does here.
            parameters = route.match(route.method if method == "OPTIONS" else method, path)
            if parameters is not None:
                return route, function, parameters
        return None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        matched = self._match(request.method, request.path)
        if matched is None:
            return _no_route(request)(environ, start_response)
        route, function, path_parameters = matched
        result = function.invoke(proxy_event(request, route, path_parameters))
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else body
        response = Response(payload, status=result.get("statusCode", 200))
        headers = {key: [value] for key, value in (result.get("headers") or {}).items()}
        headers.update(result.get("multiValueHeaders") or {})
        for key, values in headers.items():
            response.headers.setlist(key, values)
        return response(environ, start_response)


def local_api(template: dict[str, Any], pool: FunctionPool) -> "LocalApi":
    """Every Api route of template.yaml, bound to its function from `pool`."""
    return LocalApi(
        [
            (route, pool.get(route.function, route.code_uri, route.handler))
            for route in api_routes(template)
        ]
    )


def _no_route(_: Request) -> Response:
    return Response(
        '{"error":{"code":"not_found","message":"no such route","fields":[]}}',
        status=404,
        content_type="application/json",
    )


class ApiServer(BackgroundServer):
    """The local API over HTTP, one request at a time. Powertools' REST resolver keeps
    the request being handled in a class attribute (BaseRouter.current_event), shared
    by every resolver in a process: Lambda runs one request per process, so that is
    safe there, but two requests handled at once here could swap bodies (seen: events
    answered as duplicates of another request's and never stored). A request's events
    are still written several at a time (GOALKEEPER_INGEST_WRITE_CONCURRENCY)."""

    def __init__(self, api: LocalApi, host: str, port: int) -> None:
        super().__init__(SerializedApp(api), host, port, "local-api")
