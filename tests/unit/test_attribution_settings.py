"""An account's attribution settings: what the API accepts, and how an account item
(stored as evaluation reads it) maps to them (pure)."""

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from goalkeeper.crediting import DEFAULT_LOOKBACK_DAYS, MAX_LOOKBACK_DAYS, AttributionModel
from goalkeeper.dal.accounts import ATTRIBUTION, attribution_settings
from goalkeeper.models.accounts import AccountSettingsRequest, AttributionSettings

DEFAULTS = AttributionSettings(
    model=AttributionModel.LAST_NON_DIRECT, lookback_days=DEFAULT_LOOKBACK_DAYS
)


@pytest.mark.parametrize(
    "item",
    [
        {"pk": "A#acc_1", "sk": "ACCOUNT", "timezone": "UTC"},  # never set
        {"pk": "A#acc_1"},  # a projection of the key alone
        {},
    ],
)
def test_an_item_without_the_attribute_has_the_defaults(item: dict[str, Any]) -> None:
    assert attribution_settings(item) == DEFAULTS


def test_the_stored_map_is_read_with_dynamodb_numbers() -> None:
    item = {ATTRIBUTION: {"model": "first_touch", "lookback_days": Decimal("7")}}
    settings = attribution_settings(item)
    assert settings == AttributionSettings(model=AttributionModel.FIRST_TOUCH, lookback_days=7)
    assert type(settings.lookback_days) is int


def test_a_map_holding_one_setting_takes_the_default_for_the_other() -> None:
    assert attribution_settings({ATTRIBUTION: {"model": "last_touch"}}) == AttributionSettings(
        model=AttributionModel.LAST_TOUCH, lookback_days=DEFAULT_LOOKBACK_DAYS
    )
    assert attribution_settings({ATTRIBUTION: {"lookback_days": Decimal(90)}}).lookback_days == 90


@pytest.mark.parametrize(
    ("attribution", "field", "message"),
    [
        ({"model": "linear"}, "model", "Input should be 'last_non_direct'"),
        ({"lookback_days": 0}, "lookback_days", "greater than or equal to 1"),
        ({"lookback_days": MAX_LOOKBACK_DAYS + 1}, "lookback_days", "less than or equal to 90"),
        ({"lookback_days": 1.5}, "lookback_days", "integer"),
        ({"window": 3}, "window", "Extra inputs are not permitted"),
    ],
)
def test_settings_out_of_bounds_are_refused(
    attribution: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        AccountSettingsRequest.model_validate({"attribution": attribution})
    (error,) = refused.value.errors()
    assert error["loc"] == ("attribution", field)
    assert message in error["msg"]


def test_the_request_must_say_what_attribution_to_use() -> None:
    with pytest.raises(ValidationError) as refused:
        AccountSettingsRequest.model_validate({})
    assert [e["loc"] for e in refused.value.errors()] == [("attribution",)]
