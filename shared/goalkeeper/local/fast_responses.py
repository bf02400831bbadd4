"""Plain JSON responses for moto's DynamoDB and DynamoDB Streams.

moto 5.2 renders every response by walking botocore's output shapes, which
costs ~16 ms for a response carrying items and dominates the local stack's
time (a stream batch of 100 records took ~0.9 s). Those results are already
plain JSON-ready dicts (moto converts attribute values before rendering), so
for these two JSON-protocol services the local stack writes them as JSON
directly: None members dropped and datetimes as epoch seconds, as the shape
walk does.
"""

import base64
import json
from datetime import datetime
from typing import Any

from moto.core.responses import ActionContext, ActionResult

_FAST_SERVICES = {"dynamodb", "dynamodbstreams"}
_shape_walk = ActionResult.execute_result


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple | set):
        return [_json_ready(item) for item in value]
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _execute_result(self: ActionResult, context: ActionContext) -> Any:
    service = context.service_model.service_name
    if service not in _FAST_SERVICES or not isinstance(self.result, dict):
        return _shape_walk(self, context)
    body = json.dumps(_json_ready(self.result), separators=(",", ":"))
    status = context.operation_model.http.get("responseCode", 200)
    return status, {"Content-Type": "application/x-amz-json-1.0"}, body


def install() -> None:
    ActionResult.execute_result = _execute_result  # type: ignore[method-assign]
