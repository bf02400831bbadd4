"""Field paths in rejections (DESIGN.md §5.5): the field as the client wrote it
(events[1].bridged_seconds), without pydantic's union tags and member labels."""

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from goalkeeper.http import problems_from_validation
from goalkeeper.models.events import EventBatch
from goalkeeper.models.goals import GoalSpec

CALL = {"type": "call", "call_id": "c-1", "connected": True, "bridged_seconds": 61}
TRIGGER = {"type": "custom_trigger", "name": "signup"}
PAGE = {"type": "page_view", "url": "https://shop.example/"}


@pytest.mark.parametrize(
    ("model", "body", "expected"),
    [
        (
            EventBatch,
            {"events": [PAGE, CALL | {"bridged_seconds": -1}]},
            [("events[1].bridged_seconds", "greater than or equal to 0")],
        ),
        (
            EventBatch,
            {"events": [TRIGGER | {"fields": {"int": {"a": 1}}}]},
            [("events[0].fields.int", "must be a boolean, an integer, a number or a string")],
        ),
        (
            GoalSpec,
            {
                "name": "x",
                "rule": {
                    "kind": "custom_trigger",
                    "name": "t",
                    "conditions": [{"field": "f", "op": "in", "value": [{"a": 1}]}],
                },
            },
            [
                ("rule.conditions[0].value", "must be a boolean, an integer, a number or a string"),
                (
                    "rule.conditions[0].value[0]",
                    "must be a boolean, an integer, a number or a string",
                ),
            ],
        ),
        (
            GoalSpec,
            {"name": "x", "rule": {"kind": "lead"}, "value": {"type": "fixed", "amount": 1}},
            [("value.currency", "is required")],
        ),
    ],
)
def test_field_paths_leave_out_union_tags_and_member_labels(
    model: type[BaseModel], body: Any, expected: list[tuple[str, str]]
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(body)
    problems = problems_from_validation(raised.value.errors())
    assert [p.field for p in problems] == [field for field, _ in expected]
    for problem, (_, reason) in zip(problems, expected, strict=True):
        assert reason in problem.reason
