"""template.yaml as data, so the local stack and the tests share the deployed schema.

The table, the API routes and the stream subscription are defined once, in the
SAM template. Everything that needs them locally (the moto table, the HTTP
router, the stream poller) derives them from here instead of keeping a copy
that could silently drift from what CloudFormation deploys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from goalkeeper_cli import REPO_ROOT

DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
DYNAMODB_TABLE = "AWS::DynamoDB::Table"


class Template(dict[str, Any]):
    """A parsed template that remembers its directory: CodeUri paths are relative to it."""

    def __init__(self, data: Mapping[str, Any], base_dir: Path) -> None:
        super().__init__(data)
        self.base_dir = base_dir


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that understands the short intrinsic-function tags (!Ref, !GetAtt, ...)."""


# CloudFormation reads unquoted dates and times as strings; PyYAML's YAML 1.1
# resolver would turn them into datetime objects.
_CloudFormationLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    # Produce the long form CloudFormation itself uses, so code reading the
    # result never needs to know which spelling the template used.
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            # "!GetAtt Table.StreamArn" is short for ["Table", "StreamArn"].
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path | None = None) -> Template:
    """Parse template.yaml (the repository's, unless another path is given)."""
    path = (path or DEFAULT_TEMPLATE).resolve()
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_CloudFormationLoader)  # a SafeLoader subclass
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return Template(data, path.parent)


# --- the table ------------------------------------------------------------------------


def _resources(template: Mapping[str, Any], resource_type: str) -> Iterator[tuple[str, dict]]:
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == resource_type:
            yield logical_id, resource.get("Properties") or {}


def _table_properties(template: Mapping[str, Any]) -> dict[str, Any]:
    tables = list(_resources(template, DYNAMODB_TABLE))
    if len(tables) != 1:
        names = [logical_id for logical_id, _ in tables]
        raise ValueError(f"expected exactly one {DYNAMODB_TABLE}, found {names}")
    properties = tables[0][1]
    _require_literal(properties, tables[0][0])
    return properties


def _is_intrinsic(value: dict[str, Any]) -> bool:
    if len(value) != 1:
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _require_literal(value: Any, where: str) -> None:
    # The local stack has no parameter values to resolve intrinsics with; failing
    # loudly beats creating a table that differs from the deployed one.
    if isinstance(value, dict):
        if _is_intrinsic(value):
            raise ValueError(f"{where}: intrinsic function {value!r} cannot be resolved locally")
        for key, item in value.items():
            _require_literal(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _require_literal(item, f"{where}[{index}]")


# Keys of a CloudFormation GSI that boto3's create_table also accepts (CloudFormation
# allows more, e.g. ContributorInsightsSpecification, which create_table rejects).
_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")


def table_create_kwargs(template: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    """Keyword arguments for boto3's ``create_table`` that rebuild the template's table."""
    properties = _table_properties(template)
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        # CloudFormation's default, made explicit because create_table has none.
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if properties.get(key):
            kwargs[key] = [
                {name: index[name] for name in _INDEX_KEYS if name in index}
                for index in properties[key]
            ]
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
    stream = properties.get("StreamSpecification")
    if stream:
        # CloudFormation enables the stream by the view type's presence alone;
        # create_table needs the flag spelled out.
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    return kwargs


def table_differences(template: Mapping[str, Any], table: Mapping[str, Any]) -> list[str]:
    """How an existing table (``describe_table``'s ``Table``) differs from the template's
    in what the code relies on: its keys, its indexes' keys, its stream."""
    wanted = table_create_kwargs(template, str(table.get("TableName")))
    differences = []
    if table.get("KeySchema") != wanted["KeySchema"]:
        differences.append(f"its key schema is {table.get('KeySchema')}")
    indexes = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
    for index in wanted.get("GlobalSecondaryIndexes", []):
        held = indexes.get(index["IndexName"])
        if held is None or held["KeySchema"] != index["KeySchema"]:
            differences.append(f"it lacks the index {index['IndexName']} of the template")
    stream = wanted.get("StreamSpecification")
    if stream and table.get("StreamSpecification") != stream:
        differences.append(f"its stream is {table.get('StreamSpecification') or 'off'}")
    return differences


def ttl_attribute(template: Mapping[str, Any]) -> str:
    """The attribute DynamoDB's TTL expires items by (``update_time_to_live`` is separate)."""
    spec = _table_properties(template).get("TimeToLiveSpecification") or {}
    if not spec.get("Enabled") or not spec.get("AttributeName"):
        raise LookupError("the table in the template has no enabled TimeToLiveSpecification")
    return str(spec["AttributeName"])


# --- functions ------------------------------------------------------------------------


def _function_property(template: Mapping[str, Any], properties: dict[str, Any], name: str) -> Any:
    # SAM lets CodeUri, Handler and the rest come from Globals; the function wins.
    if name in properties:
        return properties[name]
    return ((template.get("Globals") or {}).get("Function") or {}).get(name)


def _base_dir(template: Mapping[str, Any]) -> Path:
    return template.base_dir if isinstance(template, Template) else REPO_ROOT


def _code_location(
    template: Mapping[str, Any], properties: dict[str, Any], logical_id: str
) -> tuple[Path, str]:
    code_uri = _function_property(template, properties, "CodeUri")
    handler = _function_property(template, properties, "Handler")
    if not isinstance(code_uri, str) or not isinstance(handler, str):
        raise ValueError(f"{logical_id}: CodeUri and Handler must be plain local strings")
    return (_base_dir(template) / code_uri).resolve(), handler


_PATH_PARAMETER = re.compile(r"\{([^}/]+?)(\+?)\}")


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    function: str
    code_uri: Path
    handler: str

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when a request hits this route, else None ("ANY" matches all)."""
        if self.method not in ("ANY", method.upper()):
            return None
        found = _route_regex(self.path).fullmatch(path)
        return None if found is None else found.groupdict()


def _route_regex(path: str) -> re.Pattern[str]:
    # API Gateway semantics: {name} is one path segment, {name+} the greedy rest.
    pattern, position = "", 0
    for parameter in _PATH_PARAMETER.finditer(path):
        pattern += re.escape(path[position : parameter.start()])
        segment = ".+" if parameter.group(2) else "[^/]+"
        pattern += f"(?P<{parameter.group(1)}>{segment})"
        position = parameter.end()
    return re.compile(pattern + re.escape(path[position:]))


def api_routes(template: Mapping[str, Any]) -> list[ApiRoute]:
    """Every ``Type: Api`` event of every function, sorted by path and method."""
    routes = []
    for logical_id, properties in _resources(template, SERVERLESS_FUNCTION):
        for event in (properties.get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            code_uri, handler = _code_location(template, properties, logical_id)
            event_properties = event["Properties"]
            method = str(event_properties["Method"]).upper()
            routes.append(ApiRoute(method, event_properties["Path"], logical_id, code_uri, handler))
    return sorted(routes, key=lambda route: (route.path, route.method))


@dataclass(frozen=True)
class StreamSubscription:
    function: str
    code_uri: Path
    handler: str
    batch_size: int
    maximum_retry_attempts: int  # -1: retry until the record expires (the AWS default)
    bisect_on_error: bool
    filter_patterns: list[dict[str, Any]]
    report_batch_item_failures: bool
    starting_position: str = "TRIM_HORIZON"
    maximum_batching_window_seconds: int = 0
    parallelization_factor: int = 1


# The logical id of the function that evaluates stored events (`goalkeeper redrive`
# replays its failed records).
EVALUATION_FUNCTION = "EvaluateFunction"


def stream_subscription(template: Mapping[str, Any], function: str) -> StreamSubscription:
    """The one stream subscription of `function`."""
    (subscription,) = (s for s in stream_subscriptions(template) if s.function == function)
    return subscription


def stream_subscriptions(template: Mapping[str, Any]) -> list[StreamSubscription]:
    """Every ``Type: DynamoDB`` event source, with AWS's defaults filled in."""
    subscriptions = []
    for logical_id, properties in _resources(template, SERVERLESS_FUNCTION):
        for event in (properties.get("Events") or {}).values():
            if event.get("Type") != "DynamoDB":
                continue
            code_uri, handler = _code_location(template, properties, logical_id)
            source = event["Properties"]
            filters = (source.get("FilterCriteria") or {}).get("Filters") or []
            subscriptions.append(
                StreamSubscription(
                    function=logical_id,
                    code_uri=code_uri,
                    handler=handler,
                    batch_size=int(source.get("BatchSize", 100)),
                    maximum_retry_attempts=int(source.get("MaximumRetryAttempts", -1)),
                    bisect_on_error=bool(source.get("BisectBatchOnFunctionError", False)),
                    filter_patterns=[json.loads(item["Pattern"]) for item in filters],
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (source.get("FunctionResponseTypes") or []),
                    starting_position=str(source.get("StartingPosition", "TRIM_HORIZON")),
                    parallelization_factor=int(source.get("ParallelizationFactor", 1)),
                    maximum_batching_window_seconds=int(
                        source.get("MaximumBatchingWindowInSeconds", 0)
                    ),
                )
            )
    return subscriptions


# --- event filtering ------------------------------------------------------------------


def _same_value(allowed: Any, actual: Any) -> bool:
    # Python says True == 1; an event filter does not.
    return isinstance(allowed, bool) == isinstance(actual, bool) and allowed == actual


def matches_filter(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Lambda event-filter matching, restricted to nested keys and lists of exact values.

    A content filter (``{"prefix": ...}``, ``{"exists": ...}``, ``{"numeric": ...}``)
    raises NotImplementedError: approximating it would let the local stack deliver
    records that AWS would drop, or the other way round.
    """
    for key, expected in pattern.items():
        if key not in record:
            return False
        actual = record[key]
        if isinstance(expected, Mapping):
            if not isinstance(actual, Mapping) or not matches_filter(expected, actual):
                return False
            continue
        if not isinstance(expected, list):
            raise ValueError(f"filter value for {key!r} must be an object or a list")
        for allowed in expected:
            if isinstance(allowed, Mapping):
                raise NotImplementedError(f"content filter {allowed!r} is not supported locally")
        # As in AWS, an array in the record matches when any of its elements does.
        candidates = actual if isinstance(actual, list) else [actual]
        if not any(_same_value(a, c) for a in expected for c in candidates):
            return False
    return True


def passes_filters(patterns: list[dict[str, Any]], record: Mapping[str, Any]) -> bool:
    """Lambda delivers a record when there are no filters or any one of them matches."""
    return not patterns or any(matches_filter(pattern, record) for pattern in patterns)
