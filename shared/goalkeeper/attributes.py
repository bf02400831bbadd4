"""DynamoDB attribute values <-> plain Python values (decimals for numbers).

boto3's (de)serializers import all of boto3 (~0.3 s); they are loaded on first
use so a Lambda's cold start does not pay for them before its first request.
"""

from collections.abc import Mapping
from functools import cache
from typing import Any


@cache
def _codecs() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    serializer = _codecs()[0]
    return {name: serializer.serialize(value) for name, value in item.items() if value is not None}


def from_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    deserializer = _codecs()[1]
    return {name: deserializer.deserialize(value) for name, value in attributes.items()}
