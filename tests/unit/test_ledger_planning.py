"""The value ledger's arithmetic and the Google Ads import files, pure: what an
adjustment changes per currency, and each file checked field by field against the
layout of Google's templates (Google Ads Help 7014069 and 7686280)."""

import csv
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from goalkeeper.ads_export import (
    ClickAdjustment,
    ClickConversion,
    adjustments_csv,
    conversions_csv,
    google_click,
)
from goalkeeper.dal.ledger import LedgerConversion, NewAdjustment, adjustment_transaction
from goalkeeper.errors import Conflict, InvalidInput
from goalkeeper.ledger import Standing, plan_adjustment
from goalkeeper.models.ledger import AdjustmentRequest
from goalkeeper.values import Money

USD100 = Money(Decimal("100"), "USD")


def request(**fields: object) -> AdjustmentRequest:
    return AdjustmentRequest.model_validate({"adjustment_id": "a1", "reason": "r"} | fields)


def test_a_retraction_takes_the_whole_net_value_out_and_marks_the_conversion() -> None:
    plan = plan_adjustment("c", Standing(USD100), request(type="retract"), None)
    assert plan.deltas == {"USD": Decimal("-100")}
    assert plan.after == Standing(None, retracted=True, adjustments=1)
    assert plan.retracts


def test_a_restatement_moves_the_difference_or_both_currencies() -> None:
    same = plan_adjustment("c", Standing(USD100), request(type="restate", value="80"), None)
    assert same.deltas == {"USD": Decimal("-20")}
    assert same.after.value == Money(Decimal("80"), "USD")  # the conversion's currency
    other = plan_adjustment(
        "c",
        Standing(USD100, adjustments=2),
        request(type="restate", value="90", currency="EUR"),
        None,
    )
    assert other.deltas == {"USD": Decimal("-100"), "EUR": Decimal("90")}
    assert other.after.adjustments == 3 and not other.retracts
    unchanged = plan_adjustment("c", Standing(USD100), request(type="restate", value="100"), None)
    assert unchanged.deltas == {}


def test_a_restatement_keeps_a_fixed_value_goal_s_currency_and_needs_one_when_none_is_known() -> (
    None
):
    fixed = plan_adjustment(
        "c", Standing(Money(Decimal("5"), "GBP")), request(type="restate", value="7"), "GBP"
    )
    assert fixed.after.value == Money(Decimal("7"), "GBP")
    with pytest.raises(InvalidInput) as wrong:
        plan_adjustment(
            "c", Standing(None), request(type="restate", value="7", currency="USD"), "GBP"
        )
    assert wrong.value.fields[0].field == "currency"
    with pytest.raises(InvalidInput) as unknown:
        plan_adjustment("c", Standing(None), request(type="restate", value="7"), None)
    assert unknown.value.fields[0].field == "currency"
    with pytest.raises(Conflict):
        plan_adjustment(
            "c", Standing(None, retracted=True, adjustments=1), request(type="retract"), None
        )


AT = datetime(2026, 11, 10, 10, 0, 0, tzinfo=UTC)


def _read(text: str) -> tuple[str, list[list[str]]]:
    parameters, *lines = text.split("\n")
    assert lines[-1] == ""  # every line ends with a newline
    return parameters, list(csv.reader(lines[:-1]))


def test_the_conversions_file_follows_google_s_click_conversion_template() -> None:
    text = conversions_csv(
        [
            ClickConversion("gclid-1", "Sale, online", AT, Money(Decimal("1234.5"), "EUR")),
            ClickConversion("gclid-2", "Lead", AT, None),
        ],
        "America/New_York",
    )
    parameters, rows = _read(text)
    assert parameters == "Parameters:TimeZone=America/New_York"
    assert rows[0] == [
        "Google Click ID",
        "Conversion Name",
        "Conversion Time",
        "Conversion Value",
        "Conversion Currency",
    ]
    # yyyy-MM-dd HH:mm:ss with the zone's offset; a name with a comma is quoted.
    assert rows[1] == ["gclid-1", "Sale, online", "2026-11-10 05:00:00-0500", "1234.50", "EUR"]
    assert rows[2] == ["gclid-2", "Lead", "2026-11-10 05:00:00-0500", "", ""]
    assert '"Sale, online"' in text


def test_the_adjustments_file_follows_google_s_adjustment_template() -> None:
    later = datetime(2026, 11, 30, 16, 45, 10, tzinfo=UTC)
    text = adjustments_csv(
        [
            ClickAdjustment("gclid-1", "Sale", AT, later, "retract", None),
            ClickAdjustment("gclid-2", "Sale", AT, later, "restate", Money(Decimal("80"), "USD")),
        ],
        "UTC",
    )
    parameters, rows = _read(text)
    assert parameters == "Parameters:TimeZone=UTC"
    assert rows == [
        [
            "Google Click ID",
            "Conversion Name",
            "Conversion Time",
            "Adjustment Time",
            "Adjustment Type",
            "Adjusted Value",
            "Adjusted Value Currency",
        ],
        [
            "gclid-1",
            "Sale",
            "2026-11-10 10:00:00+0000",
            "2026-11-30 16:45:10+0000",
            "RETRACT",
            "",
            "",
        ],
        [
            "gclid-2",
            "Sale",
            "2026-11-10 10:00:00+0000",
            "2026-11-30 16:45:10+0000",
            "RESTATE",
            "80.00",
            "USD",
        ],
    ]


def test_only_google_s_click_ids_are_exported() -> None:
    assert google_click({"source": "google", "medium": "cpc", "click_id": "g"}) == "g"
    assert google_click({"source": "Google", "click_id": "g"}) == "g"
    assert google_click({"source": "bing", "click_id": "m"}) is None
    assert google_click({"source": "google"}) is None
    assert google_click(None) is None


def _new(plan_request: AdjustmentRequest, before: Standing) -> NewAdjustment:
    conversion = LedgerConversion(
        "acc",
        "conv",
        "goal",
        "evt",
        "2026-11-10T10:00:00.000000Z",
        "2026-11-10",
        "counted",
        "ann",
        {"source": "google", "click_id": "gclid-1"},
        before,
        before.value,
    )
    plan = plan_adjustment("conv", before, plan_request, None)
    return NewAdjustment(
        "a1", conversion, plan, plan_request.type, "r", "2026-11-30T00:00:00Z", "2026-11-30", 2
    )


def _readable(request: dict, expression: str) -> str:
    """An expression of a request with its placeholders replaced by names and values."""
    text = request[expression]
    values = {k: next(iter(v.values())) for k, v in request["ExpressionAttributeValues"].items()}
    for placeholder, said in sorted(
        (request["ExpressionAttributeNames"] | values).items(), key=lambda p: -len(p[0])
    ):
        text = text.replace(placeholder, str(said))
    return text


def test_an_adjustment_moves_its_conversion_and_both_counters_it_was_counted_in() -> None:
    transaction = adjustment_transaction("t", _new(request(type="retract"), Standing(USD100)))
    items = transaction.tagged()
    assert list(items) == ["adjustment", "conversion", "goal_day", "attribution"]
    assert "attribute_not_exists(pk)" in items["adjustment"]["Put"]["ConditionExpression"]
    # Only a counted conversion that took no adjustment since the plan was made.
    update = items["conversion"]["Update"]
    condition = "status = counted AND attribute_not_exists(adjustments)"
    assert _readable(update, "ConditionExpression") == condition
    assert _readable(update, "UpdateExpression") == (
        "SET adjustments = 1, retracted = True REMOVE net_amount, net_currency"
    )
    for tag in ("goal_day", "attribution"):
        changes = _readable(items[tag]["Update"], "UpdateExpression")
        assert changes == "ADD adjusted#USD -100, retracted 1"


def test_a_restatement_to_the_same_value_moves_no_counter() -> None:
    new = _new(request(type="restate", value="100"), Standing(USD100, adjustments=3))
    items = adjustment_transaction("t", new).tagged()
    assert list(items) == ["adjustment", "conversion"]
    condition = _readable(items["conversion"]["Update"], "ConditionExpression")
    assert condition == "status = counted AND adjustments = 3"  # as planned on
